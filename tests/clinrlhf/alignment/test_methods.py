"""The alignment methods in miniature: each on a tiny policy, tiny pairs and tiny configs, measured as
the comparison measures them; clinicians' and the rubric's feedback never mixed."""

from __future__ import annotations

import math
import random
from datetime import date

import pytest
import torch

from clinrlhf.alignment.methods import run_dpo, run_rlaif
from clinrlhf.dpo.config import DPOConfig
from clinrlhf.eval.compare import evaluate_method, paired_difference
from clinrlhf.feedback.judgment import Judgment
from clinrlhf.feedback.screening import MixedSourcesError
from clinrlhf.pipeline.cohorts import scenarios as scenarios_of
from clinrlhf.policy.model import PolicyConfig, build_policy
from clinrlhf.policy.tokenizer import build_tokenizer
from clinrlhf.ppo.config import PPOConfig
from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.ledger import Budget, PrivacyLedger
from clinrlhf.reward.pairs import pairs_from_judgments
from clinrlhf.rlaif.feedback import rlaif_pairs, rubric_agreement, rubric_judgments
from clinrlhf.text.prompt import render_prompt, render_response, vocabulary_corpus
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.scoring import score, utility
from clinrlhf.world.world import load_world
from privacy.dp.opacus_config import DPConfig

torch.set_num_threads(1)
TODAY = date(2025, 6, 1)


@pytest.fixture(scope="module")
def tiny():
    """World, tokenizer, an untrained tiny policy, clinicians' pairwise judgments (two raters per card,
    preferring the drug of higher utility), and a few held-out scenarios."""
    world = load_world()
    tokenizer = build_tokenizer(vocabulary_corpus(world))
    torch.manual_seed(0)
    sft = build_policy(PolicyConfig(), tokenizer).eval()
    rng, drugs = random.Random(0), sorted(world.drugs)
    judgments = []
    for i, patient in enumerate(generate_patients(world, 40, 5, TODAY)):
        target = patient.targets[0]
        a, b = rng.sample(drugs, 2)
        ua, ub = (utility(score(world, patient.facts, target, d)) for d in (a, b))
        if ua == ub:
            continue
        prompt = render_prompt(world, patient.facts, target)
        responses = (render_response(world, a), render_response(world, b))
        judgments += [
            Judgment("pairwise", f"card{i}", f"p{i}", c, prompt, responses, 0 if ua > ub else 1)
            for c in ("c1", "c2")
        ]
    scenarios = scenarios_of(generate_patients(world, 8, 6, TODAY))
    return world, tokenizer, sft, judgments, scenarios


def _check_metrics(result: dict) -> None:
    for metric in ("concordance", "unsafe_rate"):
        iv = result[metric]
        assert 0.0 <= iv["low"] <= iv["estimate"] <= iv["high"] <= 1.0
    assert result["n"] == len(result["outcomes"]) > 0


def test_rubric_pairs_are_all_ai_and_never_mixed_with_clinicians(tiny):
    world, _, _, judgments, _ = tiny
    ai = rubric_judgments(world, judgments)
    assert ai and {j.source for j in ai} == {"ai"}
    assert len(ai) == len({j.card for j in judgments})  # one label per card
    pairs = rlaif_pairs(world, ai)
    assert pairs and {p.source for p in pairs} == {"ai"}
    with pytest.raises(MixedSourcesError):
        rubric_judgments(world, judgments + ai)
    with pytest.raises(ValueError, match="only 'ai'"):
        rlaif_pairs(world, [*ai, judgments[0]])
    # The rubric labels by the world's utility, as these clinicians did: it agrees on every pair.
    agreement = rubric_agreement(world, pairs_from_judgments(judgments, world=world))
    assert agreement["agree"] == pytest.approx(1.0)


def test_dp_dpo_changes_the_policy_charges_the_ledger_and_is_measured(tiny, tmp_path):
    world, tokenizer, sft, judgments, scenarios = tiny
    pairs = pairs_from_judgments(judgments, world=world)
    ledger = PrivacyLedger(tmp_path / "ledger.json", Budget(1e9, 1e-3))
    before = [p.detach().clone() for p in sft.parameters()]
    config = DPOConfig(dp=DPConfig(), epochs=1, batch_size=16, learning_rate=3e-3)
    policy, info = run_dpo(pairs, sft, tokenizer, config, ledger=ledger, snapshot_sha256="ab" * 32)
    assert all(torch.equal(a, b) for a, b in zip(before, sft.parameters(), strict=True))  # SFT kept
    changed = [
        not torch.equal(a, b)
        for a, b in zip(sft.state_dict().values(), policy.state_dict().values(), strict=True)
    ]
    assert any(changed)
    assert math.isfinite(info["epsilon"]) and info["epsilon"] == pytest.approx(
        config.dp.target_epsilon, rel=0.05
    )
    assert [e.label.split()[0] for e in ledger.entries("ab" * 32)] == ["dpo"]
    result = evaluate_method(policy, tokenizer, world, scenarios, reference=sft, kl_samples=16)
    _check_metrics(result)
    assert math.isfinite(result["kl_heldout"]["kl"])
    with pytest.raises(ValueError, match="only 'clinician'"):  # DPO here learns from clinicians only
        run_dpo(rlaif_pairs(world, rubric_judgments(world, judgments)), sft, tokenizer, config)


def test_rlaif_trains_a_reward_and_ppo_and_is_measured(tiny, tmp_path):
    world, tokenizer, sft, judgments, scenarios = tiny
    pairs = rlaif_pairs(world, rubric_judgments(world, judgments))
    ledger = PrivacyLedger(tmp_path / "ledger.json", Budget(1e9, 1e-3))
    reward_config = RewardConfig(epochs=1, batch_size=16)
    ppo_config = PPOConfig(steps=1, batch_size=8, mini_batches=2, ppo_epochs=1, final_kl_samples=8)
    prompts = sorted({j.prompt for j in judgments})
    policy, reward, info = run_rlaif(
        world,
        pairs,
        sft,
        tokenizer,
        reward_config,
        ppo_config,
        prompts,
        ledger=ledger,
        snapshot_sha256="cd" * 32,
    )
    assert (
        info["feedback_source"] == "ai" and math.isfinite(info["epsilon"]) and math.isfinite(info["final_kl"])
    )
    assert [e.label.split()[0] for e in ledger.entries("cd" * 32)] == ["reward"]
    _check_metrics(evaluate_method(policy, tokenizer, world, scenarios))
    with pytest.raises(ValueError, match="only 'ai'"):  # clinicians' pairs never reach the RLAIF reward
        run_rlaif(
            world,
            pairs_from_judgments(judgments, world=world),
            sft,
            tokenizer,
            reward_config,
            ppo_config,
            prompts,
        )


def test_paired_difference_of_a_policy_with_itself_is_zero(tiny):
    world, tokenizer, sft, _, scenarios = tiny
    outcomes = evaluate_method(sft, tokenizer, world, scenarios)["outcomes"]
    diff = paired_difference(outcomes, outcomes)
    assert diff["concordance"] == {"estimate": 0.0, "low": 0.0, "high": 0.0}

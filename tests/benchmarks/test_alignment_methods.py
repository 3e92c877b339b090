"""benchmarks/alignment_methods.py in miniature: each method on a tiny policy, tiny pairs and tiny
configs (no pipeline home is built: that takes minutes), and finding a run in a home laid out as the
pipeline lays one out, with and without its MLflow store."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import random
import sys
from datetime import date, datetime
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow import MlflowClient

from clinrlhf.alignment.methods import run_dpo, run_rlaif
from clinrlhf.dpo.config import DPOConfig
from clinrlhf.eval.compare import evaluate_method, paired_difference
from clinrlhf.feedback.judgment import Judgment
from clinrlhf.feedback.screening import MixedSourcesError
from clinrlhf.lineage.runs import EXPERIMENT
from clinrlhf.pipeline.cohorts import scenarios as scenarios_of
from clinrlhf.pipeline.config import PipelineConfig
from clinrlhf.pipeline.logged import log_pipeline_config
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
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # the scripts' siblings
_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "alignment_methods.py"
_SPEC = importlib.util.spec_from_file_location("alignment_methods", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
bench = importlib.util.module_from_spec(_SPEC)
sys.modules["alignment_methods"] = bench  # dataclasses look their module up by name
_SPEC.loader.exec_module(bench)

from alignment_report import markdown  # noqa: E402
from common import json_safe  # noqa: E402
from finished_run import locate_run  # noqa: E402

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


def _home(tmp_path: Path, runs: list[str]) -> Path:
    home = tmp_path / "home"
    for run in runs:
        for part in ("sft", "policy"):
            (home / "runs" / run / part).mkdir(parents=True)
            (home / "runs" / run / part / "config.json").write_text("{}")
    (home / "runs" / "unfinished" / "sft").mkdir(parents=True)  # no policy: never chosen
    (home / "snapshots").mkdir()
    for digest in ("aa" * 32, "bb" * 32):
        (home / "snapshots" / f"{digest}.ndjson").write_bytes(b"")
    return home


def test_locate_run_without_mlflow_takes_the_newest_run(tmp_path):
    home = _home(tmp_path, ["old", "new"])
    os.utime(home / "runs" / "old" / "policy", (1_000_000, 1_000_000))
    os.utime(home / "snapshots" / f"{'aa' * 32}.ndjson", (1_000_000, 1_000_000))
    run = locate_run(home)
    assert run.run_id == "new" and run.sft == home.resolve() / "runs" / "new" / "sft"
    assert run.snapshot.name == f"{'bb' * 32}.ndjson"  # the newest
    assert run.config == PipelineConfig() and "defaults" in run.config_source
    assert locate_run(home, "old").run_id == "old"
    with pytest.raises(SystemExit):
        locate_run(home, "unfinished")


def test_locate_run_reads_config_date_and_snapshot_from_mlflow(tmp_path):
    """A real MLflow store as the pipeline leaves it: the newest finished pipeline run is taken, with
    the config it logged, the local date it started and the snapshot its reward stage trained on."""
    home = _home(tmp_path, ["r1", "r2"])
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.create_experiment(EXPERIMENT)
    noon = int(datetime(2026, 3, 4, 12).timestamp() * 1000)
    ids = {}
    for name, start, end in (("r1", noon, noon + 9000), ("r2", noon - 86_400_000, noon)):
        run = client.create_run(experiment, start_time=start, tags={"clinrlhf.stage": "pipeline"})
        client.set_terminated(run.info.run_id, "FINISHED", end_time=end)
        ids[name] = run.info.run_id
    for name, run_id in ids.items():  # the run folders are named by the MLflow run id
        (home / "runs" / name).rename(home / "runs" / run_id)
    reward = client.create_run(
        experiment,
        start_time=noon + 1000,
        tags={
            "clinrlhf.stage": "reward",
            "mlflow.parentRunId": ids["r1"],
            "clinrlhf.dataset_sha256": "aa" * 32,
        },
    )
    client.log_metric(reward.info.run_id, "reward.heldout_accuracy", 0.8)
    client.set_terminated(reward.info.run_id, "FINISHED", end_time=noon + 5000)
    mlflow.set_tracking_uri(client.tracking_uri)
    with mlflow.start_run(run_id=ids["r1"]):
        log_pipeline_config(PipelineConfig(seed=7, heldout_patients=5))
    client.set_terminated(ids["r1"], "FINISHED", end_time=noon + 9000)

    run = locate_run(home)
    assert run.run_id == ids["r1"] and run.run_date == date(2026, 3, 4)
    assert (run.config.seed, run.config.heldout_patients) == (7, 5) and "MLflow" in run.config_source
    assert run.snapshot.name == f"{'aa' * 32}.ndjson"  # the one its reward stage trained on
    assert run.mlflow["reward"]["metrics"] == {"reward.heldout_accuracy": 0.8}
    assert run.mlflow["reward"]["seconds"] == pytest.approx(4.0)


def test_locate_run_ignores_a_store_that_is_not_mlflow(tmp_path):
    home = _home(tmp_path, ["only"])
    (home / "mlflow.db").write_bytes(b"not a database")
    run = locate_run(home)
    assert run.run_id == "only" and run.mlflow == {} and "defaults" in run.config_source


def test_output_is_strict_json_and_the_table_says_what_was_not_private():
    row = {
        "feedback_source": "clinician",
        "concordance": {"estimate": 0.5, "low": 0.4, "high": 0.6},
        "unsafe_rate": {"estimate": 0.1, "low": 0.05, "high": 0.15},
        "epsilon": None,
        "kl_heldout": {"kl": 1.0, "kl_ci_low": 0.9, "kl_ci_high": 1.1},
    }
    result = {
        "run_id": "r",
        "mode": "full",
        "heldout_scenarios": 10,
        "methods": {"DPO (non-private)": row},
        "privacy": {
            "snapshot_sha256": "ab" * 32,
            "delta": 1e-5,
            "home_budget_epsilon": 10.0,
            "composed_after_each_charge": [
                {"after": "x", "composed_epsilon": math.inf, "within_home_budget": False}
            ],
            "combinations": {},
            "note": "",
        },
    }
    assert "∞ (no DP)" in markdown(result)
    assert json.dumps(json_safe({"a": math.inf, "b": [math.nan]}), allow_nan=False) == (
        '{"a": null, "b": [null]}'
    )

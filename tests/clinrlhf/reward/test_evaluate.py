"""Held-out metrics: accuracy with ties, loss, calibration against a slow reference, the split by
patient, subgroups read off prompts, and agreement with the world's utility."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import pytest
import torch
from transformers import GPT2Model, PreTrainedTokenizerFast

from clinrlhf.eval.evaluate import subgroup_of
from clinrlhf.reward import evaluate as reward_evaluate
from clinrlhf.reward.evaluate import (
    accuracy,
    evaluate_reward,
    expected_calibration_error,
    fresh_scenarios,
    heldout_report,
    score_texts,
    split_by_patient,
    subgroup_accuracy,
    subgroup_of_prompt,
    utility_agreement,
    utility_candidates,
)
from clinrlhf.reward.model import ScalarHeadModel
from clinrlhf.reward.pairs import PreferencePair
from clinrlhf.text.prompt import render_prompt
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.scoring import acceptable
from clinrlhf.world.world import World


def reference_ece(p_chosen: list[float], bins: int) -> float:
    points = [(p, 1.0) for p in p_chosen] + [(1 - p, 0.0) for p in p_chosen]
    total = 0.0
    for b in range(bins):
        inside = [(p, y) for p, y in points if min(int(p * bins), bins - 1) == b]
        if inside:
            conf = sum(p for p, _ in inside) / len(inside)
            acc = sum(y for _, y in inside) / len(inside)
            total += len(inside) / len(points) * abs(conf - acc)
    return total


def test_ece_matches_the_reference() -> None:
    p = torch.rand(200, generator=torch.Generator().manual_seed(0))
    assert expected_calibration_error(p, bins=10) == pytest.approx(reference_ece(p.tolist(), 10), abs=1e-6)


def test_a_model_that_is_always_right_and_certain_is_calibrated() -> None:
    assert expected_calibration_error(torch.ones(50)) == pytest.approx(0.0, abs=1e-6)
    assert expected_calibration_error(torch.full((50,), 0.9)) == pytest.approx(0.1, abs=1e-6)


def test_an_indifferent_model_scores_ties_as_half_right(
    backbone: Callable[..., GPT2Model],
    tokenizer: PreTrainedTokenizerFast,
    heldout_pairs: list[PreferencePair],
) -> None:
    model = ScalarHeadModel(backbone())
    torch.nn.init.zeros_(model.head.weight)
    torch.nn.init.constant_(model.head.bias, 0.3)
    metrics = evaluate_reward(model, tokenizer, heldout_pairs[:20])
    assert metrics["accuracy"] == 0.5 and metrics["loss"] == pytest.approx(math.log(2))
    assert metrics["ece"] == pytest.approx(0.0, abs=1e-6) and metrics["reward_mean"] == pytest.approx(0.3)


def test_score_texts_batches_and_checks_lengths(
    backbone: Callable[..., GPT2Model],
    tokenizer: PreTrainedTokenizerFast,
    heldout_pairs: list[PreferencePair],
) -> None:
    model = ScalarHeadModel(backbone()).train()
    prompts, responses = [p.prompt for p in heldout_pairs[:7]], [p.chosen for p in heldout_pairs[:7]]
    whole = score_texts(model, tokenizer, prompts, responses)
    torch.testing.assert_close(
        score_texts(model, tokenizer, prompts, responses, batch_size=3), whole, atol=1e-5, rtol=1e-5
    )
    assert whole.shape == (7,) and model.training  # the caller's mode is restored
    with pytest.raises(ValueError, match="7 prompts but 6 responses"):
        score_texts(model, tokenizer, prompts, responses[:6])


def _pair(patient: str, prompt: str = "sex female age 70-74 ; treat x ->") -> PreferencePair:
    return PreferencePair(prompt, "a", "b", clinician="c", patient=patient, source="clinician")


def test_split_by_patient_keeps_each_patient_on_one_side() -> None:
    pairs = [_pair(f"pt-{i % 1000}") for i in range(3000)]
    train, heldout = split_by_patient(pairs, 0.1, seed=0)
    train_patients, heldout_patients = {p.patient for p in train}, {p.patient for p in heldout}
    assert not train_patients & heldout_patients and len(train) + len(heldout) == 3000
    assert 70 <= len(heldout_patients) <= 130  # Binomial(1000, 0.1): ±3.2 standard deviations
    assert split_by_patient(pairs, 0.1, seed=0) == (train, heldout)
    assert split_by_patient(pairs, 0.1, seed=1)[1] != heldout
    # A patient keeps their side when other patients join the snapshot.
    more = pairs + [_pair(f"new-{i}", f"sex male age {i % 90}-{i % 90 + 4} ; treat x ->") for i in range(500)]
    assert {p.patient for p in split_by_patient(more, 0.1, seed=0)[1]} >= heldout_patients


def test_the_split_does_not_depend_on_the_de_identification_key() -> None:
    """Another key gives every patient another pseudonym; the same judgments must split into the same
    held-out pairs, or a new home would evaluate (and train) the reward model on other pairs.
    Patients whose pairs say the same are interchangeable, so the pairs are compared, not names."""
    prompts = [f"sex female age {5 * (i % 18)}-{5 * (i % 18) + 4} ; treat t{i % 7} ->" for i in range(400)]
    pairs = [replace(_pair(f"key1-{i % 400}", prompts[i % 400]), chosen=f"d{i % 3}") for i in range(1200)]
    renamed = {f"key1-{i}": f"other-key-{(i * 7919) % 400:03d}" for i in range(400)}
    rekeyed = [replace(p, patient=renamed[p.patient]) for p in reversed(pairs)]

    def said(side: list[PreferencePair]) -> list[tuple[str, str]]:
        return sorted((p.prompt, p.chosen) for p in side)

    held, held_rekeyed = split_by_patient(pairs, 0.1, seed=3)[1], split_by_patient(rekeyed, 0.1, seed=3)[1]
    assert 60 <= len(held) <= 180 and said(held) == said(held_rekeyed)
    assert said(split_by_patient(pairs, 0.1, seed=4)[1]) != said(held)  # the seed still moves it
    assert len({p.patient for p in held_rekeyed}) == len({p.patient for p in held})


def test_subgroup_of_a_prompt_is_the_subgroup_of_the_patients_facts(world: World) -> None:
    patients = generate_patients(world, 400, seed=5)
    for p in patients:
        # A prompt shows sex and age band, never race or ethnicity (those are audited from the cohort).
        shown = {k: v for k, v in subgroup_of(p.facts).items() if k in ("sex", "age_band")}
        assert subgroup_of_prompt(render_prompt(world, p.facts, p.targets[0])) == shown
    assert subgroup_of_prompt("sex male age 90+ ; treat x ->") == {"sex": "male", "age_band": "90plus"}
    with pytest.raises(ValueError, match="not a rendered prompt"):
        subgroup_of_prompt("treat x ->")


def test_accuracy_by_subgroup_counts_ties_half() -> None:
    diff = torch.tensor([1.0, -1.0, 0.0, 2.0])
    groups = [{"sex": "f", "age_band": "a"}, {"sex": "f", "age_band": "b"}]
    groups += [{"sex": "m", "age_band": "a"}, {"sex": "m", "age_band": "b"}]
    assert accuracy(diff) == 0.625
    assert subgroup_accuracy(diff, groups) == {
        "age_band": {"a": 0.75, "b": 0.5},
        "sex": {"f": 0.5, "m": 0.75},
    }


def test_heldout_report_of_an_indifferent_model(
    backbone: Callable[..., GPT2Model],
    tokenizer: PreTrainedTokenizerFast,
    heldout_pairs: list[PreferencePair],
) -> None:
    model = ScalarHeadModel(backbone())
    torch.nn.init.zeros_(model.head.weight)
    pairs = heldout_pairs[:40]
    report = heldout_report(model, tokenizer, pairs)
    m = report.metrics
    assert m["reward.heldout_accuracy"] == 0.5 and m["reward.ece"] == pytest.approx(0.0, abs=1e-6)
    assert m["reward.heldout_pairs"] == 40 and m["reward.heldout_loss"] == pytest.approx(math.log(2))
    by_sex = {k: v for k, v in m.items() if k.startswith("reward.heldout_pairs.sex.")}
    assert sum(by_sex.values()) == 40 and all(
        m[k.replace("heldout_pairs", "heldout_accuracy")] == 0.5 for k in by_sex
    )
    assert any(k.startswith("reward.heldout_accuracy.age_band.") for k in m)
    assert [row["count"] for row in report.reliability] == [0] * 5 + [80] + [0] * 4


def test_utility_candidates_cover_the_formulary_with_the_worlds_utility(world: World) -> None:
    scenarios = fresh_scenarios(world, n=5)
    prompts, responses, utilities = utility_candidates(world, scenarios)
    assert len(prompts) == len(responses) == len(utilities) == len(scenarios) * len(world.drugs)
    s = scenarios[0]
    good = acceptable(world, s.facts, s.target)
    first = dict(zip(responses[: len(world.drugs)], utilities[: len(world.drugs)], strict=True))
    assert {r.split()[0] for r, u in first.items() if u == 1.0} == good
    assert set(utilities) <= {1.0, 0.0, -2.0} and -2.0 in utilities


def test_utility_agreement_of_a_reward_equal_to_the_utility(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenarios = fresh_scenarios(world, n=20)
    _, _, utilities = utility_candidates(world, scenarios)
    perfect = torch.tensor(utilities) * 3.0 + 1.0
    monkeypatch.setattr(reward_evaluate, "score_texts", lambda *args, **kwargs: perfect)
    agreement = utility_agreement(None, None, world, scenarios)  # type: ignore[arg-type]
    assert agreement["reward.utility_spearman"] == pytest.approx(1.0)
    assert agreement["reward.utility_pearson"] == pytest.approx(1.0)
    assert agreement["reward.utility_candidates"] == len(utilities)

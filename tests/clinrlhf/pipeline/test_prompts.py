"""PPO's prompt source: the choice that decides whether the reward model's DP guarantee reaches the policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clinrlhf.compliance.report_context import policy_privacy
from clinrlhf.feedback import Judgment
from clinrlhf.pipeline.config import PipelineConfig, load_pipeline_config
from clinrlhf.pipeline.prompts import ppo_prompts

HISTORY = [("sex F age 40-44 problem a", "drug x"), ("sex M age 60-64 problem b", "drug y")] * 2


def _judgment(prompt: str) -> Judgment:
    return Judgment(
        kind="pairwise", card="k", patient="p", clinician="d", prompt=prompt, responses=("r", "s")
    )


def test_history_prompts_do_not_depend_on_the_snapshot() -> None:
    one = ppo_prompts("history", [_judgment("sex F age 90+ a rare patient")], HISTORY)
    other = ppo_prompts("history", [_judgment("sex M age 20-24 someone else")], HISTORY)
    assert one == other == sorted({p for p, _ in HISTORY})


def test_feedback_prompts_are_the_snapshots_distinct_prompts() -> None:
    judgments = [_judgment("b"), _judgment("a"), _judgment("b")]
    assert ppo_prompts("feedback", judgments, HISTORY) == ["a", "b"]


def test_an_unknown_source_is_refused_when_the_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"ppo_prompts": "heldout"}))
    with pytest.raises(ValueError, match="ppo_prompts must be one of feedback, history"):
        load_pipeline_config(path)
    assert PipelineConfig().ppo_prompts == "feedback"


def test_the_report_says_whether_the_policy_carries_the_guarantee() -> None:
    assert "the policy carries the same guarantee" in policy_privacy("history")
    assert "not for which de-identified patient descriptions" in policy_privacy("feedback")


def _band_shares(prompts: list[str]) -> dict[str, float]:
    from collections import Counter

    from clinrlhf.pipeline.prompts import age_band_of_prompt

    counts = Counter(age_band_of_prompt(p) for p in prompts)
    return {band: n / len(prompts) for band, n in counts.items()}


SKEWED = (
    [f"sex female age 25-29 ; problems p{i} ; treat hypertension ->" for i in range(60)]
    + [f"sex male age 45-49 ; problems p{i} ; treat hypertension ->" for i in range(30)]
    + [f"sex male age 85-89 ; problems p{i} ; treat atrial_fibrillation ->" for i in range(7)]
    + [f"sex female age 90+ ; problems p{i} ; treat cystitis ->" for i in range(3)]
)


def test_balancing_by_age_band_gives_each_band_an_equal_share_of_ppo_draws() -> None:
    from clinrlhf.pipeline.prompts import balance_by_age_band

    balanced = balance_by_age_band(SKEWED, 1.0)
    shares = _band_shares(balanced)
    assert set(shares) == {"20-39", "40-59", "80-89", "90plus"}
    assert max(shares.values()) - min(shares.values()) < 0.03  # a quarter each, up to rounding
    assert set(balanced) == set(SKEWED)  # every prompt kept, none invented: only repeated


def test_without_balancing_the_prompts_are_drawn_as_they_come() -> None:
    from clinrlhf.pipeline.prompts import balance_by_age_band

    assert balance_by_age_band(SKEWED, 0.0) == SKEWED
    half = _band_shares(balance_by_age_band(SKEWED, 0.5))
    # Half-way (share^(1/2)): the rarest band gains, the commonest loses, the order is kept.
    assert _band_shares(SKEWED)["90plus"] < half["90plus"] < 0.25 < half["20-39"] < 0.6


def test_the_pipeline_config_switches_balancing_on_and_refuses_a_weight_outside_0_1(tmp_path: Path) -> None:
    assert PipelineConfig().ppo_prompt_balance == 0.0
    path = tmp_path / "c.json"
    path.write_text('{"ppo_prompt_balance": 1.0}')
    assert load_pipeline_config(path).ppo_prompt_balance == 1.0
    with pytest.raises(ValueError, match="ppo_prompt_balance"):
        PipelineConfig(ppo_prompt_balance=1.5)

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

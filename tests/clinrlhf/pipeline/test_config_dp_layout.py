"""A pipeline config written before the DP settings were grouped under `reward.dp` still loads, and
a misspelt DP setting is refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clinrlhf.pipeline.config import load_pipeline_config


def test_a_pipeline_config_written_for_the_old_layout_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(
        json.dumps({"reward": {"target_epsilon": 4.0, "accountant": "rdp", "max_grad_norm": 0.5}})
    )
    dp = load_pipeline_config(path).reward.dp
    assert (dp.target_epsilon, dp.accountant, dp.max_grad_norm, dp.enabled) == (4.0, "rdp", 0.5, True)
    path.write_text(json.dumps({"reward": {"dp": {"reproducible_noise": True}}}))
    assert load_pipeline_config(path).reward.dp.noise == "reproducible"
    path.write_text(json.dumps({"reward": {"dp": {"noise_seed": 3}}}))
    with pytest.raises(ValueError, match=r"unknown setting reward\.dp\.noise_seed"):
        load_pipeline_config(path)

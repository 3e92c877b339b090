"""benchmarks/poisoning_loop.py: every variant is a pipeline config the CLI accepts, and
`--sequential` adds the one-at-a-time panel without losing a variant's own panel settings."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from clinrlhf.pipeline.config import load_pipeline_config

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "poisoning_loop.py"
_SPEC = importlib.util.spec_from_file_location("poisoning_loop", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
bench = importlib.util.module_from_spec(_SPEC)
sys.modules["poisoning_loop"] = bench
_SPEC.loader.exec_module(bench)


@pytest.mark.parametrize("name", sorted(bench.VARIANTS))
@pytest.mark.parametrize("sequential", [False, True])
def test_every_variant_loads_as_a_pipeline_config(tmp_path: Path, name: str, sequential: bool) -> None:
    overrides = bench.merged(bench.VARIANTS[name], bench.SEQUENTIAL) if sequential else bench.VARIANTS[name]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(overrides))
    config = load_pipeline_config(path)
    assert config.panel.clinicians == 20
    assert config.panel.adversaries == overrides["panel"]["adversaries"]
    assert config.panel.concurrency == (1 if sequential else 8)
    assert config.screening.auto_quarantine == ("undefended" not in name and "flip-rates" not in name)


def test_merged_lays_nested_sections_over_each_other() -> None:
    base = {"panel": {"clinicians": 20, "adversaries": 2}, "reward": {"rater_buckets": None}}
    out = bench.merged(base, {"panel": {"concurrency": 1}, "seed": 3})
    assert out == {
        "panel": {"clinicians": 20, "adversaries": 2, "concurrency": 1},
        "reward": {"rater_buckets": None},
        "seed": 3,
    }
    assert base["panel"] == {"clinicians": 20, "adversaries": 2}  # the variant itself is untouched

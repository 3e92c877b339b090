"""benchmarks/active_learning.py end to end in its quick mode, shrunk further: it runs, and writes
both strategies' concordance curves against growing numbers of judgments."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[3] / "benchmarks" / "active_learning.py"


@pytest.fixture(scope="module")
def benchmark():  # noqa: ANN201 - a module loaded from a file
    spec = importlib.util.spec_from_file_location("active_learning_benchmark", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_quick_mode_writes_both_curves(benchmark, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "al.json"
    tiny = ["--history-patients", "150", "--sft-epochs", "2", "--pool-patients", "60"]
    tiny += ["--validation-patients", "20", "--rounds", "2", "--cap", "3", "--initial-cases", "10"]
    tiny += ["--reward-epochs", "1", "--passes", "2", "--target", "0.0"]
    returned = benchmark.main(["--quick", "--out", str(out), *tiny])
    written = json.loads(out.read_text())
    assert written["seeds"] and written["settings"]["dp"] is True
    assert "best-of-n" in written["what"] and "not a PPO run" in written["what"]
    assert list(written["seeds"][0]["curves"]) == ["random", "active", "random-valid"]
    for name in ("random", "active", "random-valid"):
        curve = written["seeds"][0]["curves"][name]
        counts = [point["judgments"] for point in curve]
        assert len(curve) == 3
        assert counts == sorted(counts) and len(set(counts)) == 3 and counts[0] > 0
        assert all(0.0 <= point["concordance"] <= 1.0 for point in curve)
        assert all(point["epsilon"] < 9 for point in curve)  # DP on: ε = 8 per model
        # After the first round: 15 cards a round (10 clinicians x cap 3 / 2 reviews per card).
        assert counts[1] - counts[0] == counts[2] - counts[1] == 30
    # Both start from the same random first round and the same reward model.
    first = [
        {k: v for k, v in c[0].items() if k != "seconds"} for c in written["seeds"][0]["curves"].values()
    ]
    assert first[0] == first[1] and first[0]["judgments"] == 20
    # A target of 0 is reached at the first point by both: the ratio is then exactly 1.
    assert written["judgments_to_target"]["random"] == written["judgments_to_target"]["active"]
    assert written["ratio_random_over_active"] == 1.0
    assert returned["ratios"] == {
        "random/active": 1.0,
        "random/random-valid": 1.0,
        "random-valid/active": 1.0,
    }


@pytest.mark.parametrize(
    ("strategy", "extra"), [("active", ["--uncertainty", "design", "--no-valid-first"]), ("oracle", [])]
)
def test_one_model_rules_ask_new_cards_each_round(
    benchmark, tmp_path: Path, strategy: str, extra: list[str]
) -> None:  # noqa: ANN001
    out = tmp_path / "rule.json"
    tiny = ["--history-patients", "150", "--sft-epochs", "2", "--pool-patients", "60"]
    tiny += ["--validation-patients", "20", "--rounds", "2", "--cap", "3", "--initial-cases", "10"]
    tiny += ["--reward-epochs", "1", "--target", "0.0", "--strategies", strategy, *extra]
    written = benchmark.main(["--quick", "--out", str(out), *tiny])
    curve = written["seeds"][0]["curves"][strategy]
    assert [p["cards"] for p in curve] == [10, 25, 40]  # 15 new cards a round, none asked twice
    assert all(0.0 <= p["concordance"] <= 1.0 and p["epsilon"] < 9 for p in curve)

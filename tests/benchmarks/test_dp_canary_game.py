"""benchmarks/dp_canary_game.py plays the games it lists, at a size small enough for the unit tests, and
reports each one's figures; a broken control that lets 8 times the clipped norm through is caught
even at 400 canaries."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "dp_canary_game.py"
_SPEC = importlib.util.spec_from_file_location("dp_canary_game", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
bench = importlib.util.module_from_spec(_SPEC)
sys.modules["dp_canary_game"] = bench
_SPEC.loader.exec_module(bench)

torch.set_num_threads(1)


@pytest.mark.filterwarnings("ignore:Secure RNG turned off")
def test_each_unit_s_games_are_played_and_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    # The first and last game of each unit (Opacus' noise calibration takes most of each game's time).
    played = {unit: [controls[0], controls[-1]] for unit, controls in bench.CONTROLS.items()}
    monkeypatch.setattr(bench, "CONTROLS", played)
    rows = bench.run([0], epsilon=1.0, delta=1e-5, canaries=400, k_plus=20)
    assert [(r["unit"], r["run"]) for r in rows] == [
        (unit, name) for unit, controls in played.items() for name, _, _ in controls
    ]
    for row in rows:
        assert row["guesses"] == 20 and 0 <= row["correct"] <= 20
        assert 0.9 <= row["reported_epsilon"] <= 1.0 and row["steps"] == 20
        assert row["caught"] == (row["epsilon_lower_bound"] > row["reported_epsilon"])
    (clipping_off,) = [r for r in rows if r["run"] == "clipping off"]
    assert clipping_off["caught"]  # 8·C let through: every guess right even at 400 canaries

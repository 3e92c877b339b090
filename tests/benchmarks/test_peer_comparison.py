"""benchmarks/peer_comparison.py: the β a sweep settles on, and the clock that prices each method.
The comparison itself needs a finished pipeline home and TRL's own virtualenv; its figures and the
command that reproduces them are in docs/results.md."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest

_BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
_SPEC = importlib.util.spec_from_file_location("peer_comparison", _BENCHMARKS / "peer_comparison.py")
assert _SPEC is not None and _SPEC.loader is not None
bench = importlib.util.module_from_spec(_SPEC)
sys.modules["peer_comparison"] = bench
_SPEC.loader.exec_module(bench)


def _sweep(*points: tuple[float, float]) -> list[dict]:
    return [{"beta": beta, "validation": {"kl": kl}} for beta, kl in points]


def test_a_bracketed_target_gets_the_interpolated_beta() -> None:
    assert bench._matched_beta(_sweep((0.1, 10.0), (1.0, 1.0)), 2.0) == pytest.approx(0.5)


def test_an_extrapolated_beta_stays_within_ten_times_the_sweep() -> None:
    # KL = 1/β would ask for β = 1000 to reach 0.001 nats: held at 10 x the largest β measured
    assert bench._matched_beta(_sweep((0.1, 10.0), (1.0, 1.0)), 0.001) == pytest.approx(10.0)
    assert bench._matched_beta(_sweep((0.1, 10.0), (1.0, 1.0)), 1e4) == pytest.approx(0.01)


def test_a_negative_kl_estimate_does_not_break_the_log_log_fit() -> None:
    # k1 is unbiased but can come out below 0 for a policy next to the reference
    beta = bench._matched_beta(_sweep((0.1, 5.0), (10.0, -0.01)), 1.0)
    assert 0.1 < beta < 10.0


def test_the_cpu_clock_leaves_out_what_it_is_told_to() -> None:
    clock = bench.CpuClock()
    started = time.process_time()
    end = started + 0.05
    while time.process_time() < end:  # bookkeeping to leave out
        pass
    clock.exclude(started)
    assert clock.now() < 0.04

"""benchmarks/ppo_vs_trl.py: the throughput comparison only counts when both sides do the same work,
the same Adam steps per PPO iteration in fp32. TRL itself is not installed here (it lives in its own
virtualenv), so these check the guards the comparison runs through, on real torch optimizers."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "ppo_vs_trl.py"
_SPEC = importlib.util.spec_from_file_location("ppo_vs_trl", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
bench = importlib.util.module_from_spec(_SPEC)
sys.modules["ppo_vs_trl"] = bench
_SPEC.loader.exec_module(bench)


def _adam_steps(n: int) -> None:
    weight = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.Adam([weight], lr=0.1)
    for _ in range(n):
        optimizer.zero_grad()
        weight.sum().backward()
        optimizer.step()


def test_the_step_counter_counts_every_optimizer_step_between_ticks() -> None:
    counter = bench.StepCounter()
    _adam_steps(8)
    counter.tick()
    _adam_steps(4)
    counter.tick()
    counter.close()
    _adam_steps(1)  # after close: not counted
    assert counter.per_iteration == [8, 4] and counter.total == 12


def test_gradient_accumulation_that_skips_steps_is_seen_as_fewer_steps() -> None:
    # What accelerate does with accumulation 2: backward on every mini-batch, a step on every second.
    counter = bench.StepCounter()
    weight = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.Adam([weight], lr=0.1)
    for mini_batch in range(8):
        weight.sum().backward()
        if mini_batch % 2 == 1:
            optimizer.step()
            optimizer.zero_grad()
    counter.tick()
    counter.close()
    assert counter.per_iteration == [4]


def _run(steps: list[int], batch: int = 64) -> dict:
    return {"optimizer_steps_per_iteration": steps, "config": {"batch_size": batch}}


def test_equal_work_passes_when_every_iteration_took_the_same_adam_steps() -> None:
    bench.check_equal_work(_run([8, 8, 8]), _run([8, 8, 8]), {"batch_size": 64})


def test_half_the_adam_steps_on_trls_side_stops_the_comparison() -> None:
    with pytest.raises(SystemExit, match="unequal optimizer steps"):
        bench.check_equal_work(_run([8, 8]), _run([4, 4]), {"batch_size": 64})


def test_a_different_batch_on_trls_side_stops_the_comparison() -> None:
    with pytest.raises(SystemExit, match="batch"):
        bench.check_equal_work(_run([8]), _run([8], batch=128), {"batch_size": 64})


def test_fp32_models_pass_and_a_bf16_one_is_named() -> None:
    fp32, bf16 = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2).to(torch.bfloat16)
    assert bench.assert_fp32({"policy": fp32}, "ours") == {"policy": "float32"}
    with pytest.raises(SystemExit, match="TRL: value has parameters of .*bfloat16"):
        bench.assert_fp32({"policy": fp32, "value": bf16}, "TRL")

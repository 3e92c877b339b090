"""Whole-pipeline runs for the benchmarks that compare loop variants (poisoning_loop.py, fairness.py
loop): one real `clinrlhf pipeline` per variant in its own CLINRLHF_HOME, the figures read back from
its summary.

Paired runs: the snapshot is canonical (clinrlhf.feedback.canonical) and the reward model's split
does not depend on the de-identification key, so two runs of one seed get the same snapshot
whatever the panel's concurrency. A shared key (`shared_key`) also gives them the same pseudonyms,
hence byte-identical snapshots; `SEQUENTIAL` (one patient at a time) is kept for the benchmarks
whose published runs used it.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

SEQUENTIAL = {"panel": {"concurrency": 1}}


@dataclass(frozen=True)
class PipelineRun:
    home: Path
    summary: dict
    """The pipeline's stdout summary (CONTRACT: before, after, kl, epsilon, ...)."""
    seconds: float
    cpu_seconds: float = math.nan
    """User + system CPU time of the run and the processes it waited for (its API server)."""


def merged(base: dict, extra: dict) -> dict:
    """`base` with `extra` laid over it, nested sections merged key by key."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = (
            merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def wilson(rate: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion observed as `rate` over `n` trials."""
    if n == 0:
        return (math.nan, math.nan)
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)


def run_pipeline(
    name: str, overrides: dict, work: Path, seed: int, shared_key: str | None = None
) -> PipelineRun:
    """One pipeline run in `work/name` with `overrides` as its config file. `shared_key`: the
    de-identification key every variant uses (synthetic patients only) instead of a fresh key per
    home. The console output goes to `work/name/console.log`; a failed run exits with its last line."""
    home = work / name
    home.mkdir(parents=True, exist_ok=True)
    config = home / "config.json"
    config.write_text(json.dumps(overrides))
    env = {**os.environ, "CLINRLHF_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)  # each variant's own store under its home
    if shared_key:
        env["CLINRLHF_DEID_KEY"] = shared_key
    started = time.monotonic()
    out_path, err_path = home / "stdout.log", home / "stderr.log"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        child = subprocess.Popen(
            [sys.executable, "-m", "clinrlhf", "pipeline", "--config", str(config), "--seed", str(seed)],
            env=env,
            stdout=out,
            stderr=err,
        )
        # wait4, not wait: the child's own CPU time, whichever runs share the machine with it.
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    stdout, stderr = out_path.read_text(errors="replace"), err_path.read_text(errors="replace")
    (home / "console.log").write_text(stdout + stderr)
    if child.returncode != 0:
        tail = (stderr or stdout).strip().splitlines()[-1:] or ["no output"]
        raise SystemExit(f"variant {name} failed (exit {child.returncode}): {tail[0]}")
    summary = json.loads(stdout[stdout.index("{") :])
    cpu = usage.ru_utime + usage.ru_stime
    return PipelineRun(home, summary, time.monotonic() - started, cpu)


def count_test_scenarios(seed: int) -> int:
    """How many test-cohort (patient, problem) scenarios the pipeline reports on, for the intervals."""
    from clinrlhf.pipeline.cohorts import CohortSizes, make_cohorts, scenarios
    from clinrlhf.pipeline.config import PipelineConfig
    from clinrlhf.world.world import load_world

    config = PipelineConfig()
    sizes = CohortSizes(test=config.test_patients)  # each cohort is drawn on its own seed
    return len(scenarios(make_cohorts(load_world(), sizes, seed, date.today()).test))

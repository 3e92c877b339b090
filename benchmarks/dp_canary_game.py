"""The one-run DP canary game with gradient-space Dirac canaries (privacy.dp.dirac_canaries), over several
games: a correct run and broken controls, at the pair unit and at a clinician unit of 4 pairs, with
the default secret noise (a fresh draw every run, as in production).

    python benchmarks/dp_canary_game.py --seeds 0 1 2 --out dp_canary_game.json     # about 3 minutes on one thread

Each row is one game: canaries included by the seed's coin, one training run through
privacy.dp.opacus_engine.make_private, the k₊ highest scores guessed "included", and the ε lower
bound at 95% confidence set against the ε the run reports. "caught" means bound > reported.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest import mock

import torch

from privacy.dp import unit_step
from privacy.dp.dirac_canaries import DiracGame, Tamper, no_clipping, play_dirac_game, quarter_noise
from privacy.dp.opacus_config import DPConfig


def _pairs_one_by_one() -> AbstractContextManager[Any]:
    """Broken control for a unit of several pairs: its pairs reach the DPOptimizer unsummed, so each
    is clipped on its own and one clinician moves the sum by (pairs)·C. Planted in the per-unit step
    the reward trainer itself uses, which the game plays through."""
    return mock.patch.object(unit_step, "sum_by_unit", lambda per_row, owner, n_units, out=None: per_row)


Control = tuple[str, Tamper | None, Callable[[], AbstractContextManager[Any]]]
CONTROLS: dict[str, list[Control]] = {
    "pair": [
        ("correct", None, nullcontext),
        ("noise / 4", quarter_noise, nullcontext),
        ("clipping off", no_clipping, nullcontext),
    ],
    "clinician (4 pairs)": [
        ("correct", None, nullcontext),
        ("noise / 4", quarter_noise, nullcontext),
        ("pairs clipped one by one", None, _pairs_one_by_one),
    ],
}


def run(seeds: list[int], epsilon: float, delta: float, canaries: int, k_plus: int) -> list[dict[str, Any]]:
    dp = DPConfig(target_epsilon=epsilon, target_delta=delta)
    base = DiracGame(canaries=canaries, k_plus=k_plus)
    rows = []
    for unit, controls in CONTROLS.items():
        setup = replace(base, rows_per_unit=4 if unit.startswith("clinician") else 1)
        for name, tamper, context in controls:
            for seed in seeds:
                started = time.perf_counter()
                with context():
                    result = play_dirac_game(dp, replace(setup, seed=seed), tamper=tamper)
                rows.append(
                    {
                        "unit": unit,
                        "run": name,
                        "seed": seed,
                        "canaries": canaries,
                        "included": result.included,
                        "guesses": result.outcome.guesses,
                        "correct": result.outcome.correct,
                        "epsilon_lower_bound": round(result.epsilon_lower_bound, 3),
                        "reported_epsilon": round(result.reported_epsilon, 3),
                        "delta": delta,
                        "noise_multiplier": round(result.noise_multiplier, 3),
                        "sample_rate": result.sample_rate,
                        "steps": result.steps,
                        "caught": result.caught,
                        "seconds": round(time.perf_counter() - started, 1),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--delta", type=float, default=1e-5)
    parser.add_argument("--canaries", type=int, default=5000)
    parser.add_argument("--k-plus", type=int, default=100)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings(
        "ignore", message="Secure RNG turned off"
    )  # the seed is secret; see opacus_engine
    rows = run(args.seeds, args.epsilon, args.delta, args.canaries, args.k_plus)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()

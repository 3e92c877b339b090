"""How many clinician judgments does active learning save? Reward-model uncertainty vs random cases.

    python benchmarks/active_learning.py --out active_learning.json     # ~50 min, one thread
    python benchmarks/active_learning.py --strategies thompson --out t.json   # the same setup, one rule
    python benchmarks/active_learning.py --quick --out /tmp/al.json      # a small setting, < 3 minutes

What is fixed, once per seed: a supervised policy (a small GPT-2 trained on historical practice as
the pipeline's SFT stage trains it, or the one in `--policy DIR`); a *pool* of synthetic feedback
patients, each (patient, target) a card with two suggestions the policy made (clinrlhf.policy.
generate.suggest: its greedy answer and one sampled alternative); the pipeline's simulated panel
(clinrlhf.panel.clinicians.default_panel: seven careful but noisy clinicians, two biased, one
adversarial), reviewing in process, no server; and held-out patients.

What loops, per strategy, in rounds: train the reward model (the project's DP trainer,
clinrlhf.reward.trainer.train_reward, DP-SGD at its default ε = 8 unless `--no-dp`) on every
judgment so far; measure it; then choose the next round's cards and send them to the panel, each
card to `--reviews-per-card` clinicians, no clinician given more than `--cap` cards in a round.
"active" chooses the cards the reward model is least sure about (clinrlhf.active: an ensemble's
disagreement or MC dropout, `--uncertainty`, scored by `--method`; or, with `--uncertainty design`,
greedy D-optimal batches from one model's features, clinrlhf.active.design; with `--valid-first`,
the default, cards whose two suggestions are valid prescriptions first), "random" chooses at random,
"random-valid" takes valid-pair cards first at random (the ablation of that filter), and "thompson"
chooses the card's pair as well: for each card, double Thompson sampling (clinrlhf.active.pairs)
among the policy's distinct valid candidates for it (`--candidates` samples, one per drug), cards
ranked by how much the ensemble's members disagree about their best candidate. "oracle" is a
reference, not a rule anyone can run: it reads the world's answer and asks about the cards the
current reward model orders wrongly, most confidently wrong first (clinrlhf never does this; it
bounds what choosing cards by the model's errors could buy).
Every strategy starts from the same random first round, and a clinician's review of a card is the
same draw under each (its random stream is seeded by the seed, the card and the clinician).

What is measured: the held-out concordance of the *best-of-n policy*: for each held-out
(patient, target), `--candidates` responses sampled from the supervised policy (one fixed draw per
seed, the same for both strategies), the one the reward model scores highest, scored by the world
(concordant or not). This is the reward model's choice among the policy's samples, not a PPO run:
a PPO run per point of the curve would take hours on 2 cores. Its ceiling is the share of
scenarios where any candidate is concordant ("oracle"); picking a candidate at random gives the
floor ("random pick"). Reported per strategy: the concordance curve against judgments collected,
the judgments needed to first reach `--target` and the ratio random / active, and the same for
every target on a 0.02 grid (`by_target`), so no single target has to be chosen in advance.

A judgment is one clinician's review of one card: a pairwise choice with two ratings and, when
both suggestions are wrong, sometimes a correction, stored as the review page stores them
(clinrlhf.reward.simulated).

Privacy, honestly: each reward model is (ε, δ)-DP with respect to its training pairs, as reported.
The loop trains one model per round (and K per round with an ensemble) on overlapping data and acts
on them, so the selection process as a whole composes those mechanisms; that total is not
accounted here. MC dropout needs one model per round, an ensemble K.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import write_json  # noqa: E402

from clinrlhf.active.study import run  # noqa: E402
from clinrlhf.active.study_settings import FULL, QUICK, StudySettings  # noqa: E402
from clinrlhf.active.uncertainty import METHODS  # noqa: E402

# Flags that override one StudySettings field of the same name (a dash for each underscore).
OVERRIDES: tuple[tuple[str, type, str], ...] = (
    ("--target", float, "held-out concordance to reach"),
    ("--rounds", int, "rounds after the first (random) one"),
    ("--cap", int, "most cards per clinician per round (workload cap)"),
    ("--reviews-per-card", int, "distinct clinicians per card"),
    ("--initial-cases", int, "cards in the first, random round"),
    ("--members", int, "ensemble members (with --uncertainty ensemble)"),
    ("--passes", int, "MC-dropout passes"),
    ("--max-per-group", int, "most cards of one target per round (diversity)"),
    ("--history-patients", int, "historical-practice patients for SFT"),
    ("--sft-epochs", int, "SFT epochs of the supervised policy"),
    ("--pool-patients", int, "synthetic feedback patients in the pool"),
    ("--validation-patients", int, "validation-cohort patients"),
    ("--candidates", int, "n of best-of-n"),
    ("--reward-epochs", int, "reward-model epochs"),
    ("--explore", float, "share of each active round chosen at random"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="a small setting (tiny policy, 3 rounds): < 2 minutes"
    )
    parser.add_argument(
        "--policy", type=Path, default=None, help="a supervised policy dir instead of training one"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("active_learning.json"), help="write every figure here"
    )
    parser.add_argument(
        "--no-dp", action="store_true", help="train the reward models without DP (a baseline)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds to average over")
    for flag, kind, text in OVERRIDES:
        parser.add_argument(flag, type=kind, help=text)
    parser.add_argument(
        "--uncertainty",
        choices=["mc-dropout", "ensemble", "design"],
        help="where the uncertainty comes from (design: one model's features, greedy D-optimal batches)",
    )
    parser.add_argument("--method", choices=list(METHODS), help="how samples become one score per pair")
    parser.add_argument(
        "--stratify",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="active: the most uncertain cards within each target, in proportion to the pool",
    )
    parser.add_argument(
        "--strategies",
        nargs="+",
        choices=["random", "active", "random-valid", "thompson", "oracle"],
        help="run only these (default: random, active, random-valid)",
    )
    parser.add_argument(
        "--valid-first",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="active: cards with two valid prescriptions first (default on)",
    )
    return parser


def study_settings(args: argparse.Namespace) -> StudySettings:
    """The quick or full settings, with every flag given on the command line in place of its field."""
    given = {f.name: getattr(args, f.name, None) for f in fields(StudySettings)}
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in given.items() if v is not None}
    return replace(QUICK if args.quick else FULL, **overrides, dp=not args.no_dp)


def main(argv: Sequence[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(1)
    settings = study_settings(args)
    started = time.monotonic()
    result = run(settings, args.policy, log=lambda line: print(line, flush=True))
    result["seconds"] = round(time.monotonic() - started, 1)
    write_json(args.out, result)
    print(
        f"target concordance {settings.target}: judgments needed {result['judgments_to_target']}; "
        f"ratios {result['ratios']}; {result['seconds']:.0f} s -> {args.out}"
    )
    return result


if __name__ == "__main__":
    main()

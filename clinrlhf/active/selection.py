"""Which cases go to which clinicians in one round of review, under a per-clinician workload cap.

A *case* is one card: a prompt and the two suggestions a clinician compares. A round sends some
cases to `reviews_per_card` distinct clinicians each, and no clinician gets more than `cap` cases
in the round (their workload). Two strategies share one interface:

- `select_uncertain`: the cases the reward model is least sure about first (uncertainty sampling,
  Lewis & Gale 1994; for preference queries Christiano et al. 2017 §2.2.4), ties broken at random;
- `select_random`: the cases in a random order, the baseline (its `uncertainty` argument is
  ignored and may be None).

Both then walk down their order and give each case to the clinicians with the fewest cases so far
this round (ties broken at random). They stop when `max_cases` are chosen or fewer than
`reviews_per_card` clinicians have room left, and skip a case when `max_per_group` cases of its
group (e.g. its target condition) are already in.

Why groups: top-k uncertainty fills a round with one kind of case (in benchmarks/active_learning.py
it once gave 94 of 250 cards to one target and none to two others), so the model learns in lurches
and forgets the common cases it is judged on (sampling bias, Dasgupta & Hsu 2008). Quotas
proportional to the pool (`proportional_quotas`) keep each round as varied as the pool and take
the most uncertain cases *within* each group: stratified uncertainty sampling, a simple form of
batch diversity (Brinker 2003; Kirsch et al. 2019, BatchBALD, for the Bayesian version).

Everything random comes from one `random.Random(seed)`, so a round is a pure function of its inputs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

GroupLimit = int | Mapping[str, int] | None
"""Most cases of one group per round: one number for every group, a number per group (a group not
in the mapping has no limit), or None for no limit."""


@dataclass(frozen=True)
class ReviewCandidate:
    id: str
    """Unique within a round's candidates: the card id."""
    prompt: str
    responses: tuple[str, str]
    """The two suggestions the clinician compares, in card order."""
    group: str = ""
    """What `max_per_group` counts, e.g. the target condition; "" puts every case in one group."""


@dataclass(frozen=True)
class Assignment:
    case: ReviewCandidate
    clinicians: tuple[str, ...]
    """The `reviews_per_card` distinct clinicians who review it, least loaded first."""


class Strategy(Protocol):
    def __call__(
        self,
        cases: Sequence[ReviewCandidate],
        uncertainty: Sequence[float] | None,
        clinicians: Sequence[str],
        *,
        cap: int,
        reviews_per_card: int,
        max_cases: int | None = None,
        max_per_group: GroupLimit = None,
        seed: int = 0,
    ) -> list[Assignment]: ...


def _check(
    cases: Sequence[ReviewCandidate],
    clinicians: Sequence[str],
    cap: int,
    reviews_per_card: int,
    max_cases: int | None,
    max_per_group: GroupLimit,
) -> None:
    if cap < 0:
        raise ValueError(f"the workload cap must be at least 0 cases per clinician, got {cap}")
    if reviews_per_card < 1:
        raise ValueError(f"reviews_per_card must be at least 1, got {reviews_per_card}")
    if len(set(clinicians)) != len(clinicians):
        raise ValueError("clinician ids must be distinct")
    if reviews_per_card > len(clinicians):
        raise ValueError(
            f"{reviews_per_card} distinct reviews per card need at least as many clinicians; "
            f"there are {len(clinicians)}"
        )
    if max_cases is not None and max_cases < 0:
        raise ValueError(f"max_cases must be None or at least 0, got {max_cases}")
    limits = max_per_group.values() if isinstance(max_per_group, Mapping) else [max_per_group]
    if any(limit is not None and limit < 0 for limit in limits):
        raise ValueError(f"max_per_group must be None, at least 0, or a mapping of such; got {max_per_group}")
    ids = [c.id for c in cases]
    if len(set(ids)) != len(ids):
        raise ValueError("case ids must be distinct")


def assign(
    order: Sequence[int],
    cases: Sequence[ReviewCandidate],
    clinicians: Sequence[str],
    *,
    cap: int,
    reviews_per_card: int,
    max_cases: int | None,
    max_per_group: GroupLimit,
    rng: random.Random,
) -> list[Assignment]:
    """Cases in `order` (indices into `cases`), each to the `reviews_per_card` least-loaded
    clinicians with room, until `max_cases` or the caps stop it (inputs already checked)."""
    load = dict.fromkeys(clinicians, 0)
    per_group: dict[str, int] = {}
    limit = len(cases) if max_cases is None else max_cases
    out: list[Assignment] = []
    for index in order:
        if len(out) >= limit:
            break
        case = cases[index]
        quota = max_per_group.get(case.group) if isinstance(max_per_group, Mapping) else max_per_group
        if quota is not None and per_group.get(case.group, 0) >= quota:
            continue
        free = [c for c in clinicians if load[c] < cap]
        if len(free) < reviews_per_card:
            break  # loads only grow: no later case can be reviewed either
        ties = {c: rng.random() for c in free}
        chosen = tuple(sorted(free, key=lambda c: (load[c], ties[c]))[:reviews_per_card])
        for c in chosen:
            load[c] += 1
        per_group[case.group] = per_group.get(case.group, 0) + 1
        out.append(Assignment(case, chosen))
    return out


def select_uncertain(
    cases: Sequence[ReviewCandidate],
    uncertainty: Sequence[float] | None,
    clinicians: Sequence[str],
    *,
    cap: int,
    reviews_per_card: int,
    max_cases: int | None = None,
    max_per_group: GroupLimit = None,
    seed: int = 0,
    explore: float = 0.0,
) -> list[Assignment]:
    """The most uncertain cases first (`uncertainty[i]` belongs to `cases[i]`; higher is less sure),
    each to `reviews_per_card` distinct clinicians, no clinician above `cap` cases.

    `explore` in [0, 1]: each next case is, with this probability, the next of a random order
    instead of the next most uncertain (epsilon-greedy mixing). Uncertainty sampling alone trains on a
    biased sample (the hard, rare cases) and can starve the model of the common ones it is judged on
    (Dasgupta & Hsu, 2008, "Hierarchical sampling for active learning" discuss this sampling bias);
    a random share keeps the sample representative."""
    _check(cases, clinicians, cap, reviews_per_card, max_cases, max_per_group)
    if not 0.0 <= explore <= 1.0:
        raise ValueError(f"explore must be in [0, 1], got {explore}")
    if uncertainty is None:
        raise ValueError("select_uncertain needs an uncertainty score per case")
    scores = [float(u) for u in uncertainty]
    if len(scores) != len(cases):
        raise ValueError(f"{len(scores)} uncertainty scores for {len(cases)} cases")
    if not all(math.isfinite(u) for u in scores):
        raise ValueError("uncertainty scores must be finite numbers")
    rng = random.Random(seed)
    ties = [rng.random() for _ in cases]
    order = sorted(range(len(cases)), key=lambda i: (-scores[i], ties[i]))
    if explore > 0.0:
        order = _mix(order, explore, rng)
    return assign(
        order,
        cases,
        clinicians,
        cap=cap,
        reviews_per_card=reviews_per_card,
        max_cases=max_cases,
        max_per_group=max_per_group,
        rng=rng,
    )


def relevant_first(uncertainty: Sequence[float], relevant: Sequence[bool]) -> list[float]:
    """Scores that rank every relevant case above every other, each kind in its own uncertainty order.

    What a label is worth depends on the decision it can change, not only on how unsure the model is
    (decision-aware active learning, e.g. Bickford Smith et al. 2023, EPIG,
    https://arxiv.org/abs/2304.08151: information about the predictions one will be asked to make).
    A comparison the downstream decision never makes (in the benchmark, a card with an invalid
    prescription, which the service filters out before the reward model is asked) is worth least,
    however uncertain. Relevance must come from something other than the answer (a formulary rule),
    or selection would leak the label."""
    if len(uncertainty) != len(relevant):
        raise ValueError(f"{len(uncertainty)} uncertainty scores but {len(relevant)} relevance flags")
    scores = [float(u) for u in uncertainty]
    if not all(math.isfinite(u) for u in scores):
        raise ValueError("uncertainty scores must be finite numbers")
    if not scores:
        return []
    offset = max(scores) - min(scores) + 1.0
    return [u + offset if r else u for u, r in zip(scores, relevant, strict=True)]


def proportional_quotas(cases: Sequence[ReviewCandidate], total: int) -> dict[str, int]:
    """Per-group limits for a round of `total` cases, proportional to each group's share of `cases`
    (rounded up, so that every group present gets at least one place and the quotas fill the round)."""
    if total < 0:
        raise ValueError(f"total must be at least 0, got {total}")
    counts: dict[str, int] = {}
    for case in cases:
        counts[case.group] = counts.get(case.group, 0) + 1
    return {g: math.ceil(total * n / len(cases)) for g, n in sorted(counts.items())}


def _mix(order: list[int], explore: float, rng: random.Random) -> list[int]:
    """`order` with a share `explore` of its places taken, in turn, from a random permutation."""
    shuffled = order[:]
    rng.shuffle(shuffled)
    sources = [iter(order), iter(shuffled)]
    taken: set[int] = set()
    mixed: list[int] = []
    while len(mixed) < len(order):
        source = sources[1] if rng.random() < explore else sources[0]
        for index in source:
            if index not in taken:
                taken.add(index)
                mixed.append(index)
                break
    return mixed


def select_random(
    cases: Sequence[ReviewCandidate],
    uncertainty: Sequence[float] | None,
    clinicians: Sequence[str],
    *,
    cap: int,
    reviews_per_card: int,
    max_cases: int | None = None,
    max_per_group: GroupLimit = None,
    seed: int = 0,
) -> list[Assignment]:
    """The baseline: cases in a seeded random order, assigned as `select_uncertain` assigns them.
    `uncertainty` is ignored (it may be None), so the two are interchangeable."""
    _check(cases, clinicians, cap, reviews_per_card, max_cases, max_per_group)
    rng = random.Random(seed)
    order = list(range(len(cases)))
    rng.shuffle(order)
    return assign(
        order,
        cases,
        clinicians,
        cap=cap,
        reviews_per_card=reviews_per_card,
        max_cases=max_cases,
        max_per_group=max_per_group,
        rng=rng,
    )


STRATEGIES: dict[str, Strategy] = {"uncertainty": select_uncertain, "random": select_random}

"""Every kind of clinician judgment, reduced to the one thing a Bradley–Terry reward model learns
from: for this prompt, response A is better than response B.

- pairwise: the preferred response beats the other; a tie carries no order and is dropped.
- rating: of two responses rated differently, the higher beats the lower (equal ratings dropped);
  the margin grows with the rating gap, as in Llama 2 (Touvron et al., 2023, §3.2.2,
  https://arxiv.org/abs/2307.09288).
- cds: an accepted suggestion beats every other suggestion shown. An override (nothing accepted)
  is read as "the recommended suggestion (index 0) was wrong": it loses to each alternative shown.
  The alternatives are not known to be right, only not rejected as the top pick, so this is the
  weakest signal; it is still the one that matters, since the top pick is what the policy acts on.
  An override whose stated reason is non-clinical (patient preference, cost, an order already
  placed: `Judgment.override_signal`) says nothing about the top pick's quality and gives no pair.
- correction: what the clinician wrote instead beats every shown response that differs from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from clinrlhf.feedback.judgment import Judgment
from clinrlhf.text.prompt import parse_drug, render_response
from clinrlhf.world.world import World


@dataclass(frozen=True)
class PreferencePair:
    prompt: str
    chosen: str
    rejected: str
    clinician: str  # clinician pseudonym
    patient: str  # patient pseudonym
    source: str  # "clinician", or e.g. "rlaif"
    margin: float = 0.0  # how much better chosen is, in reward units (used when RewardConfig.use_margin)
    card: str = ""  # the card judged: with `clinician`, the "judgment" privacy unit ("" = a unit alone)


def _pair(j: Judgment, chosen: str, rejected: str, margin: float = 0.0) -> PreferencePair:
    return PreferencePair(j.prompt, chosen, rejected, j.clinician, j.patient, j.source, margin, j.card)


def _check_index(j: Judgment, index: int, what: str) -> None:
    if not 0 <= index < len(j.responses):
        raise ValueError(
            f"judgment on card {j.card}: {what} index {index} is outside its {len(j.responses)} responses"
        )


def _pairwise(j: Judgment) -> Iterator[PreferencePair]:
    if j.preferred is None:
        return  # a tie says nothing about order
    _check_index(j, j.preferred, "preferred")
    for i, other in enumerate(j.responses):
        if i != j.preferred:
            yield _pair(j, j.responses[j.preferred], other)


def _rating(j: Judgment, margin_per_point: float) -> Iterator[PreferencePair]:
    if len(j.ratings) != len(j.responses):
        raise ValueError(
            f"judgment on card {j.card}: {len(j.ratings)} ratings for {len(j.responses)} responses"
        )
    rated = [(r, text) for r, text in zip(j.ratings, j.responses, strict=True) if r is not None]
    for a, (ra, ta) in enumerate(rated):
        for rb, tb in rated[a + 1 :]:
            if ra != rb:
                (hi, th), (lo, tl) = ((ra, ta), (rb, tb)) if ra > rb else ((rb, tb), (ra, ta))
                yield _pair(j, th, tl, margin_per_point * (hi - lo))


def _cds(j: Judgment) -> Iterator[PreferencePair]:
    if j.accepted is not None:
        _check_index(j, j.accepted, "accepted")
        yield from (
            _pair(j, j.responses[j.accepted], other) for i, other in enumerate(j.responses) if i != j.accepted
        )
    elif j.override_signal != "non-clinical":
        yield from (_pair(j, other, j.responses[0]) for other in j.responses[1:])


def _correction(j: Judgment, world: World | None) -> Iterator[PreferencePair]:
    if not j.correction:
        return
    correction = j.correction.strip()
    if world is None:
        yield from (_pair(j, correction, r) for r in j.responses if r.strip() != correction)
        return
    # With the world known, compare by drug (a reworded sig is the same choice) and write the
    # correction the way the policy would, so the reward model scores the policy's own language.
    drug = parse_drug(world, correction)
    if drug is not None:
        correction = render_response(world, drug)
    for r in j.responses:
        if (parse_drug(world, r) != drug) if drug is not None else (r.strip() != correction):
            yield _pair(j, correction, r)


def pairs_from_judgments(
    judgments: Iterable[Judgment], *, world: World | None = None, margin_per_point: float = 0.5
) -> list[PreferencePair]:
    """Preference pairs from judgments of every kind, in input order.

    `world`, when given, makes corrections compare and render by drug. `margin_per_point` is the
    pair margin per point of rating difference (rating judgments only; others have margin 0).
    Pairs whose two texts are identical carry no preference and are dropped.
    """
    pairs: list[PreferencePair] = []
    for j in judgments:
        if j.kind == "pairwise":
            found: Iterable[PreferencePair] = _pairwise(j)
        elif j.kind == "rating":
            found = _rating(j, margin_per_point)
        elif j.kind == "cds":
            found = _cds(j)
        elif j.kind == "correction":
            found = _correction(j, world)
        else:
            raise ValueError(f"judgment on card {j.card}: unknown kind {j.kind!r}")
        pairs.extend(p for p in found if p.chosen.strip() != p.rejected.strip())
    return pairs

"""The snapshot is a function of what was judged, not of when or in which thread it was recorded."""

from __future__ import annotations

import random
from dataclasses import replace

from clinrlhf.feedback.canonical import canonical_judgments
from clinrlhf.feedback.judgment import Judgment, to_ndjson

PROMPTS = ("sex female age 70-74 ; treat hypertension ->", "sex male age 40-44 ; treat diabetes ->")


def _recorded(card_ids: list[str]) -> list[Judgment]:
    """One panel's judgments as the store recorded them: two patients, cards under random ids."""
    out = []
    for n, (card, prompt) in enumerate(zip(card_ids, PROMPTS * 2, strict=False)):
        shown = [("drug a", "drug b"), ("drug c", "drug a"), ("drug b", "drug e"), ("drug e", "drug c")][n]
        base = Judgment("pairwise", card, f"pt-{n % 2}", "r1", prompt, shown, preferred=0)
        out += [base, replace(base, clinician="r2", preferred=1)]
        out.append(Judgment("cds", card, f"pt-{n % 2}", "doc", prompt, (*shown, "drug d"), accepted=None))
    return out


def test_the_same_judgments_in_any_order_under_any_card_ids_give_the_same_bytes() -> None:
    first = _recorded(["c-1", "c-2", "c-3", "c-4"])
    again = _recorded(["f00", "e11", "d22", "c33"])  # another server run: fresh UUIDs
    random.Random(3).shuffle(again)  # another thread timing
    assert to_ndjson(canonical_judgments(first)) == to_ndjson(canonical_judgments(again))
    assert to_ndjson(first) != to_ndjson(again)  # what the export gave before


def test_judgments_of_one_card_keep_one_id_and_different_cards_different_ids() -> None:
    canon = canonical_judgments(_recorded(["c-1", "c-2", "c-3", "c-4"]))
    by_card: dict[str, set[tuple[str, str]]] = {}
    for j in canon:
        by_card.setdefault(j.card, set()).add((j.patient, j.prompt))
    assert len(by_card) == 4 and all(len(v) == 1 for v in by_card.values())
    assert all(j.card.startswith("card-") for j in canon)
    assert canonical_judgments(canon) == canon  # canonical is a fixed point
    # A patient seen twice and shown the same things: one card, so one (larger) privacy unit.
    twice = _recorded(["c-1", "c-2", "c-3", "c-4"]) + [replace(j, card="c-5") for j in _recorded(["c-1"])]
    assert len({j.card for j in canonical_judgments(twice)}) == 4


def test_a_different_judgment_changes_the_snapshot() -> None:
    judgments = _recorded(["c-1", "c-2", "c-3", "c-4"])
    flipped = [replace(judgments[0], preferred=1), *judgments[1:]]
    assert to_ndjson(canonical_judgments(judgments)) != to_ndjson(canonical_judgments(flipped))

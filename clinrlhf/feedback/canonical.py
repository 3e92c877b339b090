"""The canonical form of a snapshot: its judgments in content order, its cards named by content.

The store records judgments as the panel's threads deliver them and names cards with random UUIDs,
so two runs that judged exactly the same things exported different bytes. Here the order and the
card names are functions of what was judged alone, and the same seed gives the same snapshot,
byte for byte (with the same de-identification key: the patient and clinician pseudonyms are keyed).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace

from clinrlhf.feedback.judgment import Judgment

CARD_PREFIX = "card-"


def _card_name(judgments: list[Judgment]) -> str:
    """A card's name from what it showed: the patient, the prompt and every response any judgment of
    it names. Two cards that showed the same patient the same things get one name, which merges
    them into one privacy unit under the "judgment" unit: larger, never smaller, so never weaker."""
    shown = sorted({r for j in judgments for r in j.responses})
    first = judgments[0]
    text = json.dumps([first.patient, first.prompt, shown])
    return CARD_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:32]


def _order(j: Judgment) -> tuple[str, str]:
    """What is judged first (prompt, responses, verdict), pseudonyms only to break ties, so that the
    order barely depends on the de-identification key; the whole line last makes the order total."""
    raw = j.to_dict()
    content = {k: v for k, v in raw.items() if k not in ("patient", "clinician", "card")}
    return json.dumps(content, sort_keys=True), json.dumps(raw, sort_keys=True)


def canonical_judgments(judgments: Iterable[Judgment]) -> list[Judgment]:
    """The same judgments, cards renamed by content (`card-<sha256 prefix>`) and sorted by content."""
    by_card: dict[str, list[Judgment]] = defaultdict(list)
    listed = list(judgments)
    for j in listed:
        by_card[j.card].append(j)
    names = {card: _card_name(group) for card, group in by_card.items()}
    return sorted((replace(j, card=names[j.card]) for j in listed), key=_order)

"""One de-identified clinician judgment about the suggestions made for one case.

The store exports judgments; reward training turns them into preference pairs. Nothing here can
hold an identifier: patients and clinicians are HMAC pseudonyms, and text is the policy's own
language (prompts and responses), never free text from a record.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Literal

Kind = Literal["pairwise", "rating", "cds", "correction"]
# What a CDS override's stated reason says (clinrlhf.store.override_reasons holds the table):
# "clinical" = the recommendation was clinically wrong here; "non-clinical" = nothing about that.
OverrideSignal = Literal["clinical", "non-clinical"]
CLINICIAN = "clinician"
"""The source of clinicians' own judgments; machine labels carry another (e.g. "rlaif")."""


@dataclass(frozen=True)
class Judgment:
    kind: Kind
    card: str  # the CDS card (or review item) the judgment is about
    patient: str  # patient pseudonym
    clinician: str  # clinician pseudonym
    prompt: str
    responses: tuple[str, ...]  # suggestion texts in card order; index 0 is the recommended one
    preferred: int | None = None  # pairwise: index of the preferred response; None is a tie
    ratings: tuple[int | None, ...] = ()  # rating: 1-5 per response, None where not rated
    accepted: int | None = None  # cds: index of the accepted suggestion; None means overridden
    correction: str | None = None  # correction: the response the clinician wrote instead
    source: str = CLINICIAN  # or e.g. "rlaif" for machine labels kept apart
    override_signal: OverrideSignal | None = None  # cds overrides: the signal of the stated reason

    def to_dict(self) -> dict:
        raw = asdict(self)
        if raw["override_signal"] is None:
            del raw["override_signal"]  # written as before it existed: old snapshots keep their digest
        return raw

    @classmethod
    def from_dict(cls, raw: dict) -> Judgment:
        raw = dict(raw)
        raw["responses"] = tuple(raw["responses"])
        raw["ratings"] = tuple(raw.get("ratings", ()))
        return cls(**raw)


def to_ndjson(judgments: Iterable[Judgment]) -> bytes:
    """Canonical NDJSON (sorted keys, one judgment per line): the exact bytes that get hashed."""
    return b"".join(json.dumps(j.to_dict(), sort_keys=True).encode() + b"\n" for j in judgments)


def from_ndjson(data: bytes | str) -> list[Judgment]:
    """The judgments of NDJSON written by to_ndjson; blank lines are skipped. A line that is not a
    judgment raises ValueError naming its number (never its content, which may be anything)."""
    text = data.decode() if isinstance(data, bytes) else data
    judgments = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            judgments.append(Judgment.from_dict(json.loads(line)))
        except (ValueError, TypeError, KeyError) as err:
            raise ValueError(f"line {number} is not a judgment ({type(err).__name__})") from None
    return judgments


def snapshot_sha256(judgments: Iterable[Judgment]) -> str:
    return hashlib.sha256(to_ndjson(judgments)).hexdigest()

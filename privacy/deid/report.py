"""The de-identification report of a batch: counts by identifier type and by method, never values."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from privacy.deid.scrub.spans import SAFE_HARBOR

# Structured identifier labels (rule files' "identifier") mapped to the Safe Harbor list, A to R.
_STRUCTURED = {
    "name": "A names",
    "geographic": "B geographic subdivisions",
    "birth_date": "C dates",
    "date": "C dates",
    "telephone": "D telephone numbers",
    "fax": "E fax numbers",
    "email": "F email addresses",
    "ssn": "G social security numbers",
    "mrn": "H medical record numbers",
    "health_plan": "I health plan beneficiary numbers",
    "account": "J account numbers",
    "license": "K certificate/license numbers",
    "vehicle": "L vehicle identifiers",
    "device": "M device identifiers",
    "url": "N URLs",
    "ip": "O IP addresses",
    "biometric": "P biometric identifiers",
    "photo": "Q full-face photographs",
    "id": "R other unique identifying numbers",
    "reference": "R other unique identifying numbers",
    "other_id": "R other unique identifying numbers",
}


@dataclass
class DeidReport:
    """Per batch. `by_identifier` counts elements (or text spans) by what they identified,
    `by_method` by what was done to them, `safe_harbor` maps both onto the 18 Safe Harbor types."""

    rules_name: str
    rules_version: str
    rules_sha256: str
    bundles: int = 0
    resources_in: int = 0
    resources_out: int = 0
    by_identifier: Counter[str] = field(default_factory=Counter)
    by_method: Counter[str] = field(default_factory=Counter)
    dropped_resources: Counter[str] = field(default_factory=Counter)  # resourceType -> dropped whole
    text_entities: Counter[str] = field(default_factory=Counter)  # scrubbed spans by entity type
    safe_harbor: Counter[str] = field(default_factory=Counter)
    k_anonymity: dict[str, Any] | None = None

    def add(self, counts: Mapping[str, int], *, resources_in: int = 0, resources_out: int = 0) -> None:
        """Fold in one bundle's counts ("<identifier>:<method>" -> n)."""
        self.bundles += 1
        self.resources_in += resources_in
        self.resources_out += resources_out
        for what, n in counts.items():
            identifier, _, method = what.rpartition(":")
            self.by_method[method] += n
            if identifier.startswith("resource."):
                self.dropped_resources[identifier.removeprefix("resource.")] += n
            elif identifier.startswith("text."):
                entity = identifier.removeprefix("text.")
                self.text_entities[entity] += n
                self.safe_harbor[SAFE_HARBOR.get(entity, "R other unique identifying numbers")] += n
            else:
                self.by_identifier[identifier] += n
                if identifier in _STRUCTURED:
                    self.safe_harbor[_STRUCTURED[identifier]] += n

    def merge(self, other: DeidReport) -> None:
        self.bundles += other.bundles
        self.resources_in += other.resources_in
        self.resources_out += other.resources_out
        for mine, theirs in (
            (self.by_identifier, other.by_identifier),
            (self.by_method, other.by_method),
            (self.dropped_resources, other.dropped_resources),
            (self.text_entities, other.text_entities),
            (self.safe_harbor, other.safe_harbor),
        ):
            mine.update(theirs)

    def to_dict(self) -> dict[str, Any]:
        def ordered(c: Counter[str]) -> dict[str, int]:
            return {k: v for k, v in sorted(c.items()) if v}

        return {
            "rules": {"name": self.rules_name, "version": self.rules_version, "sha256": self.rules_sha256},
            "bundles": self.bundles,
            "resources_in": self.resources_in,
            "resources_out": self.resources_out,
            "by_identifier": ordered(self.by_identifier),
            "by_method": ordered(self.by_method),
            "dropped_resources": ordered(self.dropped_resources),
            "text_entities": ordered(self.text_entities),
            "safe_harbor": ordered(self.safe_harbor),
            "k_anonymity": self.k_anonymity,
        }


def combine(reports: Iterable[DeidReport], *, name: str, version: str, sha256: str) -> DeidReport:
    total = DeidReport(name, version, sha256)
    for r in reports:
        total.merge(r)
    return total

"""The override reasons are CDS Hooks 3.0's non-adherence reason codes, exactly as the HL7
CodeSystem defines them, and each one says how the reward model reads an override (issue 24).

The table is checked against the CodeSystem and ValueSet files of the specification itself
(`../shared/standards/cds-hooks-3.0/`), so a typo in a code or a display cannot pass."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clinrlhf.store import override_reasons
from clinrlhf.store.override_reasons import (
    LEGACY_SYSTEM,
    OFFERED,
    SYSTEM,
    Known,
    classify,
    signal_of,
)

SPEC = Path(__file__).resolve().parents[4] / "shared" / "standards" / "cds-hooks-3.0"


def _concepts(concepts: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for concept in concepts:
        yield concept
        yield from _concepts(concept.get("concept", []))


@pytest.fixture(scope="module")
def code_system() -> dict[str, Any]:
    return dict(json.loads((SPEC / "CodeSystem-non-adherence-reason-codes.json").read_text()))


def test_the_system_and_every_code_and_display_are_the_code_systems(code_system: dict[str, Any]) -> None:
    assert code_system["url"] == SYSTEM
    spec = {c["code"]: c["display"] for c in _concepts(code_system["concept"])}
    ours = {r.code: r.display for r in override_reasons.REASONS if r.system == SYSTEM}
    assert ours == spec


def test_cards_offer_the_clinical_value_set_in_its_order() -> None:
    value_set = json.loads((SPEC / "ValueSet-non-adherence-reason-clinical.json").read_text())
    (include,) = value_set["compose"]["include"]
    assert include["system"] == SYSTEM
    assert [(r.system, r.code) for r in OFFERED] == [(SYSTEM, c["code"]) for c in include["concept"]]
    assert all(r.display for r in OFFERED)  # cds-resp-4: every offered reason has a display


@pytest.mark.parametrize(
    "code",
    [
        "patient-contraindication",
        "recipient-disagrees-evidence",
        "does-not-align-latest-evidence",
        "likely-negative-health-outcomes",
        "patient-ineligible",
    ],
)
def test_a_clinical_reason_says_the_suggestion_was_clinically_worse(code: str) -> None:
    assert signal_of(SYSTEM, code) == "clinical"


@pytest.mark.parametrize(
    "code",
    [
        "does-not-align-preferences",
        "prefers-alternative",
        "patient-refuses",
        "too-costly-uncovered",
        "service-not-available",
        "action-completed",
        "indication-order-exists",
        "limited-time",
    ],
)
def test_a_non_clinical_reason_says_nothing_about_the_suggestions_quality(code: str) -> None:
    assert signal_of(SYSTEM, code) == "non-clinical"


def test_reasons_of_cards_issued_before_3_0_keep_their_meaning() -> None:
    assert signal_of(LEGACY_SYSTEM, "contraindicated") == "clinical"
    assert signal_of(LEGACY_SYSTEM, "patient-preference") == "non-clinical"
    assert signal_of(LEGACY_SYSTEM, "other") is None  # no stated reason: read as any override
    assert signal_of(None, None) is None


def test_a_reason_is_ours_foreign_or_invalid() -> None:
    assert classify(SYSTEM, "patient-refuses") is Known.OURS
    assert classify(None, "patient-refuses") is Known.OURS  # read in the system that defines it
    assert classify(LEGACY_SYSTEM, "contraindicated") is Known.OURS
    # CDS Hooks 3.0: "A CDS Client MAY augment the override reasons ... with its own reasons".
    assert classify("https://example.com/cds-hooks/override-reason-system", "d7ecf885") is Known.FOREIGN
    assert classify(SYSTEM, "made-up") is Known.INVALID
    assert classify(None, "made-up") is Known.INVALID

"""What of the screening's quality report may leave the run: per-clinician rows keyed by a roster
fixed before training, or none.

The screening (Dawid–Skene reliability, the guideline check, quarantine) reads the raw judgments in
the clear, outside the DP mechanism; the reward model's guarantee is stated conditional on its
outcome (docs/privacy.md). What it *publishes* must not also say who took part: a table with a
row per clinician found in the judgments does, through its keys alone. So, as for the reward run's
own tables (clinrlhf.reward.rater_release):

- under a user-level unit ("clinician", "patient"), or without a roster, no per-clinician row and
  no pseudonym leaves: counts only (how many clinicians flagged and quarantined, judgments left out);
- under an event-level unit ("pair", "judgment") with a roster, one row per roster member, in the
  roster's order: a member with no judgments gets a "no data" row, and a clinician off the roster
  is counted but not named.

The rows' values stay statistics in the clear; the report lists them under "not covered".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

USER_LEVEL_UNITS = ("clinician", "patient")
"""Units whose neighbours differ by a person's every judgment: no per-clinician value is published."""


def may_key_by_roster(unit: str, roster: Sequence[str] | None) -> bool:
    """Whether per-clinician values may be published at all (keyed by `roster`)."""
    return unit not in USER_LEVEL_UNITS and roster is not None


def _no_data(clinician: str) -> dict[str, Any]:
    return {
        "clinician": clinician,
        "labels": 0,
        "accuracy": None,
        "robust_z": None,
        "flagged": [],
        "safety_items": None,
        "unsafe_choices": None,
        "quarantined": False,
        "kappa_vs_others": None,
        "kappa_low": None,
        "kappa_high": None,
        "agreement_items": 0,
        "no_data": True,
    }


def released_quality(quality: dict[str, Any], unit: str, roster: Sequence[str] | None) -> dict[str, Any]:
    """`quality` (clinrlhf.feedback.screening.quality_report) as it may be published."""
    raters = quality.get("raters", [])
    counts = {
        "clinicians_screened": len(raters),
        "clinicians_flagged": sum(1 for r in raters if r["flagged"]),
        "clinicians_quarantined": len(quality.get("quarantined", [])),
    }
    out = {k: v for k, v in quality.items() if k not in ("raters", "quarantined", "safety_check")}
    safety = quality.get("safety_check")
    if not may_key_by_roster(unit, roster):
        withheld = (
            f"per-clinician rows withheld: the privacy unit is {unit!r}"
            if roster
            else ("per-clinician rows withheld: no roster fixed before training")
        )
        safety_out = None if safety is None else {"rule": safety["rule"], "clinicians": []}
        return (
            out | counts | {"raters": [], "quarantined": [], "safety_check": safety_out, "withheld": withheld}
        )
    assert roster is not None
    by_clinician = {r["clinician"]: r for r in raters}
    enrolled = set(roster)
    safety_out = None
    if safety is not None:
        rows = [row for row in safety["clinicians"] if row["clinician"] in enrolled]
        safety_out = {"rule": safety["rule"], "clinicians": rows}
    return (
        out
        | counts
        | {
            "raters": [by_clinician.get(c) or _no_data(c) for c in roster],
            "quarantined": [c for c in quality.get("quarantined", []) if c in enrolled],
            "safety_check": safety_out,
            "roster": list(roster),
        }
    )

"""Screen a feedback snapshot before reward training: one source, reliable raters, nobody quarantined.

1. Sources. Clinicians' judgments (`source = "clinician"`) and machine labels (e.g. the RLAIF
   rubric, `source = "ai"`) are different evidence; a snapshot that holds both is refused unless
   the caller asks for the mix explicitly (`allow_mixed_sources`), so they never blend silently.
2. Reliability. Dawid–Skene EM (clinrlhf.feedback.reliability) estimates each clinician's accuracy
   from the pairwise items several of them judged; outliers are flagged. Given the guideline, a
   second check (clinrlhf.feedback.safety) flags clinicians who choose the unsafe response of a
   safety-critical comparison far more often than the rest of the panel: the targeted error one
   accuracy over all items hides.
3. Quarantine. Flagged clinicians are quarantined (an audit event each; clinrlhf.store.quarantine)
   and every quarantined clinician's judgments are left out of training until a person releases
   them with `clinrlhf quarantine release`.

This module holds the statistics (`screen` does the first two); the store's part, quarantine, is
the pipeline's (`clinrlhf.pipeline.screening.screen_snapshot`). The `quality_report` dict is what
the pipeline logs (feedback/quality.json) and the compliance report shows: reliability table,
per-clinician and per-case-type agreement, who was left out.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from clinrlhf.feedback.clinician_agreement import pairwise_choices, per_case_type, per_clinician
from clinrlhf.feedback.judgment import CLINICIAN, Judgment
from clinrlhf.feedback.reliability import (
    Flag,
    OutlierConfig,
    ReliabilityResult,
    dawid_skene,
    preference_labels,
    rater_table,
)
from clinrlhf.feedback.safety import Grade, SafetyCheckConfig, SafetyRow, reason, safety_counts, safety_table


class MixedSourcesError(ValueError):
    """A snapshot mixes clinicians' judgments with machine labels, and nobody asked for that."""


@dataclass(frozen=True)
class ScreeningConfig:
    outliers: OutlierConfig = field(default_factory=OutlierConfig)
    safety: SafetyCheckConfig = field(default_factory=SafetyCheckConfig)
    """The guideline check of safety-critical choices (runs when `screen` is given a grade)."""
    auto_quarantine: bool = True
    """Quarantine flagged clinicians at once (a person releases them after review)."""
    allow_mixed_sources: bool = False
    n_boot: int = 500
    """Bootstrap resamples for the agreement intervals in the quality report."""


def sources(judgments: Iterable[Judgment]) -> dict[str, int]:
    return dict(sorted(Counter(j.source for j in judgments).items()))


def check_sources(judgments: Sequence[Judgment], allow_mixed: bool = False) -> dict[str, int]:
    """Judgments per source; raises MixedSourcesError when there is more than one and the caller
    did not allow it."""
    found = sources(judgments)
    if len(found) > 1 and not allow_mixed:
        listed = ", ".join(f"{s} ({n})" for s, n in found.items())
        raise MixedSourcesError(
            f"the snapshot mixes feedback sources: {listed}; train on one source, "
            "or pass allow_mixed_sources=True to mix them on purpose"
        )
    return found


def exclude(judgments: Iterable[Judgment], clinicians: Iterable[str]) -> list[Judgment]:
    """The judgments of everyone but `clinicians` (machine labels are never excluded by rater)."""
    held = set(clinicians)
    return [j for j in judgments if j.source != CLINICIAN or j.clinician not in held]


def _finite(x: float) -> float | None:
    return None if math.isnan(x) or math.isinf(x) else x


def quality_report(
    judgments: Sequence[Judgment],
    result: ReliabilityResult,
    reliability: Sequence[Flag],
    config: ScreeningConfig,
    quarantined: Iterable[str],
    excluded: int,
    safety: Sequence[SafetyRow] | None = None,
) -> dict[str, Any]:
    """JSON-ready: the reliability table (`reliability`: rater_table of `result`, the rows the flags
    came from), agreement per clinician and per case type, the guideline check of safety-critical
    choices (None: not run), quarantine."""
    held = set(quarantined)
    choices, types = pairwise_choices(judgments)
    agreement = {a.clinician: a for a in per_clinician(choices, n_boot=config.n_boot)}
    checked = {row.clinician: row for row in safety or ()}
    raters = []
    for row in reliability:
        a, s = agreement.get(row.rater), checked.get(row.rater)
        raters.append(
            {
                "clinician": row.rater,
                "labels": row.labels,
                "accuracy": row.accuracy,
                "robust_z": row.robust_z,
                "flagged": [*row.reasons, *([reason(s)] if s and s.flagged else [])],
                "safety_items": s.items if s else None,
                "unsafe_choices": s.unsafe_choices if s else None,
                "quarantined": row.rater in held,
                "kappa_vs_others": _finite(a.kappa.estimate) if a else None,
                "kappa_low": _finite(a.kappa.low) if a else None,
                "kappa_high": _finite(a.kappa.high) if a else None,
                "agreement_items": a.items if a else 0,
            }
        )
    cases = {
        case: {k: _finite(v) for k, v in interval.to_dict().items()}
        for case, interval in per_case_type(choices, types, n_boot=config.n_boot).items()
    }
    return {
        "sources": sources(judgments),
        "reliability": {
            "method": "Dawid-Skene EM (one-coin, pairwise)",
            "items": len(result.items),
            "iterations": result.iterations,
            "converged": result.converged,
            "outlier_rule": asdict(config.outliers),
        },
        "raters": raters,
        "case_types": cases,
        "safety_check": None if safety is None else _safety_section(safety, config.safety),
        "quarantined": sorted(held),
        "excluded_judgments": excluded,
    }


def _safety_section(rows: Sequence[SafetyRow], config: SafetyCheckConfig) -> dict[str, Any]:
    return {
        "rule": asdict(config),
        "clinicians": [{**asdict(row), "share": row.share} for row in rows],
    }


def flag_reasons(reliability: Sequence[Flag], safety: Sequence[SafetyRow] | None) -> dict[str, str]:
    """clinician -> why they are flagged, by either check."""
    why: dict[str, list[str]] = {}
    for flag in reliability:
        if flag.reasons:
            detail = f"{'; '.join(flag.reasons)} over {flag.labels} labels"
            why.setdefault(flag.rater, []).append(f"flagged by rater reliability: {detail}")
    for row in safety or ():
        if row.flagged:
            why.setdefault(row.clinician, []).append(f"flagged by the guideline check: {reason(row)}")
    return {clinician: "; ".join(parts) for clinician, parts in why.items()}


@dataclass(frozen=True)
class Screening:
    """What the checks found in a snapshot, before anyone is quarantined."""

    result: ReliabilityResult
    reliability: list[Flag]
    """The Dawid-Skene rater table (`rater_table` of `result`)."""
    safety: list[SafetyRow] | None
    """The guideline check's rows; None when it did not run."""
    flags: dict[str, str]
    """clinician -> why they are flagged (`flag_reasons`)."""


def screen(judgments: Sequence[Judgment], config: ScreeningConfig, grade: Grade | None = None) -> Screening:
    """Check the sources (MixedSourcesError), estimate rater reliability and, with `grade` (the
    guideline) and `config.safety.enabled`, run the safety check. Pure: quarantining the flagged
    clinicians is the pipeline's step (clinrlhf.pipeline.screening)."""
    check_sources(judgments, config.allow_mixed_sources)
    result = dawid_skene(preference_labels(judgments))
    safety = None
    if grade is not None and config.safety.enabled:
        safety = safety_table(safety_counts(judgments, grade), config.safety)
    reliability = rater_table(result, config.outliers)
    return Screening(result, reliability, safety, flag_reasons(reliability, safety))

"""What the feedback snapshot says about the feedback: who gave it, how much, and how much the
clinicians agree. Computed from the de-identified snapshot that trained the reward model."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from clinrlhf.compliance.agreement import agreement_summary
from clinrlhf.feedback import Judgment
from clinrlhf.feedback.clinician_agreement import pairwise_choices


def _pairwise_choices(judgments: Sequence[Judgment]) -> dict[str, list[str]]:
    """Item -> the clinicians' choices, as first, second (in sorted-text order) or tie: the same
    nominal categories as the per-case-type κ of the screening (clinrlhf.feedback.clinician_agreement),
    so the pooled κ and the per-type κ measure the same thing. (Taking the chosen response's text as
    the category made every drug its own category: chance agreement near 0 and κ ≈ observed.)"""
    choices, _ = pairwise_choices(judgments)
    return {item: list(votes.values()) for item, votes in choices.items()}


def feedback_stats(judgments: Sequence[Judgment]) -> dict[str, Any]:
    per_clinician = Counter(j.clinician for j in judgments if j.source == "clinician")
    volumes = sorted(per_clinician.values())
    cds = [j for j in judgments if j.kind == "cds"]
    agreement = agreement_summary(_pairwise_choices(judgments))
    return {
        "judgments": len(judgments),
        "by_kind": dict(sorted(Counter(j.kind for j in judgments).items())),
        "clinicians": len(per_clinician),
        "per_clinician": {
            "min": volumes[0] if volumes else 0,
            "median": statistics.median(volumes) if volumes else 0,
            "max": volumes[-1] if volumes else 0,
        },
        "cards": len({j.card for j in judgments}),
        "patients": len({j.patient for j in judgments}),
        "cds_accept_rate": sum(j.accepted is not None for j in cds) / len(cds) if cds else float("nan"),
        "agreement_items": int(agreement["items"]),
        "agreement_observed": agreement["observed"],
        "agreement_kappa": agreement["kappa"],
        "machine_labels": sum(j.source != "clinician" for j in judgments),
    }

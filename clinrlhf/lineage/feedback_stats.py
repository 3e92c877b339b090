"""What the feedback snapshot says about the feedback: who gave it, how much, and how much the
clinicians agree. Computed from the de-identified snapshot that trained the reward model."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from clinrlhf.feedback import Judgment
from clinrlhf.lineage.agreement import agreement_summary


def _pairwise_choices(judgments: Sequence[Judgment]) -> dict[tuple[str, tuple[str, ...]], list[str]]:
    """Item = (card, the responses compared); choice = the preferred response, or a tie."""
    items: dict[tuple[str, tuple[str, ...]], list[str]] = defaultdict(list)
    for j in judgments:
        if j.kind == "pairwise":
            items[(j.card, tuple(sorted(j.responses)))].append(
                "tie" if j.preferred is None else j.responses[j.preferred]
            )
    return items


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

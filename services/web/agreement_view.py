"""What the agreement admin view shows: live agreement over the clinicians' judgments in the store,
one table by case type and one by clinician, each row a statistic with its bootstrap interval.

The statistics are clinrlhf.feedback's, computed as the compliance report's quality tables are
(clinrlhf.feedback.screening.quality_report): pairwise choices in sorted-text order
(`pairwise_choices`), Fleiss' κ per case type (`per_case_type`) and each clinician's Cohen's κ
against the majority of the others (`per_clinician`). Krippendorff's α is added per case type: nominal
over the same pairwise choices, ordinal and interval over the 1-5 ratings. Ratings are keyed by card
and suggestion text, not by the position a suggestion was shown in, because the review page shows
each clinician the pair in an order of their own.

Only clinicians' judgments count (machine labels are other evidence), and clinicians appear by
pseudonym only: a judgment holds nothing else about them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from clinrlhf.feedback.agreement import Interval, Level, krippendorff_alpha_ci
from clinrlhf.feedback.clinician_agreement import (
    CHOICES,
    Choices,
    case_type,
    pairwise_choices,
    per_case_type,
    per_clinician,
)
from clinrlhf.feedback.judgment import CLINICIAN, Judgment
from clinrlhf.feedback.screening import ScreeningConfig

N_BOOT = ScreeningConfig().n_boot  # the compliance report's resamples, so the two agree
CONFIDENCE = 0.95
SEED = 0

FLEISS = "Fleiss' κ"
ALPHA = {level: f"Krippendorff's α ({level})" for level in ("nominal", "ordinal", "interval")}
COHEN = "Cohen's κ vs the others' majority"


@dataclass(frozen=True)
class StatRow:
    group: str  # the case type, or the clinician's pseudonym
    statistic: str
    estimate: float | None  # None where the statistic is undefined (e.g. every judgment alike)
    low: float | None
    high: float | None
    items: int

    @classmethod
    def of(cls, group: str, statistic: str, interval: Interval) -> StatRow:
        return cls(
            group,
            statistic,
            _finite(interval.estimate),
            _finite(interval.low),
            _finite(interval.high),
            interval.items,
        )


@dataclass(frozen=True)
class AgreementView:
    case_types: tuple[StatRow, ...]
    clinicians: tuple[StatRow, ...]
    judgments: int  # the clinicians' pairwise and rating judgments the tables draw on
    n_boot: int
    confidence: float

    @property
    def empty(self) -> bool:
        """Nothing to show: no case was judged by two clinicians or more."""
        return not self.case_types and not self.clinicians


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _matrix(cells: dict[tuple[str, str], float]) -> np.ndarray:
    """A (raters, items) reliability matrix, NaN where a rater did not judge an item."""
    raters = sorted({r for r, _ in cells})
    items = sorted({i for _, i in cells})
    data = np.full((len(raters), len(items)), np.nan)
    r_at, i_at = {r: n for n, r in enumerate(raters)}, {i: n for n, i in enumerate(items)}
    for (rater, item), value in cells.items():
        data[r_at[rater], i_at[item]] = value
    return data


def choice_matrix(choices: Choices, types: dict[str, str], case: str) -> np.ndarray:
    """The case type's pairwise choices as nominal codes (the index in CHOICES)."""
    return _matrix(
        {
            (clinician, item): float(CHOICES.index(choice))
            for item, votes in choices.items()
            if types[item] == case
            for clinician, choice in votes.items()
        }
    )


def rating_matrices(judgments: Sequence[Judgment]) -> dict[str, np.ndarray]:
    """Per case type, the 1-5 ratings of each (card, suggestion text) by each clinician; a later
    rating of the same suggestion by the same clinician replaces an earlier one."""
    cells: dict[str, dict[tuple[str, str], float]] = defaultdict(dict)
    for j in judgments:
        if j.kind != "rating" or j.source != CLINICIAN:
            continue
        for text, rating in zip(j.responses, j.ratings, strict=False):
            if rating is not None:
                cells[case_type(j.prompt)][(j.clinician, f"{j.card}\x00{text}")] = float(rating)
    return {case: _matrix(c) for case, c in sorted(cells.items())}


def _alpha(data: np.ndarray, level: Level, n_boot: int) -> Interval:
    return krippendorff_alpha_ci(data, level, n_boot=n_boot, confidence=CONFIDENCE, seed=SEED)


def agreement_view(judgments: Sequence[Judgment], *, n_boot: int = N_BOOT) -> AgreementView:
    choices, types = pairwise_choices(judgments, source=CLINICIAN)
    cases: list[StatRow] = []
    for case, fleiss in per_case_type(
        choices, types, n_boot=n_boot, confidence=CONFIDENCE, seed=SEED
    ).items():
        cases.append(StatRow.of(case, FLEISS, fleiss))
        cases.append(
            StatRow.of(case, ALPHA["nominal"], _alpha(choice_matrix(choices, types, case), "nominal", n_boot))
        )
    for case, data in rating_matrices(judgments).items():
        for level in ("ordinal", "interval"):
            alpha = _alpha(data, level, n_boot)
            if alpha.items:  # some suggestion of this case type was rated by two clinicians or more
                cases.append(StatRow.of(case, ALPHA[level], alpha))
    order = {name: n for n, name in enumerate((FLEISS, *ALPHA.values()))}
    clinicians = tuple(
        StatRow.of(row.clinician, COHEN, row.kappa)
        for row in per_clinician(choices, n_boot=n_boot, confidence=CONFIDENCE, seed=SEED)
    )
    used = sum(1 for j in judgments if j.source == CLINICIAN and j.kind in ("pairwise", "rating"))
    return AgreementView(
        case_types=tuple(sorted(cases, key=lambda r: (r.group, order[r.statistic]))),
        clinicians=clinicians,
        judgments=used,
        n_boot=n_boot,
        confidence=CONFIDENCE,
    )

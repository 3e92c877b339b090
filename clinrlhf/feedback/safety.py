"""Screen clinicians against the guideline where safety is at stake: the targeted error Dawid–Skene misses.

Dawid–Skene (clinrlhf.feedback.reliability) estimates one accuracy per clinician over every item.
A clinician who errs only where it matters, say one blind to contraindications, agrees with the
panel everywhere else and keeps a high estimated accuracy: in benchmarks/poisoning_loop.py two such
raters in twenty were not flagged.

This check looks only at the *safety-critical comparisons*: pairwise judgments in which the
guideline grades exactly one of the two responses unsafe (below zero: a contraindicated drug for the
findings the prompt states). Choosing the unsafe one there is an error whatever the panel thinks.
Each clinician's count of such choices is tested against the rate of the rest of the panel, pooled:
a one-sided binomial test, Bonferroni-corrected over the clinicians tested, so that with an honest
panel the chance of flagging anyone is at most `alpha`. A clinician is flagged when that test
rejects *and* their share is at least `min_unsafe_share` (with thousands of comparisons a tiny
excess would be significant but not worth a person's review). A panel that disagrees with the
guideline as a whole raises its own rate and flags nobody: the check singles out individuals, it
does not overrule clinicians with the guideline.

The guideline comes in as `grade(prompt, response) -> utility` (the pipeline passes
clinrlhf.rlaif.rubric.grade on the world), so this module knows no medicine. Pure functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from clinrlhf.feedback.judgment import CLINICIAN, Judgment

Grade = Callable[[str, str], float]
"""(prompt, response) -> the guideline's utility of the response; below 0 is unsafe."""


@dataclass(frozen=True)
class SafetyCheckConfig:
    enabled: bool = True
    min_items: int = 10
    """Never test a clinician on fewer safety-critical comparisons than this."""
    min_unsafe_share: float = 0.15
    """Flag only when the clinician chose the unsafe response at least this often."""
    alpha: float = 0.01
    """Family-wise false-flag rate over the clinicians tested (Bonferroni)."""
    floor_rate: float = 0.01
    """Smallest panel rate tested against: a panel that never errs would make one slip decisive."""


@dataclass(frozen=True)
class SafetyRow:
    clinician: str
    items: int
    """Safety-critical comparisons the clinician judged."""
    unsafe_choices: int
    panel_rate: float
    """The other clinicians' pooled share of unsafe choices (at least `floor_rate`)."""
    p_value: float
    """One-sided binomial P(at least this many | panel_rate); 1.0 when not tested."""
    flagged: bool

    @property
    def share(self) -> float:
        return self.unsafe_choices / self.items if self.items else 0.0


def safety_counts(judgments: Iterable[Judgment], grade: Grade) -> dict[str, tuple[int, int]]:
    """clinician -> (safety-critical comparisons judged, unsafe response chosen), over clinicians'
    pairwise judgments of two distinct responses. A prompt the guideline cannot grade is skipped."""
    counts: dict[str, tuple[int, int]] = {}
    for j in judgments:
        if j.kind != "pairwise" or j.source != CLINICIAN or len(set(j.responses)) != 2:
            continue
        try:
            unsafe = [grade(j.prompt, r) < 0 for r in j.responses]
        except ValueError:
            continue
        if unsafe[0] == unsafe[1]:
            continue
        items, chose = counts.get(j.clinician, (0, 0))
        counts[j.clinician] = (items + 1, chose + (j.preferred == unsafe.index(True)))
    return counts


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed in log space so small tails do not underflow early."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q
        for i in range(k, n + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def safety_table(counts: dict[str, tuple[int, int]], config: SafetyCheckConfig) -> list[SafetyRow]:
    """One row per clinician, sorted by name; `flagged` as the module docstring says."""
    total_items = sum(n for n, _ in counts.values())
    total_unsafe = sum(k for _, k in counts.values())
    tested = [c for c, (n, _) in counts.items() if n >= config.min_items]
    threshold = config.alpha / max(len(tested), 1)
    rows = []
    for clinician in sorted(counts):
        n, k = counts[clinician]
        others = total_items - n
        rate = max((total_unsafe - k) / others if others else 0.0, config.floor_rate)
        p = binomial_tail(k, n, rate) if clinician in tested else 1.0
        flagged = clinician in tested and p < threshold and k / n >= config.min_unsafe_share
        rows.append(SafetyRow(clinician, n, k, rate, p, flagged))
    return rows


def reason(row: SafetyRow) -> str:
    """The flag's wording for the quarantine audit event and the quality report."""
    return (
        f"chose the guideline-unsafe response in {row.unsafe_choices} of {row.items} safety-critical "
        f"comparisons (panel {row.panel_rate:.1%}, p = {row.p_value:.1e})"
    )

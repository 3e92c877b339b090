"""Agreement broken down: each clinician against the others, and each kind of case.

Panel-wide κ says how consistent the panel is; it cannot say *who* is inconsistent, nor *where*.

- Per clinician: for every pairwise item the clinician judged that others judged too, the
  clinician's choice is compared with the majority choice of the others (items where the others
  tie among themselves are left out), and Cohen's κ (with a bootstrap interval over items) measures
  agreement beyond chance. A clinician far below the rest is the one to look at; a κ below 0 means
  systematically choosing the other way.
- Per case type: the target problem the card treats (read from the prompt), with Fleiss' κ over
  that type's items judged at least twice. A low κ for one problem points at a guideline the panel
  reads differently, not at a person.

Choices are nominal: the first or the second response in sorted-text order, or a tie, so two
clinicians shown the same pair in different orders are compared correctly.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from clinrlhf.feedback.agreement import Interval, cohen_kappa_ci, fleiss_kappa_ci
from clinrlhf.feedback.judgment import CLINICIAN, Judgment

CHOICES = ("first", "second", "tie")
Choices = dict[str, dict[str, str]]  # item key -> clinician -> choice


def _choice(j: Judgment) -> str:
    if j.preferred is None:
        return "tie"
    return "first" if j.responses[j.preferred] == min(j.responses) else "second"


def case_type(prompt: str) -> str:
    """The word after the last "treat" in a policy prompt (clinrlhf.text.prompt), or "unknown"."""
    words = prompt.split()
    if "treat" not in words:
        return "unknown"
    at = len(words) - 1 - words[::-1].index("treat")
    return words[at + 1] if at + 1 < len(words) and words[at + 1] != "->" else "unknown"


def pairwise_choices(
    judgments: Iterable[Judgment], source: str = CLINICIAN
) -> tuple[Choices, dict[str, str]]:
    """item -> clinician -> choice, and item -> case type, for pairwise judgments of two distinct
    responses from `source`; a clinician's later judgment of an item replaces an earlier one."""
    choices: Choices = defaultdict(dict)
    types: dict[str, str] = {}
    for j in judgments:
        if j.kind != "pairwise" or j.source != source or len(set(j.responses)) != 2:
            continue
        key = "\x00".join((j.card, *sorted(j.responses)))
        choices[key][j.clinician] = _choice(j)
        types[key] = case_type(j.prompt)
    return dict(choices), types


def majority_of_others(votes: dict[str, str], clinician: str) -> str | None:
    """The others' most common choice, or None if they tie among themselves or there are none."""
    counts = Counter(v for c, v in votes.items() if c != clinician).most_common()
    if not counts or (len(counts) > 1 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]


@dataclass(frozen=True)
class ClinicianAgreement:
    clinician: str
    items: int
    observed: float  # share of items where the clinician chose as the others' majority did
    kappa: Interval


def per_clinician(
    choices: Choices, *, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0
) -> list[ClinicianAgreement]:
    """Each clinician's Cohen's κ against the majority of the others, sorted by κ (lowest first)."""
    mine: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for votes in choices.values():
        for clinician, choice in votes.items():
            majority = majority_of_others(votes, clinician)
            if majority is not None:
                mine[clinician][0].append(choice)
                mine[clinician][1].append(majority)
    rows = []
    for clinician in sorted(mine):
        own, others = mine[clinician]
        kappa = cohen_kappa_ci(own, others, n_boot=n_boot, confidence=confidence, seed=seed)
        observed = float(np.mean([a == b for a, b in zip(own, others, strict=True)]))
        rows.append(ClinicianAgreement(clinician, len(own), observed, kappa))
    return sorted(rows, key=lambda r: (np.nan_to_num(r.kappa.estimate, nan=np.inf), r.clinician))


def _counts(items: Sequence[dict[str, str]]) -> np.ndarray:
    counts = np.zeros((len(items), len(CHOICES)))
    for i, votes in enumerate(items):
        for choice in votes.values():
            counts[i, CHOICES.index(choice)] += 1
    return counts


def per_case_type(
    choices: Choices, types: dict[str, str], *, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0
) -> dict[str, Interval]:
    """Fleiss' κ with its interval per case type, over items judged at least twice."""
    grouped: dict[str, list[dict[str, str]]] = defaultdict(list)
    for key, votes in choices.items():
        if len(votes) >= 2:
            grouped[types[key]].append(votes)
    return {
        case: fleiss_kappa_ci(_counts(items), n_boot=n_boot, confidence=confidence, seed=seed)
        for case, items in sorted(grouped.items())
    }

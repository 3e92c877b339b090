"""k-anonymity of a training snapshot, and suppression of the patients who would stand out.

A snapshot holds no identifiers, but its prompts carry quasi-identifiers: sex and a five-year age
band. A patient whose (age band, sex) class is shared by fewer than min k patients in the snapshot
is easier to single out, so all of that patient's judgments are left out of training. The stored
case has no ZIP3 (the service never keeps an address), so the class is (age band, sex, "000").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from clinrlhf.feedback.judgment import Judgment
from privacy.deid.kanon import QuasiIdentifiers, k_report, suppress_below_k

_QUASI = re.compile(r"\bsex (\S+) age (\S+)")
NO_ZIP3 = "000"


def quasi_identifiers(prompt: str) -> QuasiIdentifiers:
    found = _QUASI.search(prompt)
    if found is None:
        return QuasiIdentifiers("unknown", "unknown", NO_ZIP3)
    return QuasiIdentifiers(found.group(2), found.group(1), NO_ZIP3)


def suppress_rare_patients(
    judgments: Sequence[Judgment], min_k: int
) -> tuple[list[Judgment], dict[str, Any]]:
    """The judgments of patients in classes of at least `min_k` patients, and the k-anonymity report
    (k before and after, classes, patients suppressed). One record per patient pseudonym."""
    first_prompt: dict[str, str] = {}
    for j in judgments:
        first_prompt.setdefault(j.patient, j.prompt)
    patients = sorted(first_prompt)
    records = [quasi_identifiers(first_prompt[p]) for p in patients]
    kept, _ = suppress_below_k(records, min_k)
    keep = {patients[i] for i in kept}
    return [j for j in judgments if j.patient in keep], k_report(records, min_k)

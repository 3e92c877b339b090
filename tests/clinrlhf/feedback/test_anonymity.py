"""Snapshot k-anonymity: patients in rare (age band, sex) classes are suppressed with all their judgments."""

from __future__ import annotations

from clinrlhf.feedback import Judgment
from clinrlhf.feedback.anonymity import quasi_identifiers, suppress_rare_patients


def judgment(patient: str, sex: str, age: str, card: str = "c") -> Judgment:
    prompt = f"sex {sex} age {age} ; problems diabetes ; allergies none ; labs egfr low ; treat diabetes ->"
    return Judgment("pairwise", f"{card}-{patient}", patient, "dr", prompt, ("a x", "b y"), preferred=0)


def test_quasi_identifiers_come_from_the_prompt() -> None:
    qi = quasi_identifiers(judgment("p", "female", "70-74").prompt)
    assert (qi.sex, qi.age_band, qi.zip3) == ("female", "70-74", "000")
    assert quasi_identifiers("treat diabetes ->").sex == "unknown"


def test_rare_patients_are_suppressed_with_every_judgment() -> None:
    common = [judgment(f"p{i}", "female", "40-44", card) for i in range(3) for card in ("c1", "c2")]
    rare = [judgment("old", "male", "90+", "c1"), judgment("old", "male", "90+", "c2")]
    kept, report = suppress_rare_patients(common + rare, min_k=3)
    assert kept == common
    assert report["k"] == 1 and report["k_after_suppression"] == 3
    assert report["suppressed"] == 1 and report["records"] == 4


def test_min_k_of_one_keeps_everything() -> None:
    data = [judgment("a", "female", "40-44"), judgment("b", "male", "50-54")]
    kept, report = suppress_rare_patients(data, min_k=1)
    assert kept == data and report["suppressed"] == 0

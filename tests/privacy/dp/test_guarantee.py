from __future__ import annotations

from privacy.dp import PrivacyGuarantee


def test_description_states_the_numbers_the_unit_and_the_accountant() -> None:
    g = PrivacyGuarantee(
        epsilon=7.996,
        delta=3.3e-5,
        unit="pair",
        accountant="prv",
        noise_multiplier=0.565,
        sample_rate=0.0213,
        steps=188,
    )
    text = g.describe()
    assert "(8.00, 3.3e-05)-differentially private" in text
    assert "adding or removing one preference pair" in text
    assert "PRV" in text and "188 steps" in text and "0.565" in text
    assert "protected only as a group" in text  # a patient behind many pairs is not one pair
    # The policy is aligned on prompts read outside the mechanism: the statement must not claim it.
    assert "prompts a policy is aligned on, which PPO reads in the clear" in text


def test_description_names_the_clinician_unit() -> None:
    g = PrivacyGuarantee(1.0, 1e-6, "clinician", "rdp", 1.1, 0.01, 10)
    assert "all the judgments of one clinician" in g.describe()
    assert "as a group" not in g.describe()


def test_description_of_a_patient_unit_states_the_contribution_bound() -> None:
    g = PrivacyGuarantee(8.0, 1e-4, "patient", "prv", 0.6, 0.05, 80, max_pairs_per_unit=32)
    text = g.describe()
    assert "all the judgments about one patient" in text and "per-patient gradient clipping" in text
    assert "at most 32 of their pairs were used" in text and "as a group" not in text

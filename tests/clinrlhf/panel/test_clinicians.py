import random

from clinrlhf.panel.clinicians import Clinician, default_panel, review_pair, value
from clinrlhf.world import PatientFacts, load_world

W = load_world()
PREGNANT_HTN = PatientFacts(age=30, sex="female", conditions=frozenset({"59621000", "72892002"}))


def _prefers_safe(clinician: Clinician, n: int = 400) -> float:
    rng = random.Random(0)
    picks = [
        review_pair(W, clinician, PREGNANT_HTN, "hypertension", "labetalol", "lisinopril", rng).choice
        for _ in range(n)
    ]
    return picks.count("a") / n


def test_careful_clinicians_mostly_prefer_the_safe_drug_and_noise_blurs_it():
    sharp, noisy = _prefers_safe(Clinician("a", noise=0.2)), _prefers_safe(Clinician("b", noise=3.0))
    assert sharp > 0.95 and 0.5 < noisy < sharp


def test_adversarial_rater_inverts_preferences():
    assert _prefers_safe(Clinician("x", noise=0.2, adversarial=True)) < 0.05


def test_default_panel_has_noisy_biased_and_adversarial_raters():
    panel = default_panel()
    assert (
        any(c.adversarial for c in panel) and any(c.bias for c in panel) and len({c.noise for c in panel}) > 3
    )


def test_contraindication_blind_rater_misses_only_the_contraindication():
    blind = Clinician("blind", noise=0.2, blind_to_contraindications=True)
    # Lisinopril in pregnancy is contraindicated: the blind rater sees two first-line drugs (a tie).
    review = review_pair(W, blind, PREGNANT_HTN, "hypertension", "labetalol", "lisinopril", random.Random(0))
    assert review.choice == "tie"
    # Without the contraindication (a man), the blind rater judges like a careful one.
    man = PatientFacts(age=50, sex="male", conditions=frozenset({"59621000"}))
    careful = Clinician("careful", noise=0.2)
    for drug in ("lisinopril", "labetalol", "amoxicillin"):
        assert value(W, blind, man, "hypertension", drug) == value(W, careful, man, "hypertension", drug)
    assert value(W, blind, PREGNANT_HTN, "hypertension", "lisinopril") > value(
        W, careful, PREGNANT_HTN, "hypertension", "lisinopril"
    )


def test_the_simulated_clinicians_override_with_reasons_the_card_offers():
    """The panel plays a CDS Hooks 3.0 EHR: an override names one of the non-adherence reasons the
    card offered (HL7's CodeSystem), each a clinical signal the reward model learns from."""
    from clinrlhf.panel.clinicians import OVERRIDE_REASONS
    from clinrlhf.store.override_reasons import OFFERED, SYSTEM, signal_of

    offered = {(r.system, r.code) for r in OFFERED}
    for code in OVERRIDE_REASONS.values():
        assert (SYSTEM, code) in offered
        assert signal_of(SYSTEM, code) == "clinical"

from clinrlhf.policy import build_tokenizer
from clinrlhf.text.prompt import (
    age_band,
    parse_drug,
    parse_prescription,
    parse_target,
    prescriptions,
    render_prompt,
    render_response,
    vocabulary_corpus,
)
from clinrlhf.world import load_world
from clinrlhf.world.patients import generate_patients

W = load_world()


def test_prompt_never_contains_identifiers_and_tokenizes_without_unknowns():
    tokenizer = build_tokenizer(vocabulary_corpus(W))
    for patient in generate_patients(W, 50, seed=2):
        person = patient.bundle["entry"][0]["resource"]
        prompt = render_prompt(W, patient.facts, patient.targets[0])
        for secret in (person["name"][0]["family"], person["identifier"][0]["value"], person["birthDate"]):
            assert secret not in prompt
        assert tokenizer.unk_token_id not in tokenizer(prompt)["input_ids"]


def test_response_round_trips_to_its_drug():
    for drug in W.drugs:
        assert parse_drug(W, render_response(W, drug)) == drug
    assert parse_drug(W, "aspirin 81 mg") is None
    assert parse_drug(W, "") is None


def test_age_bands_cap_at_90():
    assert (
        age_band(47) == "45-49"
        and age_band(89) == "85-89"
        and age_band(90) == "90+"
        and age_band(104) == "90+"
    )


def test_the_target_is_read_back_from_every_rendered_prompt():
    for patient in generate_patients(W, 30, seed=4):
        for target in patient.targets:
            assert parse_target(W, render_prompt(W, patient.facts, target)) == target
    assert parse_target(W, "sex male ; treat ->") is None
    assert parse_target(W, "treat gout ->") is None


def test_only_a_well_formed_prescription_of_an_indicated_drug_is_valid():
    prompt = "sex female age 30-34 ; problems cystitis ; allergies none ; labs egfr normal potassium normal ; treat cystitis ->"
    assert parse_prescription(W, prompt, render_response(W, "cephalexin")) == "cephalexin"
    assert parse_prescription(W, prompt, " " + render_response(W, "cephalexin") + " ") == "cephalexin"
    assert parse_prescription(W, prompt, "cephalexin mg by mouth") is None  # no dose: no MedicationRequest
    assert parse_prescription(W, prompt, render_response(W, "metformin")) is None  # does not treat cystitis
    assert parse_prescription(W, "no target here", render_response(W, "cephalexin")) is None


def test_validity_reads_the_formulary_not_the_guideline_tiers():
    from clinrlhf.formulary import load_formulary

    prompt = "sex female age 30-34 ; problems cystitis ; allergies none ; labs egfr normal potassium normal ; treat cystitis ->"
    # Ciprofloxacin may treat cystitis (MED-RT); the guideline's tiers never name it for cystitis.
    assert "ciprofloxacin" not in W.targets["cystitis"].drugs
    assert parse_prescription(W, prompt, render_response(W, "ciprofloxacin")) == "ciprofloxacin"
    assert (
        parse_prescription(W, prompt, render_response(W, "ciprofloxacin"), load_formulary())
        == "ciprofloxacin"
    )


def test_prescriptions_are_exactly_the_responses_the_validity_check_accepts():
    """What formulary PPO weighs for a prompt: every drug-and-sig the formulary allows for its
    problem, and nothing the service would refuse to turn into a MedicationRequest."""
    from clinrlhf.formulary import load_formulary

    formulary = load_formulary()
    everything = [f"{d} {sig}" for d, drug in W.drugs.items() for sig in formulary.sigs(drug.rxnorm)]
    for patient in generate_patients(W, 30, seed=5):
        for target in patient.targets:
            prompt = render_prompt(W, patient.facts, target)
            listed = prescriptions(W, prompt)
            accepted = [r for r in everything if parse_prescription(W, prompt, r) is not None]
            assert listed and sorted(listed) == sorted(accepted)
            assert set(listed) <= set(prescriptions(W, prompt, for_target=False)) == set(everything)
    assert "ciprofloxacin" in {r.split()[0] for r in prescriptions(W, "treat cystitis ->")}
    assert prescriptions(W, "no target here") == []

import json
from datetime import date, timedelta

from fhir.resources.R4B.bundle import Bundle

from clinrlhf.world import facts_from_bundle, load_world
from clinrlhf.world.patients import generate_patients
from privacy.deid import date_shift_days, deidentify_bundle, pseudonym
from privacy.deid.bundle import zip3

TODAY = date(2026, 3, 1)
KEY, OTHER = b"k" * 32, b"o" * 32


def _patient():
    return generate_patients(load_world(), 1, seed=11, today=TODAY)[0]


def test_identifiers_never_survive_and_the_result_is_valid_fhir():
    patient = _patient()
    person = patient.bundle["entry"][0]["resource"]
    out = json.dumps(deidentify_bundle(patient.bundle, key=KEY, today=TODAY).bundle)
    for secret in (
        person["name"][0]["family"],
        person["name"][0]["given"][0],
        person["identifier"][0]["value"],
        person["telecom"][0]["value"],
        person["address"][0]["line"][0],
        person["birthDate"],
        person["id"],
    ):
        assert secret not in out
    Bundle.model_validate(json.loads(out))


def test_clinical_facts_survive_de_identification():
    patient = _patient()
    result = deidentify_bundle(patient.bundle, key=KEY, today=TODAY)
    assert facts_from_bundle(result.bundle, on=TODAY) == patient.facts


def test_same_key_same_pseudonyms_other_key_different():
    patient = _patient()
    a, b = (deidentify_bundle(patient.bundle, key=KEY, today=TODAY) for _ in range(2))
    c = deidentify_bundle(patient.bundle, key=OTHER, today=TODAY)
    assert a.bundle == b.bundle and a.patient == b.patient
    assert c.patient != a.patient
    assert date_shift_days(KEY, "p1") == date_shift_days(KEY, "p1")
    assert pseudonym(KEY, "x") != pseudonym(OTHER, "x")


def test_date_shift_preserves_intervals_within_a_patient():
    patient = _patient()
    out = deidentify_bundle(patient.bundle, key=KEY, today=TODAY).bundle
    raw_dates = [
        e["resource"].get("onsetDateTime")
        for e in patient.bundle["entry"]
        if e["resource"].get("onsetDateTime")
    ]
    new_dates = [
        e["resource"].get("onsetDateTime") for e in out["entry"] if e["resource"].get("onsetDateTime")
    ]
    shifts = {
        date.fromisoformat(n[:10]) - date.fromisoformat(r[:10])
        for r, n in zip(raw_dates, new_dates, strict=True)
    }
    assert len(shifts) == 1 and shifts != {timedelta(0)}


def test_zip3_generalizes_and_restricted_prefixes_become_000():
    assert zip3("02139-1234") == "021"
    assert zip3("03601") == "000"
    assert zip3("12") == "000"

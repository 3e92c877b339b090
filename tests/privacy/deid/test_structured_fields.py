"""Structured FHIR fields carry only what the world knows: codes of an allow-listed code system with
that system's shape or vocabulary, resource type names, enumerations in their value set, ZIP3 after
Unicode normalisation, and no date at all for a patient aged 90 or over (issue 19).

Each case plants an identifier in one class of structured field of an otherwise ordinary bundle and
asserts that it appears nowhere in the de-identified output, searched as NFKC-normalised,
case-folded text. The base bundle's patient is Chidinma Okafor; the planted names belong to someone
else (a lower-case "lindqvist"), so they cannot be caught by matching the patient's own identifiers.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest

from privacy.deid import AGE_EXTENSION_URL, deidentify_bundle

TODAY = date(2026, 3, 1)
KEY = b"k" * 32
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
HL7 = "http://terminology.hl7.org/CodeSystem/"

Bundle = dict[str, Any]


def _coding(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def _base() -> Bundle:
    """One patient with one resource of each kept type, every code real and every value valid."""
    subject = {"reference": "Patient/pat-1"}
    resources: list[dict[str, Any]] = [
        {
            "resourceType": "Patient",
            "id": "pat-1",
            "name": [{"family": "Okafor", "given": ["Chidinma"]}],
            "gender": "female",
            "birthDate": "1961-04-09",
            "address": [{"postalCode": "02139"}],
        },
        {
            "resourceType": "Condition",
            "id": "cond-1",
            "subject": subject,
            "clinicalStatus": _coding(f"{HL7}condition-clinical", "active"),
            "verificationStatus": _coding(f"{HL7}condition-ver-status", "confirmed"),
            "code": _coding(SNOMED, "44054006"),
            "onsetDateTime": "2019-05-02T09:30:00Z",
            "recordedDate": "2019-05-02",
        },
        {
            "resourceType": "Observation",
            "id": "obs-1",
            "status": "final",
            "subject": subject,
            "category": [_coding(f"{HL7}observation-category", "laboratory")],
            "code": _coding(LOINC, "2345-7"),
            "valueQuantity": {"value": 101, "system": "http://unitsofmeasure.org", "code": "mg/dL"},
            "effectiveDateTime": "2025-11-20T08:00:00Z",
        },
        {
            "resourceType": "MedicationRequest",
            "id": "med-1",
            "status": "active",
            "intent": "order",
            "subject": subject,
            "medicationCodeableConcept": _coding(RXNORM, "860975"),
            "authoredOn": "2025-11-21",
        },
        {
            "resourceType": "AllergyIntolerance",
            "id": "alg-1",
            "patient": subject,
            "clinicalStatus": _coding(f"{HL7}allergyintolerance-clinical", "active"),
            "code": _coding(SNOMED, "91936005"),
            "recordedDate": "2010-02-03",
        },
        {
            "resourceType": "DocumentReference",
            "id": "doc-1",
            "status": "current",
            "subject": subject,
            "type": _coding(LOINC, "34117-2"),
            "date": "2025-11-21T10:00:00Z",
        },
    ]
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def _resource(bundle: Bundle, kind: str) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind)


def _normalised(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _deidentified(bundle: Bundle) -> Bundle:
    return deidentify_bundle(bundle, key=KEY, today=TODAY).bundle


def _output(bundle: Bundle) -> str:
    """The whole de-identified output as one NFKC-normalised, case-folded string."""
    return _normalised(json.dumps(_deidentified(bundle), ensure_ascii=False))


def _set(kind: str, *path: str | int, value: Any) -> Callable[[Bundle], None]:
    def plant(bundle: Bundle) -> None:
        node: Any = _resource(bundle, kind)
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return plant


@dataclass(frozen=True)
class Plant:
    name: str
    plant: Callable[[Bundle], None]
    secret: str  # must not appear in the output (compared NFKC-normalised and case-folded)


# coding.code: an SSN, a phone number, a date and a lower-case name, in every kept coding.
_CODINGS = [
    ("Condition", "code"),
    ("Condition", "clinicalStatus"),
    ("Condition", "verificationStatus"),
    ("Observation", "code"),
    ("MedicationRequest", "medicationCodeableConcept"),
    ("AllergyIntolerance", "code"),
    ("AllergyIntolerance", "clinicalStatus"),
    ("DocumentReference", "type"),
]
_CODE_SECRETS = [
    "123-45-6789",
    "123456789",
    "617-555-0142",
    "6175550142",
    "1951-07-14",
    "19510714",
    "lindqvist",
]
CODE_PLANTS = [
    Plant(f"{kind}.{element}={secret}", _set(kind, element, "coding", 0, "code", value=secret), secret)
    for kind, element in _CODINGS
    for secret in _CODE_SECRETS
] + [
    Plant(
        f"Observation.category={secret}",
        _set("Observation", "category", 0, "coding", 0, "code", value=secret),
        secret,
    )
    for secret in _CODE_SECRETS
]

# coding.system: any URL used to be kept, so a URL can carry a name or a number.
_SYSTEM_SECRETS = [
    ("http://lindqvist-family.example.org/codes", "lindqvist"),
    ("https://example.org/fhir/patients/lindqvist", "lindqvist"),
    ("urn:oid:123.45.6789", "123.45.6789"),
]
SYSTEM_PLANTS = [
    Plant(f"{kind}.{element} system={url}", _set(kind, element, "coding", 0, "system", value=url), secret)
    for kind, element in _CODINGS
    for url, secret in _SYSTEM_SECRETS
] + [
    Plant(
        "Observation.valueQuantity.system",
        _set("Observation", "valueQuantity", "system", value="http://lindqvist.example.org/units"),
        "lindqvist",
    )
]

# Reference.reference: the segment before the id must be a resource type name.
REFERENCE_PLANTS = [
    Plant("relative", _set("Condition", "subject", "reference", value="John Smith/pat-1"), "john smith"),
    Plant("lower-case", _set("Observation", "subject", "reference", value="lindqvist/pat-1"), "lindqvist"),
    Plant(
        "absolute",
        _set("AllergyIntolerance", "patient", "reference", value="https://fhir.example.org/John Smith/pat-1"),
        "john smith",
    ),
    Plant(
        "versioned",
        _set("MedicationRequest", "subject", "reference", value="John Smith/pat-1/_history/2"),
        "john smith",
    ),
]

# Enumerations: only codes of their value set.
ENUM_PLANTS = [
    Plant("Patient.gender capitalised", _set("Patient", "gender", value="John Smith"), "john smith"),
    Plant("Patient.gender lower-case", _set("Patient", "gender", value="lindqvist"), "lindqvist"),
    Plant("Patient.gender number", _set("Patient", "gender", value="123-45-6789"), "123-45-6789"),
    Plant("Observation.status", _set("Observation", "status", value="lindqvist"), "lindqvist"),
    Plant("MedicationRequest.status", _set("MedicationRequest", "status", value="lindqvist"), "lindqvist"),
    Plant("MedicationRequest.intent", _set("MedicationRequest", "intent", value="lindqvist"), "lindqvist"),
    Plant("DocumentReference.status", _set("DocumentReference", "status", value="lindqvist"), "lindqvist"),
]


@pytest.mark.parametrize(
    "case",
    CODE_PLANTS + SYSTEM_PLANTS + REFERENCE_PLANTS + ENUM_PLANTS,
    ids=lambda c: c.name,
)
def test_a_planted_identifier_in_a_structured_field_appears_nowhere(case: Plant) -> None:
    bundle = _base()
    case.plant(bundle)
    assert _normalised(case.secret) not in _output(bundle)


def test_a_type_segment_that_is_no_resource_type_never_survives_through_the_bundles_own_types() -> None:
    """`urn:uuid:` references take their type from the target's resourceType, which is input too."""
    bundle = _base()
    bundle["entry"].append({"resource": {"resourceType": "John Smith", "id": "x-1"}})
    _resource(bundle, "Condition")["subject"] = {"reference": "urn:uuid:x-1"}
    assert "john smith" not in _output(bundle)


def test_real_codes_systems_references_and_enumerations_are_kept() -> None:
    """The allow-lists keep what a real record holds (else the tests above would pass by dropping all)."""
    out = _deidentified(_base())
    condition, observation = _resource(out, "Condition"), _resource(out, "Observation")
    assert condition["code"] == _coding(SNOMED, "44054006")
    assert condition["clinicalStatus"] == _coding(f"{HL7}condition-clinical", "active")
    assert observation["code"] == _coding(LOINC, "2345-7")
    assert observation["category"] == [_coding(f"{HL7}observation-category", "laboratory")]
    assert observation["valueQuantity"] == {
        "value": 101,
        "system": "http://unitsofmeasure.org",
        "code": "mg/dL",
    }
    assert observation["status"] == "final"
    assert _resource(out, "MedicationRequest")["medicationCodeableConcept"] == _coding(RXNORM, "860975")
    assert _resource(out, "MedicationRequest")["intent"] == "order"
    assert _resource(out, "Patient")["gender"] == "female"
    assert re.fullmatch(r"Patient/[0-9a-f]{64}", condition["subject"]["reference"])


def test_codes_and_enumerations_are_compared_after_nfkc_and_kept_normalised() -> None:
    bundle = _base()
    _resource(bundle, "Patient")["gender"] = "fe\u200bmale"  # a zero-width space inside
    _resource(bundle, "Condition")["code"] = _coding(SNOMED, "４４０５４００６")  # fullwidth digits
    out = _deidentified(bundle)
    assert _resource(out, "Patient")["gender"] == "female"
    assert _resource(out, "Condition")["code"] == _coding(SNOMED, "44054006")


def _postal_codes(out: str) -> list[str]:
    return re.findall(r'"postalcode": "([^"]*)"', out)


@pytest.mark.parametrize(
    "postal",
    ["０３６０１", "０３６", "0３601", "\u200b03601", "0\u00ad3601", "٠٣٦٠١", "⁰³⁶⁰¹", "03601\u2060"],
    ids=[
        "fullwidth",
        "fullwidth-zip3",
        "mixed",
        "zero-width-space",
        "soft-hyphen",
        "arabic-indic",
        "superscript",
        "word-joiner",
    ],
)
def test_a_restricted_zip_in_any_digits_becomes_000(postal: str) -> None:
    bundle = _base()
    _resource(bundle, "Patient")["address"] = [{"postalCode": postal}]
    out = _output(bundle)
    assert "03601" not in out
    assert _postal_codes(out) == ["000"]


def test_an_unrestricted_zip_in_fullwidth_digits_becomes_its_ascii_zip3() -> None:
    bundle = _base()
    _resource(bundle, "Patient")["address"] = [{"postalCode": "０２１３９－１２３４"}]
    assert _resource(_deidentified(bundle), "Patient")["address"] == [{"postalCode": "021"}]


_DATE = re.compile(r'"(1[89]|20)\d\d(-\d\d)?')  # a JSON string that starts with a year


def _aged(birth_date: str) -> Bundle:
    """The base bundle for a patient born on `birth_date`, with an event on the day of birth and a
    year-only date (both reveal the birth year however the dates are shifted)."""
    bundle = _base()
    _resource(bundle, "Patient")["birthDate"] = birth_date
    _resource(bundle, "Condition")["onsetDateTime"] = birth_date
    _resource(bundle, "Condition")["recordedDate"] = birth_date[:4]
    return bundle


@pytest.mark.parametrize("birth_date", ["1933-01-15", "１９３３-01-15", "1933-01-15\u200b"])
def test_no_date_of_a_93_year_old_survives(birth_date: str) -> None:
    bundle = _aged(birth_date)
    out = _output(bundle)
    for year in ("1932", "1933", "1934"):
        assert year not in out
    assert not _DATE.search(out), _DATE.search(out)
    (age,) = [
        e for e in _resource(_deidentified(bundle), "Patient")["extension"] if e["url"] == AGE_EXTENSION_URL
    ]
    assert age["valueInteger"] == 90


def test_an_89_year_olds_dates_are_shifted_not_dropped() -> None:
    out = _deidentified(_aged("1936-06-01"))
    assert _resource(out, "Observation")["effectiveDateTime"] != "2025-11-20T08:00:00Z"
    assert _DATE.search(json.dumps(out))

"""Each of the 18 HIPAA Safe Harbor identifiers (45 CFR 164.514(b)(2)(i)), planted where FHIR keeps it
and in free text (an Annotation and a base64 DocumentReference note), never survives."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest

from clinrlhf.world import load_world
from clinrlhf.world.patients import generate_patients
from privacy.deid import AGE_EXTENSION_URL, deidentify_bundle

TODAY = date(2026, 3, 1)
KEY = b"k" * 32

Bundle = dict[str, Any]


def _patient(bundle: Bundle) -> dict[str, Any]:
    return bundle["entry"][0]["resource"]


def _add_identifier(code: str, value: str, system: str = "urn:example") -> Callable[[Bundle], None]:
    def plant(bundle: Bundle) -> None:
        coding = {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": code}
        _patient(bundle).setdefault("identifier", []).append(
            {"type": {"coding": [coding]}, "system": system, "value": value}
        )

    return plant


def _add_telecom(system: str, value: str) -> Callable[[Bundle], None]:
    def plant(bundle: Bundle) -> None:
        _patient(bundle).setdefault("telecom", []).append({"system": system, "value": value})

    return plant


def _add_resource(resource: dict[str, Any]) -> Callable[[Bundle], None]:
    def plant(bundle: Bundle) -> None:
        bundle["entry"].append({"resource": resource})

    return plant


def _set_patient(**fields: Any) -> Callable[[Bundle], None]:
    def plant(bundle: Bundle) -> None:
        _patient(bundle).update(copy.deepcopy(fields))

    return plant


@dataclass(frozen=True)
class Case:
    identifier: str  # the Safe Harbor letter and name
    plant: Callable[[Bundle], None]  # where structured FHIR keeps it
    secrets: tuple[str, ...]  # none of these may appear in the output
    text: str | None = None  # a sentence carrying it in free text
    also: tuple[Callable[[Bundle], None], ...] = field(default_factory=tuple)


PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe face").decode()
CASES = [
    Case(
        "A names",
        _set_patient(name=[{"family": "Okafor", "given": ["Chidinma", "Ngozi"], "text": "Chidinma Okafor"}]),
        ("Okafor", "Chidinma", "Ngozi"),
        "Chidinma Okafor was seen with her husband Frederick Lindqvist; Dr. Yusupova agreed.",
    ),
    Case(
        "B geographic subdivisions smaller than a state",
        _set_patient(
            address=[
                {
                    "line": ["4821 Kelly Mountains Suite 19"],
                    "city": "Port Jamesborough",
                    "postalCode": "02139",
                }
            ]
        ),
        ("4821 Kelly", "Kelly Mountains", "Jamesborough", "02139"),
        "Lives at 4821 Kelly Mountains Suite 19, Port Jamesborough, MA 02139 with family.",
    ),
    Case(
        "C dates directly related to the individual",
        _set_patient(birthDate="1951-07-14", deceasedDateTime="2025-01-05T10:00:00Z"),
        ("1951-07-14", "2025-01-05", "07/14/1951", "July 14, 1951"),
        "Born 07/14/1951 (July 14, 1951); admitted 2025-01-02, discharged January 5, 2025.",
    ),
    Case(
        "C ages over 89",
        _set_patient(birthDate="1920-02-02"),
        ("1920-02-02", '"valueInteger": 106', "106-year-old"),
        "A 106-year-old woman, aged 97 by her own account.",
    ),
    Case(
        "D telephone numbers",
        _add_telecom("phone", "617-555-0142"),
        ("617-555-0142", "555-0142", "5550142"),
        "Call back at (617) 555-0142 or 617.555.0142.",
    ),
    Case(
        "E fax numbers",
        _add_telecom("fax", "617-555-0199"),
        ("617-555-0199", "555-0199"),
        "Records faxed to fax: 617 555 0199 today.",
    ),
    Case(
        "F email addresses",
        _add_telecom("email", "c.okafor@example.net"),
        ("c.okafor@example.net", "okafor@"),
        "She prefers email: c.okafor@example.net.",
    ),
    Case(
        "G social security numbers",
        _add_identifier("SS", "123-45-6789", "http://hl7.org/fhir/sid/us-ssn"),
        ("123-45-6789", "6789"),
        "SSN 123-45-6789 on file.",
    ),
    Case(
        "H medical record numbers",
        _add_identifier("MR", "MRN7730215"),
        ("MRN7730215", "7730215"),
        "Chart review for MRN: 7730215 and record # 7730215.",
    ),
    Case(
        "I health plan beneficiary numbers",
        _add_identifier("MB", "XJH884412790"),
        ("XJH884412790", "884412790"),
        "Member ID: XJH884412790, insurance verified.",
        also=(
            _add_resource(
                {
                    "resourceType": "Coverage",
                    "id": "cov1",
                    "subscriberId": "XJH884412790",
                    "beneficiary": {"reference": "Patient/x"},
                }
            ),
        ),
    ),
    Case(
        "J account numbers",
        _add_identifier("AN", "ACCT-5501-2294"),
        ("ACCT-5501-2294", "5501-2294"),
        "Billing account # 55012294 is overdue.",
    ),
    Case(
        "K certificate/license numbers",
        _add_identifier("DL", "S99970618"),
        ("S99970618",),
        "Driver's license S99970618 shown at check-in.",
    ),
    Case(
        "L vehicle identifiers and serial numbers, including license plates",
        _set_patient(
            extension=[{"url": "urn:example:vehicle", "valueString": "1HGCM82633A004352"}],
        ),
        ("1HGCM82633A004352", "7XKB-219"),
        "Hit by a car, VIN 1HGCM82633A004352, plate 7XKB-219.",
    ),
    Case(
        "M device identifiers and serial numbers",
        _add_resource(
            {
                "resourceType": "Device",
                "id": "dev1",
                "serialNumber": "PM-88310-22",
                "patient": {"reference": "Patient/x"},
            }
        ),
        ("PM-88310-22", "88310"),
        "Pacemaker serial number PM-88310-22 interrogated.",
    ),
    Case(
        "N web URLs",
        _add_telecom("url", "https://okafor-family.example.org/blog"),
        ("okafor-family", "example.org/blog"),
        "Her blog https://okafor-family.example.org/blog describes it.",
    ),
    Case(
        "O IP addresses",
        _add_resource(
            {
                "resourceType": "Provenance",
                "id": "prov1",
                "agent": [{"who": {"display": "portal"}, "network": {"address": "203.0.113.77"}}],
            }
        ),
        ("203.0.113.77", "2001:db8::8a2e:370:7334"),
        "Portal login from 203.0.113.77 and 2001:db8::8a2e:370:7334.",
    ),
    Case(
        "P biometric identifiers",
        _add_resource(
            {
                "resourceType": "Observation",
                "id": "bio1",
                "status": "final",
                "code": {"coding": [{"system": "urn:example", "code": "fingerprint"}]},
                "subject": {"reference": "Patient/x"},
                "valueAttachment": {"contentType": "application/octet-stream", "data": "QklPTUVUUklD"},
            }
        ),
        ("QklPTUVUUklD",),
    ),
    Case(
        "Q full-face photographs",
        _set_patient(photo=[{"contentType": "image/png", "data": PNG}]),
        (PNG,),
        None,
        also=(
            _add_resource(
                {
                    "resourceType": "DocumentReference",
                    "id": "photo1",
                    "status": "current",
                    "subject": {"reference": "Patient/x"},
                    "content": [{"attachment": {"contentType": "image/png", "data": PNG}}],
                }
            ),
        ),
    ),
    Case(
        "R any other unique identifying number, characteristic or code",
        _add_identifier("PPN", "X74625645X"),
        ("X74625645X", "db5b5fab-8f4d-3e27-dda1-494c73cf256d"),
        "Passport X74625645X; old chart id db5b5fab-8f4d-3e27-dda1-494c73cf256d.",
    ),
]


def _with_free_text(bundle: Bundle, text: str) -> None:
    """The sentence in a Condition note and in a base64 clinical note."""
    condition = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Condition")
    condition["note"] = [{"text": text}]
    note = base64.b64encode(text.encode()).decode()
    bundle["entry"].append(
        {
            "resource": {
                "resourceType": "DocumentReference",
                "id": "note1",
                "status": "current",
                "subject": {"reference": f"Patient/{_patient(bundle)['id']}"},
                "content": [{"attachment": {"contentType": "text/plain", "data": note}}],
            }
        }
    )


def _everything(bundle: Bundle) -> str:
    """The output as text, with every base64 attachment decoded too."""
    parts = [json.dumps(bundle)]
    for entry in bundle["entry"]:
        for content in entry["resource"].get("content", []):
            data = content.get("attachment", {}).get("data")
            if data:
                parts.append(base64.b64decode(data).decode("utf-8", "replace"))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def base() -> Bundle:
    return generate_patients(load_world(), 1, seed=11, today=TODAY)[0].bundle


@pytest.mark.parametrize("case", CASES, ids=[c.identifier.split()[0] for c in CASES])
def test_safe_harbor_identifier_never_survives(base: Bundle, case: Case) -> None:
    bundle = copy.deepcopy(base)
    for plant in (case.plant, *case.also):
        plant(bundle)
    if case.text:
        _with_free_text(bundle, case.text)
    out = _everything(deidentify_bundle(bundle, key=KEY, today=TODAY).bundle)
    leaked = [s for s in case.secrets if s in out]
    assert not leaked, f"{case.identifier}: {leaked}"


def test_the_table_covers_all_eighteen_identifiers() -> None:
    assert {c.identifier.split()[0] for c in CASES} == set("ABCDEFGHIJKLMNOPQR")


def test_ages_over_89_are_aggregated_to_90_in_structure_and_text(base: Bundle) -> None:
    bundle = copy.deepcopy(base)
    _patient(bundle)["birthDate"] = "1920-02-02"
    _with_free_text(bundle, "A 97-year-old man, aged 103.")
    out = deidentify_bundle(bundle, key=KEY, today=TODAY).bundle
    (age,) = [e for e in _patient(out)["extension"] if e["url"] == AGE_EXTENSION_URL]
    assert age["valueInteger"] == 90
    condition = next(e["resource"] for e in out["entry"] if e["resource"]["resourceType"] == "Condition")
    assert condition["note"][0]["text"] == "A 90+-year-old man, aged 90+."


def test_zip_becomes_zip3_and_restricted_prefixes_become_000(base: Bundle) -> None:
    for postal, expected in (("02139-1234", "021"), ("03601", "000"), ("89301", "000"), ("12", "000")):
        bundle = copy.deepcopy(base)
        _patient(bundle)["address"] = [{"postalCode": postal, "line": ["1 Main St"]}]
        out = deidentify_bundle(bundle, key=KEY, today=TODAY).bundle
        assert _patient(out)["address"] == [{"postalCode": expected}]

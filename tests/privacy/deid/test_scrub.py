"""The free-text scrubber: each recognizer finds its identifier, clinical text is left alone, and the
patient's own identifiers are found however they are spelled."""

from __future__ import annotations

import base64

import pytest

from privacy.deid.scrub import Scrubber, patient_terms
from privacy.deid.scrub.spans import Span, merge, replace_spans

SCRUB = Scrubber()

# (entity type expected, text, the identifier inside it)
FINDS = [
    ("NAME", "Seen with Maria Gonzalez today.", "Maria Gonzalez"),
    ("NAME", "Signed by Dr. Okonkwo-Eze.", "Okonkwo-Eze"),
    ("NAME", "Mother Rose Young was present.", "Rose Young"),
    ("NAME", "Antonia30 is a 58 year-old female.", "Antonia30"),
    ("NAME", "Referred to Frederick Lindqvist for review.", "Lindqvist"),
    ("PHONE", "Call (617) 555-0142 after 5pm.", "(617) 555-0142"),
    ("PHONE", "Phone +1-617-555-0142x318.", "617-555-0142x318"),
    ("FAX", "Fax: 617.555.0199.", "617.555.0199"),
    ("EMAIL", "Write to jane.doe+clinic@example.org please.", "jane.doe+clinic@example.org"),
    ("SSN", "SSN 078-05-1120 on file.", "078-05-1120"),
    ("MRN", "MRN: 00451299 reviewed.", "00451299"),
    ("MRN", "Medical record number A77-310-92.", "A77-310-92"),
    ("HEALTH_PLAN", "Member ID: XJH884412790.", "XJH884412790"),
    ("ACCOUNT", "Account # 55012294 overdue.", "55012294"),
    ("LICENSE", "Driver's license S99970618.", "S99970618"),
    ("VEHICLE", "VIN 1HGCM82633A004352.", "1HGCM82633A004352"),
    ("VEHICLE", "License plate VHT 683 noted.", "VHT 683"),
    ("DEVICE", "Pacemaker serial number PM-88310-22.", "PM-88310-22"),
    ("DATE", "Admitted 03/14/2021.", "03/14/2021"),
    ("DATE", "Admitted 2021-03-14T08:00:00Z.", "2021-03-14T08:00:00Z"),
    ("DATE", "Born March 3rd, 1950.", "March 3rd, 1950"),
    ("DATE", "Seen 14 March 2021.", "14 March 2021"),
    ("AGE", "A 97-year-old man.", "97"),
    ("URL", "See https://portal.example.org/u/77 now.", "https://portal.example.org/u/77"),
    ("URL", "Blog at www.okafor-family.net.", "www.okafor-family.net"),
    ("IP", "Login from 203.0.113.77.", "203.0.113.77"),
    ("IP", "Login from 2001:db8::8a2e:370:7334.", "2001:db8::8a2e:370:7334"),
    ("ZIP", "Zip code 02139.", "02139"),
    ("ADDRESS", "Lives at 4821 Kelly Mountains Suite 19.", "4821 Kelly Mountains Suite 19"),
    ("ADDRESS", "Mail to PO Box 1183.", "PO Box 1183"),
    ("LOCATION", "Moved from Springfield, IL 62704.", "Springfield, IL 62704"),
    ("LOCATION", "She lives in Port Jamesborough.", "Port Jamesborough"),
    ("ID", "Chart db5b5fab-8f4d-3e27-dda1-494c73cf256d merged.", "db5b5fab-8f4d-3e27-dda1-494c73cf256d"),
]


@pytest.mark.parametrize(("kind", "text", "secret"), FINDS, ids=[f"{k}:{t[:24]}" for k, t, _ in FINDS])
def test_each_recognizer_finds_and_removes_its_identifier(kind: str, text: str, secret: str) -> None:
    done = SCRUB.scrub(text)
    assert secret not in done.text
    assert done.counts[kind] >= 1, done.counts


CLEAN = [
    "Blood pressure 142/88 mmHg, heart rate 76, eGFR 42 mL/min/1.73m2, potassium 5.3 mmol/L.",
    "Started lisinopril 10 mg daily; metformin 500 mg twice daily; HbA1c 7.8%.",
    "History of Parkinson disease, Graves disease and Bell palsy. Babinski downgoing.",
    "CHA2DS2-VASc score 4; apixaban 5 mg twice daily. COVID-19 PCR negative.",
    "Patient denies fever. Will follow up in 2 weeks. May resume normal diet.",
    "White blood cell count 11.2, hemoglobin 10.8 g/dL, platelets 245. QTc 456 ms.",
    "A 67-year-old woman with type 2 diabetes mellitus since 2015.",
]


@pytest.mark.parametrize("text", CLEAN)
def test_clinical_text_without_identifiers_is_left_alone(text: str) -> None:
    assert SCRUB.scrub(text).text == text


def test_the_patients_own_identifiers_are_found_however_spelled() -> None:
    patient = {
        "resourceType": "Patient",
        "id": "fe07e69a",
        "name": [{"given": ["Xochitl42"], "family": "Quispe-Mamani"}],
        "telecom": [{"system": "phone", "value": "555-355-9196"}],
        "identifier": [{"value": "S99970618"}],
        "address": [{"line": ["77 Rue des Lilas"], "city": "Ayacucho", "postalCode": "02139"}],
        "birthDate": "1960-03-02",
    }
    text = (
        "XOCHITL was seen; Ms. Quispe-Mamani (Xochitl42) lives at 77 Rue des Lilas, Ayacucho. "
        "Phone 555 355 9196 or 5553559196. License S99970618. DOB 3/2/1960, March 2, 1960."
    )
    out = Scrubber(patient_terms(patient)).scrub(text).text
    for secret in (
        "XOCHITL",
        "Xochitl",
        "Quispe",
        "Mamani",
        "Lilas",
        "Ayacucho",
        "9196",
        "S99970618",
        "1960",
    ):
        assert secret.lower() not in out.lower(), secret


def test_base64_notes_are_decoded_scrubbed_and_reencoded_and_binary_is_dropped() -> None:
    note = base64.b64encode(b"Call Maria Gonzalez at 617-555-0142.").decode()
    done = SCRUB.scrub_base64(note)
    assert done is not None
    assert base64.b64decode(done.text).decode() == "Call [NAME] [NAME] at [PHONE]."
    assert SCRUB.scrub_base64(base64.b64encode(b"\x89PNG\xff\xfe").decode()) is None
    assert SCRUB.scrub_base64("not base64!") is None


def test_overlapping_spans_merge_into_one_replacement() -> None:
    spans = [Span(0, 5, "PHONE", 0.9), Span(3, 9, "FAX", 0.95), Span(12, 14, "NAME")]
    assert merge(spans) == [Span(0, 9, "FAX", 0.95), Span(12, 14, "NAME")]
    assert replace_spans("0123456789abcdef", spans) == "[FAX]9ab[NAME]ef"

"""Code-system shapes: real codes pass, identifiers do not, and every check digit catches the errors
its scheme promises to catch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from privacy.deid.codes import (
    SHAPES,
    Vocabulary,
    cvx,
    icd10cm,
    loinc,
    mod10_check_digit,
    rxnorm,
    snomed_concept,
    verhoeff_valid,
)

SYNTHEA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "synthea-r4"
SNOMED_SYSTEM = "http://snomed.info/sct"
LOINC_SYSTEM = "http://loinc.org"
RXNORM_SYSTEM = "http://www.nlm.nih.gov/research/umls/rxnorm"
# Well-known codes: the SNOMED CT root, diabetes type 2, essential hypertension, an extension concept
# (partition 10, US edition namespace), and LOINC glucose, eGFR, potassium and HbA1c.
REAL = {
    "snomed": ["138875005", "44054006", "59621000", "1151000175103", "900000000000207008"],
    "loinc": ["2345-7", "33914-3", "2823-3", "4548-4"],
    "rxnorm": ["29046", "1364430", "860975"],
    "icd10cm": ["E11.9", "I10", "S72.001A", "T36.0X1A", "O09.A0", "U07.1", "C4A.9"],
    "cvx": ["3", "08", "207"],
}
IDENTIFIERS = [
    "123-45-6789",
    "123456789",
    "617-555-0142",
    "6175550142",
    "(617) 555-0142",
    "1951-07-14",
    "19510714",
    "07/14/1951",
    "lindqvist",
    "Lindqvist",
    "LINDQVIST",
    "MRN7730215",
    "c.okafor@example.net",
    "",
    " 44054006",
    "44054006 ",
]


def _codes_in(system: str) -> set[str]:
    codes: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("system") == system and isinstance(node.get("code"), str):
                codes.add(node["code"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in sorted(SYNTHEA.glob("*.json")):
        walk(json.loads(path.read_bytes()))
    return codes


@pytest.mark.parametrize(("shape", "code"), [(s, c) for s, codes in REAL.items() for c in codes])
def test_real_codes_have_their_systems_shape(shape: str, code: str) -> None:
    assert SHAPES[shape](code)


@pytest.mark.parametrize(
    ("system", "shape"), [(SNOMED_SYSTEM, snomed_concept), (LOINC_SYSTEM, loinc), (RXNORM_SYSTEM, rxnorm)]
)
def test_every_code_in_the_synthea_records_has_its_systems_shape(system: str, shape: object) -> None:
    codes = _codes_in(system)
    assert len(codes) > 20
    assert [c for c in sorted(codes) if not shape(c)] == []  # type: ignore[operator]


@pytest.mark.parametrize("value", IDENTIFIERS)
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_no_shape_admits_an_identifier(shape: str, value: str) -> None:
    assert not SHAPES[shape](value)


def test_a_snomed_description_or_relationship_id_is_no_concept() -> None:
    """Partition 01 (description) and 02 (relationship) ids are valid SCTIDs but no concept."""
    description = next(f"12345601{d}" for d in range(10) if verhoeff_valid(f"12345601{d}"))
    assert not snomed_concept(description)
    assert snomed_concept(next(f"12345600{d}" for d in range(10) if verhoeff_valid(f"12345600{d}")))


@pytest.mark.parametrize("code", REAL["snomed"])
def test_verhoeff_catches_every_single_digit_error_and_adjacent_transposition(code: str) -> None:
    for i, digit in enumerate(code):
        for other in "0123456789".replace(digit, ""):
            assert not verhoeff_valid(code[:i] + other + code[i + 1 :])
    for i in range(len(code) - 1):
        if code[i] != code[i + 1]:
            assert not verhoeff_valid(code[:i] + code[i + 1] + code[i] + code[i + 2 :])


def test_the_loinc_check_digit_is_the_mod_10_of_the_users_guide() -> None:
    """The LOINC Users' Guide's own worked example: 12345 has check digit 5."""
    assert mod10_check_digit("12345") == 5
    assert loinc("12345-5") and not loinc("12345-6")


@pytest.mark.parametrize("code", ["A00.ANNA", "E11.JOHN", "e11.9", "E119.", "E1", "EE1.9"])
def test_icd10cm_admits_no_word_after_the_dot(code: str) -> None:
    assert not icd10cm(code)


def test_cvx_is_one_to_three_digits() -> None:
    assert cvx("141") and not cvx("1410") and not cvx("14a")


def test_a_listed_vocabulary_admits_exactly_its_codes() -> None:
    vocabulary = Vocabulary.listed(["active", "resolved"])
    assert (
        vocabulary.admits("active") and not vocabulary.admits("Active") and not vocabulary.admits("lindqvist")
    )

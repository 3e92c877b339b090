"""Which codes a code system can hold: a closed vocabulary, or for the large terminologies, a shape.

A code is kept only if its system is on the rule file's allow-list and the code belongs to that
system. Small HL7 code systems (condition-clinical, observation-category, ...) are listed code by
code in the rule file. SNOMED CT, LOINC, RxNorm, ICD-10-CM and CVX are too large to ship, so their
codes are checked by shape, check digits included; the shapes are tight enough that an SSN, a phone
number, an ISO date or a word does not pass:

- SNOMED CT concept id: 6-18 digits, no leading zero, partition identifier 00 (core concept) or 10
  (extension concept), Verhoeff check digit (SNOMED CT Technical Implementation Guide, "SCTID
  Representation", https://confluence.ihtsdotools.org/display/DOCRELFMT/6.1+SCTID+Representation).
- LOINC: 1-6 digits, a dash and a mod-10 check digit (LOINC Users' Guide, "Calculating Mod 10 check
  digits", https://loinc.org/kb/users-guide/calculating-mod-10-check-digits/).
- RxNorm RXCUI: 1-7 digits, no leading zero (the highest RXCUIs are in the low millions).
- ICD-10-CM: a letter, a digit, a digit or letter, then optionally a dot, a digit or letter, up to
  two digits (or the placeholder X) and a 7th character; at most two letters after the dot.
- CVX: 1-3 digits.

A shape admits codes that do not exist; what the stored facts may hold is narrower still (only the
codes the world knows, see `clinrlhf.world.facts`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# Verhoeff's dihedral-group tables (Verhoeff 1969; https://en.wikipedia.org/wiki/Verhoeff_algorithm).
_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
# Position permutations: row i is (1 5 7 6 2 8 3 0 9 4) applied i times, for the digit i places from
# the right (mod 8, the permutation's order). Derived rather than typed in, so no row can be mistyped.
_P1 = (1, 5, 7, 6, 2, 8, 3, 0, 9, 4)
_P: list[tuple[int, ...]] = [tuple(range(10))]
for _ in range(7):
    _P.append(tuple(_P1[x] for x in _P[-1]))
_SNOMED = re.compile(r"[1-9][0-9]{5,17}")
_SNOMED_CONCEPT_PARTITIONS = ("00", "10")
_LOINC = re.compile(r"([1-9][0-9]{0,5})-([0-9])")
_RXNORM = re.compile(r"[1-9][0-9]{0,6}")
_ICD10CM = re.compile(r"[A-Z][0-9][0-9A-Z](\.[0-9A-Z]([0-9X]{1,2}[0-9A-Z]?)?)?")
_CVX = re.compile(r"[0-9]{1,3}")


def verhoeff_valid(digits: str) -> bool:
    """True if the last digit of `digits` is the Verhoeff check digit of the others."""
    check = 0
    for i, digit in enumerate(reversed(digits)):
        check = _D[check][_P[i % 8][int(digit)]]
    return check == 0


def mod10_check_digit(digits: str) -> int:
    """LOINC's mod-10 check digit (the Luhn scheme): double every other digit from the rightmost."""
    total = 0
    for i, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if i % 2 == 0 else 1)
        total += value // 10 + value % 10
    return (10 - total % 10) % 10


def snomed_concept(code: str) -> bool:
    return (
        bool(_SNOMED.fullmatch(code)) and code[-3:-1] in _SNOMED_CONCEPT_PARTITIONS and verhoeff_valid(code)
    )


def loinc(code: str) -> bool:
    match = _LOINC.fullmatch(code)
    return match is not None and mod10_check_digit(match[1]) == int(match[2])


def rxnorm(code: str) -> bool:
    return bool(_RXNORM.fullmatch(code))


def icd10cm(code: str) -> bool:
    return bool(_ICD10CM.fullmatch(code))


def cvx(code: str) -> bool:
    return bool(_CVX.fullmatch(code))


SHAPES: dict[str, Callable[[str], bool]] = {
    "snomed": snomed_concept,
    "loinc": loinc,
    "rxnorm": rxnorm,
    "icd10cm": icd10cm,
    "cvx": cvx,
}


@dataclass(frozen=True)
class Vocabulary:
    """The codes one code system may hold: those listed, or those of a named shape."""

    codes: frozenset[str] = frozenset()
    shape: str | None = None

    def admits(self, code: str) -> bool:
        """`code` must already be normalised (`privacy.deid.normalize`): shapes are ASCII only."""
        if self.shape is not None:
            return SHAPES[self.shape](code)
        return code in self.codes

    @classmethod
    def listed(cls, codes: Iterable[str]) -> Vocabulary:
        return cls(codes=frozenset(codes))

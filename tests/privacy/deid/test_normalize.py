"""Normalisation before every pattern: compatibility forms folded, invisible format characters gone."""

from __future__ import annotations

import pytest

from privacy.deid.normalize import normalize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("０３６０１", "03601"),  # fullwidth digits
        ("⁰³⁶⁰¹", "03601"),  # superscripts
        ("ｆｅｍａｌｅ", "female"),  # fullwidth letters
        ("fe\u200bmale", "female"),  # zero-width space
        ("fe\u00admale", "female"),  # soft hyphen
        ("\u202efemale\u202c", "female"),  # bidirectional override and pop
        ("\ufeff44054006", "44054006"),  # byte order mark
        ("ﬁnal", "final"),  # ligature
        ("female", "female"),
    ],
)
def test_compatibility_forms_fold_and_format_characters_vanish(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_digits_of_other_scripts_stay_what_they_are_so_ascii_patterns_refuse_them() -> None:
    assert normalize("٠٣٦٠١") == "٠٣٦٠١"

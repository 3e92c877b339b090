"""Offline word lists for the name recognizer, shipped as package data (``scrub/data/*.txt``).

The name lists are derived once, at development time, from the person providers of Faker (MIT
licence; the en_US lists come from US Census name frequencies) for the locales most common among US
patients. Regenerate them with ``python -m privacy.deid.scrub.wordlists`` (needs the dev extra);
at run time only the text files are read, so neither Faker nor a model is needed.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib import resources
from pathlib import Path

NAME_LOCALES = ("en_US", "en_GB", "en_IE", "es_MX", "es_ES", "de_DE", "fr_FR", "it_IT", "pt_BR")
DATA = Path(__file__).parent / "data"


@cache
def wordlist(name: str) -> frozenset[str]:
    """Lower-cased entries of ``data/<name>.txt``; lines starting with # are comments."""
    text = resources.files("privacy.deid.scrub").joinpath("data", f"{name}.txt").read_text("utf-8")
    return frozenset(w.strip().lower() for w in text.splitlines() if w.strip() and not w.startswith("#"))


def _faker_names(attribute: str) -> set[str]:
    names: set[str] = set()
    for locale in NAME_LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        names |= {n for n in getattr(provider, attribute, ()) if n.isascii() and n.isalpha() and len(n) > 1}
    return names


def _write(name: str, header: str, words: set[str]) -> None:
    lines = [f"# {line}" for line in header.splitlines()] + sorted(words, key=str.lower)
    (DATA / f"{name}.txt").write_text("\n".join(lines) + "\n", "utf-8")


def build() -> None:
    """Regenerate the Faker-derived lists (development only)."""
    source = f"Derived from Faker's person providers ({', '.join(NAME_LOCALES)}); MIT licence."
    _write("first_names", source, _faker_names("first_names"))
    _write("last_names", source, _faker_names("last_names"))
    lorem = importlib.import_module("faker.providers.lorem.en_US").Provider
    _write(
        "common_words", "Common English words (Faker's en_US lorem list, MIT licence).", set(lorem.word_list)
    )
    address = importlib.import_module("faker.providers.address.en_US").Provider
    suffixes = set(address.street_suffixes) | {
        "St",
        "Ave",
        "Rd",
        "Blvd",
        "Ln",
        "Dr",
        "Ct",
        "Cir",
        "Pl",
        "Ter",
        "Pkwy",
        "Hwy",
        "Sq",
        "Trl",
        "Way",
    }
    _write(
        "street_suffixes",
        "USPS street suffixes (Faker's en_US address provider) and abbreviations.",
        suffixes,
    )


if __name__ == "__main__":
    build()

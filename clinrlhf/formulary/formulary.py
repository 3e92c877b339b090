"""The formulary: which drugs the pharmacy dispenses, with which sigs, and what each may treat.

It is data a hospital edits, not the guideline: the guideline (world.json's tiers) says which drug
is *right* for a patient, the formulary only which drugs *treat* a condition at all, as RxNorm's
MED-RT "may_treat" relations encode it (RxNav's RxClass serves them per ingredient RxCUI). PPO's
validity penalty and `parse_prescription` read it, so the penalty carries no knowledge of the tiers.

File format (JSON, ``format`` "clinrlhf-formulary", ``version`` 1.x)::

    {"format": "clinrlhf-formulary", "version": "1.0.0", "name": "...", "note": "...",
     "systems": {"drug": "<RxNorm URI>", "indication": "<SNOMED CT URI>"},
     "drugs": [{"rxcui": "29046", "name": "lisinopril", "sigs": ["10 mg by mouth once daily"],
                "indications": [{"relation": "may_treat", "code": "59621000",
                                 "display": "Hypertension", "source": "MED-RT"}]}]}

A drug is matched by its RxCUI (the world's drug code), an indication by its SNOMED CT code (the
code a target condition carries). Anything else in the file is refused with one line naming it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

FORMAT = "clinrlhf-formulary"
MAJOR_VERSION = "1"
MAY_TREAT = "may_treat"
_TOP_KEYS = {"format", "version", "name", "note", "systems", "drugs"}
_DRUG_KEYS = {"rxcui", "name", "sigs", "indications"}
_INDICATION_KEYS = {"relation", "code", "display", "source"}


class FormularyError(ValueError):
    """A formulary file that cannot be read as the format above; the message is one line."""


@dataclass(frozen=True)
class Indication:
    code: str
    """SNOMED CT code of the condition."""
    display: str
    source: str
    """Where the relation comes from, e.g. "MED-RT" or "local" (the formulary committee's)."""
    relation: str = MAY_TREAT


@dataclass(frozen=True)
class FormularyDrug:
    rxcui: str
    name: str
    sigs: tuple[str, ...]
    indications: tuple[Indication, ...]


@dataclass(frozen=True)
class Formulary:
    name: str
    version: str
    sha256: str
    drugs: dict[str, FormularyDrug]
    """By RxCUI."""

    def sigs(self, rxcui: str) -> tuple[str, ...]:
        """The sigs the drug is dispensed with; none for a drug the formulary lacks."""
        drug = self.drugs.get(rxcui)
        return drug.sigs if drug else ()

    def may_treat(self, rxcui: str, condition: str) -> bool:
        """Whether the drug may treat the condition (SNOMED CT code) by some listed relation."""
        drug = self.drugs.get(rxcui)
        return drug is not None and any(i.code == condition for i in drug.indications)


def _fail(where: str, problem: str) -> FormularyError:
    return FormularyError(f"formulary {where}: {problem}")


def _text(value: Any, what: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f"{what} must be a non-empty string")
    return value


def _keys(entry: Any, allowed: set[str], what: str, where: str) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise _fail(where, f"{what} must be a JSON object")
    unknown, missing = set(entry) - allowed, allowed - set(entry) - {"note"}
    if unknown:
        raise _fail(where, f"{what} has unknown key {sorted(unknown)[0]!r}")
    if missing:
        raise _fail(where, f"{what} lacks {sorted(missing)[0]!r}")
    return entry


def _indication(raw: Any, what: str, where: str) -> Indication:
    entry = _keys(raw, _INDICATION_KEYS, what, where)
    if entry["relation"] != MAY_TREAT:
        raise _fail(where, f"{what} relation is {entry['relation']!r}, not {MAY_TREAT!r}")
    return Indication(
        code=_text(entry["code"], f"{what} code", where),
        display=_text(entry["display"], f"{what} display", where),
        source=_text(entry["source"], f"{what} source", where),
    )


def _drug(raw: Any, at: int, where: str) -> FormularyDrug:
    entry = _keys(raw, _DRUG_KEYS, f"drugs[{at}]", where)
    rxcui = _text(entry["rxcui"], f"drugs[{at}].rxcui", where)
    if not rxcui.isdigit():
        raise _fail(where, f"drugs[{at}].rxcui {rxcui!r} is not an RxCUI (digits)")
    sigs, indications = entry["sigs"], entry["indications"]
    if not isinstance(sigs, list) or not sigs:
        raise _fail(where, f"drugs[{at}].sigs must be a non-empty list")
    if not isinstance(indications, list):
        raise _fail(where, f"drugs[{at}].indications must be a list")
    return FormularyDrug(
        rxcui=rxcui,
        name=_text(entry["name"], f"drugs[{at}].name", where),
        sigs=tuple(_text(s, f"drugs[{at}].sigs[{i}]", where).strip() for i, s in enumerate(sigs)),
        indications=tuple(
            _indication(x, f"drugs[{at}].indications[{i}]", where) for i, x in enumerate(indications)
        ),
    )


def parse_formulary(data: bytes, where: str = "(packaged)") -> Formulary:
    """The formulary a file's bytes hold; FormularyError (one line, naming `where`) otherwise."""
    try:
        raw = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise _fail(where, f"not valid JSON ({getattr(err, 'msg', 'not UTF-8 text')})") from None
    if not isinstance(raw, dict):
        raise _fail(where, "the file must hold a JSON object")
    top: dict[str, Any] = raw
    unknown = set(top) - _TOP_KEYS
    if unknown:
        raise _fail(where, f"unknown key {sorted(unknown)[0]!r}")
    if top.get("format") != FORMAT:
        raise _fail(where, f"format must be {FORMAT!r}")
    version = _text(top.get("version"), "version", where)
    if version.split(".")[0] != MAJOR_VERSION:
        raise _fail(where, f"version {version} is not a {MAJOR_VERSION}.x formulary")
    drugs_raw = top.get("drugs")
    if not isinstance(drugs_raw, list) or not drugs_raw:
        raise _fail(where, "drugs must be a non-empty list")
    drugs: dict[str, FormularyDrug] = {}
    for at, entry in enumerate(drugs_raw):
        drug = _drug(entry, at, where)
        if drug.rxcui in drugs:
            raise _fail(where, f"drugs[{at}] repeats RxCUI {drug.rxcui}")
        drugs[drug.rxcui] = drug
    name = _text(top.get("name", where), "name", where)
    return Formulary(name, version, hashlib.sha256(data).hexdigest(), drugs)


@cache
def _parsed(data: bytes, where: str) -> Formulary:
    return parse_formulary(data, where)


def load_formulary(path: str | Path | None = None) -> Formulary:
    """A formulary file, or the packaged ``formulary.json``. Read on every call (a hospital's edit
    is seen at once), parsed once per content."""
    if path is None:
        return _parsed(
            resources.files("clinrlhf.formulary").joinpath("formulary.json").read_bytes(), "(packaged)"
        )
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise _fail(str(path), f"cannot be read ({err.strerror or err})") from None
    return _parsed(data, str(path))

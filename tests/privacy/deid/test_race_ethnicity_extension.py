"""US Core race and ethnicity reach the de-identified record as OMB category codes only (rule
`keepExtension` on Patient.extension): no text, no detailed codes, no display, no other extension,
and the age extension stays beside them. k-anonymity counts them as quasi-identifiers once kept."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from clinrlhf.world.facts import facts_from_bundle
from privacy.deid import AGE_EXTENSION_URL, deidentify_bundle, deidentify_with_report, parse_rules
from privacy.deid.kanon import (
    NOT_RECORDED,
    QuasiIdentifiers,
    k_report,
    quasi_identifiers_of_patient,
)
from privacy.deid.ruleset import RuleFileError, default_rules

TODAY = date(2026, 3, 1)
KEY = b"k" * 32
RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
ETHNICITY = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
BIRTHSEX = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex"
CDC = "urn:oid:2.16.840.1.113883.6.238"
NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
SYNTHEA = sorted((Path(__file__).parents[4] / "shared" / "data" / "synthea-r4").glob("*.json"))


def _coding(url: str, system: str, code: str, display: str) -> dict[str, Any]:
    return {"url": url, "valueCoding": {"system": system, "code": code, "display": display}}


def _extensions() -> list[dict[str, Any]]:
    return [
        {
            "url": RACE,
            "extension": [
                _coding("ombCategory", CDC, "2106-3", "White"),
                _coding("ombCategory", CDC, "2054-5", "Black or African American"),
                _coding("ombCategory", "http://example.org/race", "2028-9", "Asian"),  # system not allowed
                _coding("ombCategory", CDC, "2036-2", "Filipino"),  # a detailed code under ombCategory
                _coding("detailed", CDC, "2108-9", "European"),
                {"url": "text", "valueString": "White and Black, Okafor family"},
            ],
        },
        {
            "url": ETHNICITY,
            "extension": [
                _coding("ombCategory", CDC, "2135-2", "Hispanic or Latino"),
                _coding("detailed", CDC, "2148-5", "Mexican"),
                {"url": "text", "valueString": "Hispanic (Okafor)"},
            ],
        },
        {"url": BIRTHSEX, "valueCode": "F"},
        {"url": "http://example.org/fhir/unknown", "valueString": "Okafor"},
        {"url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName", "valueString": "Okafor"},
    ]


def _bundle(patient_first: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    patient = (patient_first or {}) | {
        "resourceType": "Patient",
        "id": "p1",
        "gender": "female",
        "extension": _extensions(),
        "birthDate": "1970-05-06",
    }
    patient |= fields
    return {"resourceType": "Bundle", "entry": [{"resource": patient}]}


def _patient(bundle: dict[str, Any]) -> dict[str, Any]:
    return bundle["entry"][0]["resource"]


EXPECTED_RACE = {
    "url": RACE,
    "extension": [
        {"url": "ombCategory", "valueCoding": {"system": CDC, "code": "2106-3"}},
        {"url": "ombCategory", "valueCoding": {"system": CDC, "code": "2054-5"}},
    ],
}
EXPECTED_ETHNICITY = {
    "url": ETHNICITY,
    "extension": [{"url": "ombCategory", "valueCoding": {"system": CDC, "code": "2135-2"}}],
}
EXPECTED_AGE = {"url": AGE_EXTENSION_URL, "valueInteger": 55}


def test_only_omb_categories_are_kept_and_the_age_stays() -> None:
    result, report = deidentify_with_report(_bundle(), key=KEY, today=TODAY)
    out = _patient(result.bundle)
    assert out["extension"] == [EXPECTED_RACE, EXPECTED_ETHNICITY, EXPECTED_AGE]
    text = json.dumps(result.bundle)
    for gone in ("Okafor", "text", "detailed", "display", "White", "2108-9", "2036-2", "2148-5", BIRTHSEX):
        assert gone not in text
    assert "example.org" not in text and "mothersMaidenName" not in text
    # 2 kept; dropped: 3 other extensions, 4 race and 2 ethnicity sub-extensions.
    assert result.counts["extension:keepExtension"] == 2
    assert result.counts["extension:redact"] == 3 + 4 + 2
    assert report.by_method["keepExtension"] == 2


@pytest.mark.parametrize("birth_date_first", [True, False])
def test_kept_extensions_are_merged_with_the_age_in_either_key_order(birth_date_first: bool) -> None:
    patient = {"resourceType": "Patient", "birthDate": "1970-05-06"} if birth_date_first else None
    bundle = _bundle(patient)
    keys = list(_patient(bundle))
    assert (keys.index("birthDate") < keys.index("extension")) is birth_date_first
    out = _patient(deidentify_bundle(bundle, key=KEY, today=TODAY).bundle)
    expected = [EXPECTED_RACE, EXPECTED_ETHNICITY]
    expected = [EXPECTED_AGE, *expected] if birth_date_first else [*expected, EXPECTED_AGE]
    assert out["extension"] == expected


def test_the_facts_read_back_race_and_ethnicity_from_the_de_identified_record() -> None:
    facts = facts_from_bundle(deidentify_bundle(_bundle(), key=KEY, today=TODAY).bundle, on=TODAY)
    assert (facts.race, facts.ethnicity, facts.age) == ("multiracial", "hispanic", 55)


def test_null_flavor_is_kept_and_a_code_from_another_system_is_dropped() -> None:
    bundle = _bundle(
        extension=[
            {"url": RACE, "extension": [_coding("ombCategory", NULL_FLAVOR, "UNK", "Unknown")]},
            {
                "url": ETHNICITY,
                "extension": [_coding("ombCategory", "http://snomed.info/sct", "2135-2", "x")],
            },
        ]
    )
    out = _patient(deidentify_bundle(bundle, key=KEY, today=TODAY).bundle)
    unknown = {"url": "ombCategory", "valueCoding": {"system": NULL_FLAVOR, "code": "UNK"}}
    assert out["extension"] == [{"url": RACE, "extension": [unknown]}, EXPECTED_AGE]


@pytest.mark.parametrize(
    "extension",
    [
        {"url": RACE, "extension": [{"url": "text", "valueString": "White"}]},  # text only
        {"url": RACE, "extension": [_coding("detailed", CDC, "2108-9", "European")]},
        {"url": RACE, "valueCoding": {"system": CDC, "code": "2106-3"}},  # no sub-extension
        {"url": RACE, "extension": [{"url": "ombCategory", "valueString": "2106-3"}]},
        {"url": RACE, "extension": [{"url": "ombCategory", "valueCoding": {"code": "2106-3"}}]},
        {"url": RACE, "extension": "2106-3"},
        {"url": RACE.upper(), "extension": [_coding("ombCategory", CDC, "2106-3", "White")]},
        {"url": BIRTHSEX, "valueCode": "F"},
        "Okafor",
        None,
    ],
)
def test_what_is_not_an_allowed_coding_leaves_nothing_but_the_age(extension: Any) -> None:
    out = _patient(deidentify_bundle(_bundle(extension=[extension]), key=KEY, today=TODAY).bundle)
    assert out["extension"] == [EXPECTED_AGE]


def test_a_repeated_extension_or_coding_is_kept_once() -> None:
    white = _coding("ombCategory", CDC, "2106-3", "White")
    twice = {"url": RACE, "extension": [white, white]}
    out = _patient(deidentify_bundle(_bundle(extension=[twice, twice]), key=KEY, today=TODAY).bundle)
    assert out["extension"] == [{"url": RACE, "extension": [EXPECTED_RACE["extension"][0]]}, EXPECTED_AGE]


def test_extensions_of_other_resources_are_still_redacted() -> None:
    bundle = _bundle()
    condition = {
        "resourceType": "Condition",
        "id": "c1",
        "subject": {"reference": "Patient/p1"},
        "extension": _extensions(),
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]},
    }
    bundle["entry"].append({"resource": condition})
    out = deidentify_bundle(bundle, key=KEY, today=TODAY).bundle["entry"][1]["resource"]
    assert "extension" not in out


def _rule_file(rule: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "version": "1",
            "resourceTypes": ["Patient"],
            "parameters": {"ageExtensionUrl": "urn:age"},
            "rules": [rule],
        }
    ).encode()


GOOD = {
    "path": "Patient.extension",
    "method": "keepExtension",
    "allow": {RACE: ["ombCategory"]},
    "codeSystems": {CDC: ["2106-3"]},
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"path": "Patient.gender"}, "applies to an extension"),
        ({"allow": None}, "needs allow"),
        ({"allow": {RACE: []}}, "needs allow"),
        ({"allow": {RACE: ["ombCategory", "text"]}}, "never keeps a text"),
        ({"codeSystems": [CDC]}, "needs codeSystems"),
        ({"codeSystems": {CDC: [5]}}, "needs codeSystems"),
    ],
)
def test_the_rule_file_refuses_a_malformed_keep_extension(change: dict[str, Any], message: str) -> None:
    parse_rules(_rule_file(GOOD))
    with pytest.raises(RuleFileError, match=message):
        parse_rules(_rule_file(GOOD | change))


def test_the_default_rule_file_keeps_race_and_ethnicity_since_version_2_1() -> None:
    rules = default_rules()
    assert tuple(int(part) for part in rules.version.split(".")) >= (2, 1, 0)
    (rule,) = [r for r in rules.rules if r.method == "keepExtension"]
    assert rule.path == ("Patient", "extension")
    assert dict(rule.params["allow"]) == {RACE: ["ombCategory"], ETHNICITY: ["ombCategory"]}
    assert set(rule.params["codeSystems"]) == {CDC, NULL_FLAVOR}


def test_race_and_ethnicity_are_quasi_identifiers_once_kept() -> None:
    qi = quasi_identifiers_of_patient(_patient(_bundle()), TODAY)
    assert (qi.race, qi.ethnicity) == ("2054-5+2106-3", "2135-2")
    done = _patient(deidentify_bundle(_bundle(), key=KEY, today=TODAY).bundle)
    assert quasi_identifiers_of_patient(done, TODAY) == qi
    bare = quasi_identifiers_of_patient({"gender": "male", "birthDate": "1970-01-01"}, TODAY)
    assert (bare.race, bare.ethnicity) == (NOT_RECORDED, NOT_RECORDED)
    report = k_report([qi, qi, bare], 2)
    assert report["quasi_identifiers"] == ["age_band", "sex", "zip3", "race", "ethnicity"]
    assert report["k"] == 1 and report["classes"] == 2


def test_records_that_do_not_carry_race_keep_three_quasi_identifiers() -> None:
    # A rule file that redacts extensions keeps no race, so race is no quasi-identifier there;
    # nor in a training snapshot, whose prompts never show race (clinrlhf/feedback/anonymity.py).
    redacting = parse_rules(
        _rule_file({"path": "Resource.extension", "method": "redact", "identifier": "extension"})
    )
    qi = quasi_identifiers_of_patient(_patient(_bundle()), TODAY, rules=redacting)
    assert (qi.race, qi.ethnicity) == (None, None)
    snapshot = [QuasiIdentifiers("40-44", "female", "000")] * 3
    assert k_report(snapshot, 2)["quasi_identifiers"] == ["age_band", "sex", "zip3"]
    assert k_report([qi], 1)["quasi_identifiers"] == ["age_band", "sex", "zip3"]


def test_every_synthea_patient_keeps_only_omb_codes() -> None:
    assert len(SYNTHEA) == 13
    patients = 0
    for path in SYNTHEA:
        bundle = json.loads(path.read_bytes())
        raw = [e["resource"] for e in bundle["entry"] if e["resource"].get("resourceType") == "Patient"]
        if len(raw) != 1:
            continue
        patients += 1
        result = deidentify_bundle(copy.deepcopy(bundle), key=KEY, today=TODAY)
        out = _patient(result.bundle)
        assert [e["url"] for e in out["extension"]] == [RACE, ETHNICITY, AGE_EXTENSION_URL]
        for ext in out["extension"][:2]:
            assert {p["url"] for p in ext["extension"]} == {"ombCategory"}
            assert all(set(p["valueCoding"]) == {"system", "code"} for p in ext["extension"])
        text = json.dumps(out)
        raw_extensions = {e["url"]: e for e in raw[0]["extension"]}
        for ext in raw_extensions.values():
            for part in ext.get("extension", []):
                if part["url"] == "text":
                    assert part["valueString"] not in text
        maiden = raw_extensions["http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName"]
        place = raw_extensions["http://hl7.org/fhir/StructureDefinition/patient-birthPlace"]["valueAddress"]
        assert maiden["valueString"] not in json.dumps(result.bundle)
        assert place["city"] not in json.dumps(result.bundle)
        facts = facts_from_bundle(result.bundle, on=TODAY)
        assert facts.race is not None and facts.ethnicity is not None
    assert patients == 11

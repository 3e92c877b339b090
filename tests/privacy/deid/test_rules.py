"""The rule file: its format, its hash in lineage, and what each method does to an element."""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from importlib import resources

import pytest

from privacy.deid import config_sha256, deidentify_with_report, parse_rules
from privacy.deid.methods import hash_reference, identifier_kind, shift_date, telecom_kind, zip3
from privacy.deid.paths import PathError, compile_tree, parse_path
from privacy.deid.ruleset import RuleFileError, default_rules

TODAY = date(2026, 3, 1)
KEY = b"k" * 32


def _rules(*rules: dict, types=("Patient", "Condition"), **parameters) -> bytes:
    base = {"ageCap": 90, "ageExtensionUrl": "urn:age", "patterns": {"code": "^[a-z]+$"}}
    return json.dumps(
        {
            "name": "t",
            "version": "1",
            "resourceTypes": list(types),
            "parameters": base | parameters,
            "rules": list(rules),
        }
    ).encode()


def _patient(**fields) -> dict:
    patient = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1980-05-06"} | fields
    return {"resourceType": "Bundle", "entry": [{"resource": patient}]}


def _apply(rules: bytes, bundle: dict) -> dict:
    result, _ = deidentify_with_report(bundle, key=KEY, today=TODAY, rules=parse_rules(rules))
    return result.bundle["entry"][0]["resource"]


def test_the_lineage_hash_is_the_sha256_of_the_shipped_rule_file() -> None:
    data = resources.files("privacy.deid").joinpath("rules", "default.json").read_bytes()
    assert config_sha256() == hashlib.sha256(data).hexdigest() == default_rules().sha256
    assert default_rules().version == json.loads(data)["version"]


def test_whatever_no_rule_keeps_is_removed() -> None:
    out = _apply(_rules({"path": "Patient.gender", "method": "keep"}), _patient(name=[{"family": "Okafor"}]))
    assert out == {"resourceType": "Patient", "gender": "female"}


def test_keep_with_a_pattern_drops_values_that_do_not_match() -> None:
    rules = _rules({"path": "Patient.gender", "method": "keep", "pattern": "code"})
    assert "gender" not in _apply(rules, _patient(gender="Call 555-0100"))


def test_substitute_replaces_the_value() -> None:
    rules = _rules({"path": "Patient.address.country", "method": "substitute", "value": "US"})
    assert _apply(rules, _patient(address=[{"country": "Canada", "city": "X"}])) == {
        "resourceType": "Patient",
        "address": [{"country": "US"}],
    }


@pytest.mark.parametrize(
    ("birth", "age"), [("1980-05-06", 45), ("1936-03-02", 89), ("1936-03-01", 90), ("1901-01-01", 90)]
)
def test_generalize_birth_date_to_an_age_capped_at_90(birth: str, age: int) -> None:
    rules = _rules({"path": "Patient.birthDate", "method": "generalize", "to": "ageInYears"})
    assert _apply(rules, _patient(birthDate=birth))["extension"] == [{"url": "urn:age", "valueInteger": age}]


def test_a_type_rule_overrides_the_resource_rule_on_the_same_path() -> None:
    rules = _rules(
        {"path": "Resource.id", "method": "cryptoHash"},
        {"path": "Patient.id", "method": "substitute", "value": "x"},
    )
    assert _apply(rules, _patient())["id"] == "x"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{", "not valid JSON"),
        (json.dumps({"rules": []}).encode(), "needs a version"),
        (_rules({"path": "Patient.name", "method": "encrypt"}), "method must be"),
        (_rules({"path": "Patient", "method": "keep"}), "needs a resource type and"),
        (_rules({"path": "Patient.name.where(use='official')", "method": "keep"}), "member navigation"),
        (_rules({"path": "Patient.birthDate", "method": "generalize", "to": "decade"}), "generalize needs"),
        (_rules({"path": "Patient.id", "method": "substitute"}), "substitute needs a value"),
        (_rules({"path": "Patient.id", "method": "keep", "pattern": "nope"}), "unknown pattern"),
        (
            _rules(
                {"path": "Patient.name", "method": "redact"},
                {"path": "Patient.name.family", "method": "keep"},
            ),
            "lies inside",
        ),
    ],
)
def test_malformed_rule_files_are_rejected_with_a_reason(raw: bytes, message: str) -> None:
    with pytest.raises(RuleFileError, match=message):
        parse_rules(raw)


def test_paths_are_dotted_member_navigation() -> None:
    assert parse_path("Observation.valueQuantity.value") == ("Observation", "valueQuantity", "value")
    with pytest.raises(PathError):
        parse_path("observation.code")
    tree = compile_tree(default_rules().rules, "Observation")
    assert tree.children["valueQuantity"].children["value"].rule is not None
    assert "name" not in tree.children


def test_date_shift_keeps_precision_time_and_zone() -> None:
    shift = timedelta(days=-40)
    assert shift_date("2024-03-10", shift) == "2024-01-30"
    assert shift_date("2024-03-10T08:15:00-05:00", shift) == "2024-01-30T08:15:00-05:00"
    assert shift_date("2024-03", shift) == "2024-02"
    assert shift_date("2024", shift) == "2024"
    assert shift_date("not a date", shift) is None


def test_references_hash_to_the_target_id_pseudonym_in_every_spelling() -> None:
    types = {"abc": "Patient"}
    expected = hash_reference(KEY, "Patient/abc", types)
    assert expected is not None and expected.startswith("Patient/") and "abc" not in expected
    assert hash_reference(KEY, "urn:uuid:abc", types) == expected
    assert hash_reference(KEY, "https://ehr.example.org/fhir/Patient/abc", types) == expected
    assert hash_reference(KEY, "Patient/abc/_history/2", types) == expected


def test_the_report_counts_by_identifier_and_method_and_holds_no_values() -> None:
    bundle = _patient(name=[{"family": "Okafor"}], telecom=[{"system": "phone", "value": "555-0100"}])
    bundle["entry"].append({"resource": {"resourceType": "Claim", "id": "c1"}})
    _, report = deidentify_with_report(bundle, key=KEY, today=TODAY)
    d = report.to_dict()
    assert d["by_identifier"]["name"] == 1 and d["by_identifier"]["telephone"] == 1
    assert d["by_method"]["redact"] >= 3 and d["dropped_resources"] == {"Claim": 1}
    assert d["safe_harbor"]["A names"] == 1 and d["rules"]["sha256"] == config_sha256()
    assert (d["resources_in"], d["resources_out"]) == (2, 1)
    assert "Okafor" not in json.dumps(d) and "555" not in json.dumps(d)


def test_a_kept_value_of_the_wrong_type_is_dropped_or_refuses_the_record() -> None:
    keep = {"path": "Condition.onsetAge.value", "method": "keep", "type": "number"}
    bundle = _patient()
    bundle["entry"].append(
        {"resource": {"resourceType": "Condition", "id": "c", "onsetAge": {"value": "high"}}}
    )
    result, _ = deidentify_with_report(bundle, key=KEY, today=TODAY, rules=parse_rules(_rules(keep)))
    assert result.bundle["entry"][1]["resource"] == {"resourceType": "Condition"}
    with pytest.raises(ValueError, match="wrong type") as caught:
        deidentify_with_report(
            bundle, key=KEY, today=TODAY, rules=parse_rules(_rules(keep | {"invalid": "reject"}))
        )
    assert "high" not in str(caught.value)


SCT = "http://snomed.info/sct"
_CODES = {"codeSystems": {SCT: {"shape": "snomed"}}, "valueSets": {"gender": ["female", "male"]}}


@pytest.mark.parametrize(
    ("rule", "parameters", "message"),
    [
        ({"path": "Condition.code.coding", "method": "keepCoding"}, _CODES, "needs systems"),
        ({"path": "Condition.code.coding", "method": "keepCoding", "systems": ["urn:x"]}, _CODES, "lacks"),
        ({"path": "Condition.code", "method": "keepCoding", "systems": [SCT]}, _CODES, "coding or value"),
        ({"path": "Patient.gender", "method": "keep", "valueSet": "sex"}, _CODES, "unknown value set"),
        (
            {"path": "Patient.gender", "method": "keep"},
            {"codeSystems": {SCT: {"shape": "x"}}},
            "codes .a list",
        ),
        (
            {"path": "Patient.gender", "method": "keep"},
            {"codeSystems": {SCT: {"codes": []}}},
            "codes .a list",
        ),
        ({"path": "Patient.gender", "method": "keep"}, {"valueSets": {"gender": "female"}}, "valueSets"),
        ({"path": "Patient.gender", "method": "keep"}, {"datesAtAgeCap": "keep"}, "datesAtAgeCap"),
    ],
)
def test_malformed_vocabularies_and_their_rules_are_rejected(
    rule: dict, parameters: dict, message: str
) -> None:
    with pytest.raises(RuleFileError, match=message):
        parse_rules(_rules(rule, **parameters))


def test_keep_coding_copies_only_system_and_code_of_an_allowed_system() -> None:
    rules = _rules(
        {"path": "Condition.code.coding", "method": "keepCoding", "identifier": "code", "systems": [SCT]},
        **_CODES,
    )
    coding = {
        "system": SCT,
        "code": "44054006",
        "display": "Okafor's diabetes",
        "version": "x",
        "userSelected": True,
    }
    other = {"system": "http://example.org/okafor", "code": "44054006"}
    bundle = _patient()
    bundle["entry"].append({"resource": {"resourceType": "Condition", "code": {"coding": [coding, other]}}})
    result, _ = deidentify_with_report(bundle, key=KEY, today=TODAY, rules=parse_rules(rules))
    assert result.bundle["entry"][1]["resource"]["code"] == {"coding": [{"system": SCT, "code": "44054006"}]}
    assert (result.counts["code:keepCoding"], result.counts["code:redact"]) == (1, 1)


# The 2020 census list (18 prefixes) against the HHS guidance's 2000 census list (17 prefixes).
RESTRICTED_2020 = ["036", "059", "102", "202", "203", "204", "205", "369", "556", "692", "753", "772", "821",
                   "823", "878", "879", "884", "893"]  # fmt: skip


def test_the_restricted_zip3_list_is_the_2020_census_list() -> None:
    assert sorted(default_rules().restricted_zip3) == RESTRICTED_2020
    assert [zip3(f"{p}01", default_rules().restricted_zip3) for p in ("202", "205", "369", "753", "772")] == [
        "000"
    ] * 5
    # No longer at or under 20,000 people in 2020: their ZIP3 stays.
    assert [zip3(f"{p}01", default_rules().restricted_zip3) for p in ("063", "790", "830")] == [
        "063",
        "790",
        "830",
    ]


def _dated(birth_date: str | None, *dates: str) -> dict:
    bundle = (
        _patient()
        if birth_date
        else {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient", "id": "p1"}}]}
    )
    if birth_date:
        bundle["entry"][0]["resource"]["birthDate"] = birth_date
    for n, when in enumerate(dates):
        bundle["entry"].append(
            {"resource": {"resourceType": "Condition", "id": f"c{n}", "onsetDateTime": when}}
        )
    return bundle


def _onsets(bundle: dict) -> list[str | None]:
    out = deidentify_with_report(bundle, key=KEY, today=TODAY)[0].bundle
    return [e["resource"].get("onsetDateTime") for e in out["entry"][1:]]


def test_a_date_more_than_90_years_back_is_dropped_even_without_a_birth_date() -> None:
    """Being alive on a day 90 years ago is itself an age over 89 (the line is 2026-03-01 - 90 y)."""
    onsets = _onsets(_dated(None, "1936-02-29", "1936-03-01", "2020-01-01"))
    assert onsets[0] is None and onsets[1] is not None and onsets[2] is not None


@pytest.mark.parametrize(("birth_date", "hidden"), [("1936", True), ("1936-03", True), ("1936-04", False),
                                                    ("1936-03-02", False), ("1936-03-01", True)])  # fmt: skip
def test_a_partial_birth_date_that_allows_90_hides_every_date(birth_date: str, hidden: bool) -> None:
    onsets = _onsets(_dated(birth_date, "2020-01-01T10:00:00Z"))
    assert (onsets == [None]) is hidden


def test_a_date_in_other_digits_is_normalised_before_it_is_shifted() -> None:
    assert shift_date("２０２４-03-10", timedelta(days=-40)) == "2024-01-30"
    assert shift_date("2024-03-10\u200b", timedelta(days=-40)) == "2024-01-30"
    assert shift_date("٢٠٢٤-03-10", timedelta(days=-40)) is None
    assert shift_date("2024-03-10T08:15:00Z okafor", timedelta(days=-40)) is None


def test_identifier_and_telecom_kinds_are_read_normalised() -> None:
    """Only the report's counts depend on the kind, but a fullwidth SS is still counted as an SSN."""
    assert identifier_kind({"type": {"coding": [{"code": "ＳＳ"}]}, "value": "123-45-6789"}) == "ssn"
    assert identifier_kind({"system": "http://hl7.org/fhir/sid/us-\u200bssn"}) == "ssn"
    assert telecom_kind({"system": "ｐｈｏｎｅ"}) == "telephone"

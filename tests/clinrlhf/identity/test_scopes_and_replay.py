"""SMART scope matching, the role matrix, the issuer configuration and the replay cache."""

from __future__ import annotations

import time

import pytest

from clinrlhf.identity import (
    ROLE_SCOPES,
    ROLES,
    IssuerConfigError,
    MemoryJtiCache,
    grants,
    parse_issuers,
    parse_scope,
)


@pytest.mark.parametrize(
    ("scope", "resource", "permission", "granted"),
    [
        ("user/QuestionnaireResponse.cr", "QuestionnaireResponse", "c", True),
        ("user/QuestionnaireResponse.cr", "QuestionnaireResponse", "r", True),
        ("user/QuestionnaireResponse.cr", "QuestionnaireResponse", "d", False),
        ("user/QuestionnaireResponse.cr", "Questionnaire", "r", False),
        ("system/*.rs", "AuditEvent", "s", True),
        ("patient/Observation.read", "Observation", "s", True),  # SMART v1 read = v2 rs
        ("patient/Observation.write", "Observation", "r", False),
        ("user/Patient.*", "Patient", "d", True),
        ("user/Patient.rc", "Patient", "c", False),  # v2 permissions must be in cruds order
        ("launch/patient", "Patient", "r", False),
        ("openid", "CDSHooks", "c", False),
    ],
)
def test_scope_grants(scope: str, resource: str, permission: str, granted: bool) -> None:
    assert grants([scope], resource, permission) is granted


def test_non_resource_scopes_do_not_parse() -> None:
    assert parse_scope("fhirUser") is None and parse_scope("user/Patient.") is None


def test_each_role_can_do_its_job_and_nothing_of_the_others() -> None:
    can = {role: set(ROLE_SCOPES[role].split()) for role in ROLES}
    assert grants(can["clinician"], "QuestionnaireResponse", "c") and not grants(
        can["clinician"], "CDSHooks", "c"
    )
    assert grants(can["cds-client"], "CDSHooks", "c") and not grants(
        can["cds-client"], "QuestionnaireResponse", "c"
    )
    assert grants(can["ml-engineer"], "Feedback", "r") and not grants(can["ml-engineer"], "AuditEvent", "r")
    assert grants(can["compliance"], "AuditEvent", "r") and not grants(can["compliance"], "CDSHooks", "c")


def test_issuer_configuration_accepts_locations_or_objects_and_rejects_the_rest() -> None:
    issuers = parse_issuers('{"a": "/keys.json", "b": {"jwks": "https://b/jwks", "role": "cds-client"}}')
    assert (
        issuers["a"].jwks == "/keys.json" and issuers["a"].role is None and issuers["b"].role == "cds-client"
    )
    assert parse_issuers(None) == {}
    for bad in ["not json", "[1]", '{"a": 1}', '{"a": {"jwks": "x", "role": "admin"}}']:
        with pytest.raises(IssuerConfigError):
            parse_issuers(bad)


def test_replay_cache_remembers_ids_until_they_expire() -> None:
    cache = MemoryJtiCache()
    assert cache.first_use("iss", "a", time.time() + 60)
    assert not cache.first_use("iss", "a", time.time() + 60)
    assert cache.first_use("other-iss", "a", time.time() + 60)
    assert cache.first_use("iss", "b", time.time() - 1)
    assert cache.first_use("iss", "b", time.time() + 60)  # the first use had expired


def test_a_full_replay_cache_refuses_rather_than_forgets() -> None:
    cache = MemoryJtiCache(max_entries=2)
    assert cache.first_use("i", "a", time.time() + 60) and cache.first_use("i", "b", time.time() + 60)
    assert not cache.first_use("i", "c", time.time() + 60)
    assert not cache.first_use("i", "a", time.time() + 60)


@pytest.mark.parametrize(
    ("scope", "contexts", "granted"),
    [
        ("patient/Observation.rs", ("patient", "user", "system"), True),
        ("patient/Observation.rs", ("user", "system"), False),  # a token for another patient
        ("user/Observation.rs", ("user", "system"), True),
        ("user/Observation.read", ("user",), True),  # SMART v1 still accepted
        ("patient/Observation.rs?category=laboratory", ("patient",), False),  # v2: a subset only
    ],
)
def test_scope_grants_only_in_the_contexts_asked_for(
    scope: str, contexts: tuple[str, ...], granted: bool
) -> None:
    assert grants([scope], "Observation", "s", contexts=contexts) is granted

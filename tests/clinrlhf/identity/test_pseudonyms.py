"""How people are named where they are recorded: one keyed pseudonym per person and kind, never the
raw identifier, the same wherever it is written (services' audit events, the governance trail)."""

from __future__ import annotations

from clinrlhf.compliance.governance import compliance_officer
from clinrlhf.identity import (
    Principal,
    actor,
    actor_pseudonym,
    client_pseudonym,
    clinician_pseudonym,
)

KEY = b"k" * 32


def principal(
    sub: str = "dr-house", role: str | None = "clinician", issuer: str = "https://idp.test"
) -> Principal:
    return Principal(sub=sub, issuer=issuer, role=role, scopes=frozenset())


def test_an_actor_is_its_role_and_a_pseudonym_never_the_subject() -> None:
    name = actor(principal(), KEY)
    role, alias = name.split(":")
    assert role == "clinician"
    assert alias == actor_pseudonym(principal(), KEY)
    assert "dr-house" not in name and "idp.test" not in name


def test_a_token_without_a_role_acts_as_external() -> None:
    assert actor(principal(role=None), KEY).startswith("external:")


def test_an_officer_is_named_in_the_governance_trail_as_the_api_names_them() -> None:
    officer = principal(sub="officer-1", role="compliance")
    assert compliance_officer(officer, KEY, "approving a model").actor == actor(officer, KEY)


def test_the_same_subject_from_another_issuer_is_another_actor() -> None:
    assert actor(principal(issuer="https://a.test"), KEY) != actor(principal(issuer="https://b.test"), KEY)


def test_a_practitioner_reference_and_its_bare_id_name_one_clinician() -> None:
    bare = clinician_pseudonym(KEY, "123")
    assert clinician_pseudonym(KEY, "Practitioner/123") == bare
    assert clinician_pseudonym(KEY, "PractitionerRole/123") == bare
    assert clinician_pseudonym(KEY, "124") != bare


def test_the_kinds_of_name_are_unlinkable() -> None:
    """One person's clinician, actor and CDS-client pseudonyms share nothing a reader could join on."""
    who = principal(sub="123")
    names = {clinician_pseudonym(KEY, "123"), actor_pseudonym(who, KEY), client_pseudonym(KEY, who)}
    assert len(names) == 3


def test_names_depend_on_the_deployment_key() -> None:
    assert actor(principal(), KEY) != actor(principal(), b"j" * 32)
    assert clinician_pseudonym(KEY, "123") != clinician_pseudonym(b"j" * 32, "123")

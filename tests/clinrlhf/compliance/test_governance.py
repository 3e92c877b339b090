"""Who counts as a compliance officer, and when an override reason is needed: the rules the CLI
and the dashboard share."""

import pytest

from clinrlhf.compliance.criteria import AcceptanceCriteria
from clinrlhf.compliance.governance import (
    GovernanceRefused,
    compliance_officer,
    custom_criteria,
    is_compliance,
    override_reason,
)
from clinrlhf.identity import ROLE_SCOPES, Principal

COMPLIANCE_SCOPES = frozenset(ROLE_SCOPES["compliance"].split())
KEY = b"k" * 32


def _principal(role, scopes=frozenset(), name=None):
    return Principal(sub="s-1", role=role, scopes=scopes, issuer="https://idp.example", name=name)


def test_an_identity_provider_token_without_a_role_qualifies_by_the_compliance_scopes():
    assert is_compliance(_principal(None, COMPLIANCE_SCOPES))
    assert not is_compliance(_principal(None, COMPLIANCE_SCOPES - {"system/AuditEvent.rs"}))


def test_another_role_never_qualifies_whatever_scopes_it_lists():
    assert not is_compliance(_principal("ml-engineer", COMPLIANCE_SCOPES))
    with pytest.raises(GovernanceRefused, match="needs the compliance role, not ml-engineer"):
        compliance_officer(_principal("ml-engineer", COMPLIANCE_SCOPES), KEY, "promoting a model")


def test_the_officer_is_a_pseudonym_in_the_trail_and_a_name_beside_it():
    officer = compliance_officer(_principal(None, COMPLIANCE_SCOPES, "Dr. Ada Lee"), KEY, "x")
    assert officer.actor.startswith("compliance:") and "s-1" not in officer.actor
    assert officer.display == "Dr. Ada Lee (compliance)"
    unnamed = compliance_officer(_principal("compliance"), KEY, "x")
    assert unnamed.name == unnamed.actor.split(":", 1)[1]


def test_a_failing_version_needs_a_written_reason_and_a_passing_one_none():
    assert override_reason(None, "whatever", "promote version 3") is None
    with pytest.raises(GovernanceRefused, match="acceptance criteria not met: concordance 0.5"):
        override_reason("concordance 0.5 (required >= 0.700)", " \n ", "promote version 3")
    assert override_reason("concordance 0.5", "  pilot\nward 4 ", "x") == "pilot ward 4"
    with pytest.raises(GovernanceRefused, match="longer than"):
        override_reason("concordance 0.5", "x" * 2001, "x")


def test_custom_criteria_are_those_that_differ_from_the_defaults():
    assert custom_criteria(AcceptanceCriteria()) == {}
    assert custom_criteria(AcceptanceCriteria(min_concordance=0.4, max_epsilon=8.0)) == {
        "min_concordance": 0.4
    }

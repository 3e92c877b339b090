"""The production alias moves only through promotion (passing criteria and a recorded compliance
approval) and rollback, and every move is in the audit trail."""

import argparse

import pytest
from sqlalchemy import select

from clinrlhf.cli import CLIError
from clinrlhf.cli.promote import run as promote_cli
from clinrlhf.compliance.approval import ACTOR_TAG, EVENT_TAG, ApprovalError, approve, find_approval
from clinrlhf.compliance.criteria import AcceptanceCriteria
from clinrlhf.compliance.governance import compliance_officer
from clinrlhf.compliance.promotion import PromotionRefused, promote, rollback
from clinrlhf.compliance.registry import HISTORY, MODEL_NAME, PRODUCTION, production_version
from clinrlhf.identity import Principal, mint_token
from clinrlhf.pipeline.sample_run import record_sample_run
from clinrlhf.policy.pointers import production_policy
from clinrlhf.store import consistent_read, verify_audit
from clinrlhf.store.models import AuditEvent

OFFICER = Principal(sub="officer-1", role="compliance", scopes=frozenset(), issuer="test")
ENGINEER = Principal(sub="eng-1", role="ml-engineer", scopes=frozenset(), issuer="test")
LENIENT = AcceptanceCriteria(min_concordance=0.4, max_unsafe_rate=0.2, max_subgroup_gap=0.5)


GAP = AcceptanceCriteria(max_subgroup_gap=0.3)


def _approve(sample, version, who=OFFICER, criteria=GAP):
    return approve(
        sample.client, sample.sessions, version, who, sample.settings.deid_secret, criteria=criteria
    )


def _promote(sample, version, criteria=None, who=OFFICER):
    return promote(sample.client, sample.sessions, sample.settings, version, criteria or GAP, who)


def _officer(sample):
    return compliance_officer(OFFICER, sample.settings.deid_secret, "test").actor


def _events(sample):
    with consistent_read(sample.sessions) as session:
        return [
            (e.entity_type, e.entity_id, e.outcome, e.actor)
            for e in session.scalars(select(AuditEvent).order_by(AuditEvent.seq))
        ]


def test_promotion_without_an_approval_is_refused_and_recorded(sample):
    with pytest.raises(PromotionRefused, match="no approval by the compliance role"):
        _promote(sample, sample.good.version)
    assert production_version(sample.client) is None
    entity, officer = f"{MODEL_NAME}/{sample.good.version}", _officer(sample)
    assert _events(sample) == [
        ("ModelPromotion", entity, "4", officer),
        ("GovernanceRecord", entity, "0", officer),  # pins which criteria it was refused under
    ]


def test_promotion_with_failing_criteria_is_refused_even_when_approved(sample):
    _approve(sample, sample.poor.version, criteria=LENIENT)
    with pytest.raises(
        PromotionRefused, match=r"acceptance criteria not met: concordance 0\.\d+ \(required >= 0\.700\)"
    ):
        _promote(sample, sample.poor.version)
    assert production_version(sample.client) is None


def test_only_the_compliance_role_can_approve(sample):
    with pytest.raises(ApprovalError, match="compliance role"):
        _approve(sample, sample.good.version, ENGINEER)
    assert _events(sample) == []


def test_approval_is_a_tag_and_an_audit_event_that_agree(sample):
    done = _approve(sample, sample.good.version)
    mv = sample.client.get_model_version(MODEL_NAME, sample.good.version)
    assert mv.tags[ACTOR_TAG] == done.actor and done.actor.startswith("compliance:")
    assert "officer-1" not in done.actor  # a pseudonym, never the subject
    with consistent_read(sample.sessions) as session:
        assert find_approval(sample.client, session, sample.good.version) == done
    with pytest.raises(ApprovalError, match="already approved"):
        _approve(sample, sample.good.version)


def test_an_approval_typed_into_mlflow_by_hand_does_not_count(sample):
    for key, value in ((ACTOR_TAG, "compliance:someone"), (EVENT_TAG, "not-an-event")):
        sample.client.set_model_version_tag(MODEL_NAME, sample.good.version, key, value)
    with pytest.raises(PromotionRefused, match="no approval"):
        _promote(sample, sample.good.version)


def test_approved_passing_version_goes_to_production_and_serving_follows(sample):
    _approve(sample, sample.good.version)
    done = _promote(sample, sample.good.version)
    assert str(production_version(sample.client).version) == sample.good.version == done.version
    pointer = production_policy(sample.settings.resolved_home)
    assert pointer.version == sample.good.version and pointer.path == str(done.policy_dir)
    assert (done.policy_dir / "config.json").read_bytes() == (
        sample.good.policy_dir / "config.json"
    ).read_bytes()
    assert _events(sample)[-2][:3] == ("ModelPromotion", f"{MODEL_NAME}/{sample.good.version}", "0")
    with pytest.raises(PromotionRefused, match="already in production"):
        _promote(sample, sample.good.version)


@pytest.mark.parametrize("noise", ["reproducible", None])
def test_a_version_whose_reward_noise_was_not_secret_is_not_a_dp_release_and_is_refused(sample, noise):
    """Debugging noise (clinrlhf.dp_noise=reproducible) or none recorded (a run from before the noise
    was secret): its params replay the noise, so however good and approved, it is not promoted."""
    debug = record_sample_run(sample.settings, seed=2, dp_noise=noise)
    _approve(sample, debug.version)
    with pytest.raises(PromotionRefused, match=f"not a DP release: its noise is {noise or 'unrecorded'}"):
        _promote(sample, debug.version)
    assert production_version(sample.client) is None
    assert _events(sample)[-2] == ("ModelPromotion", f"{MODEL_NAME}/{debug.version}", "4", _officer(sample))
    token = mint_token(sample.settings, role="compliance", sub="officer-2")
    with pytest.raises(CLIError, match="refused: .*not a DP release"):
        promote_cli(
            argparse.Namespace(version=debug.version, criteria=None, token=token, override_reason="urgent")
        )


def test_rollback_returns_to_the_previous_version_and_is_audited(sample):
    for run in (sample.good, sample.poor):
        _approve(sample, run.version, criteria=LENIENT)
        _promote(sample, run.version, LENIENT)
    done = rollback(sample.client, sample.sessions, sample.settings, OFFICER)
    assert (done.version, done.previous) == (sample.good.version, sample.poor.version)
    assert (
        str(sample.client.get_model_version_by_alias(MODEL_NAME, PRODUCTION).version) == sample.good.version
    )
    assert production_policy(sample.settings.resolved_home).version == sample.good.version
    assert sample.client.get_registered_model(MODEL_NAME).tags[HISTORY] == f'["{sample.good.version}"]'
    assert _events(sample)[-2][:3] == ("ModelRollback", f"{MODEL_NAME}/{sample.good.version}", "0")
    with pytest.raises(PromotionRefused, match="first production version"):
        rollback(sample.client, sample.sessions, sample.settings, OFFICER)


def test_rollback_with_nothing_in_production_is_refused(sample):
    with pytest.raises(PromotionRefused, match="nothing to roll back"):
        rollback(sample.client, sample.sessions, sample.settings, OFFICER)


def test_registry_events_keep_the_audit_chain_intact(sample):
    _approve(sample, sample.good.version)
    _promote(sample, sample.good.version)
    with consistent_read(sample.sessions) as session:
        report = verify_audit(session)
    assert report.ok and report.events == 4  # approval, promotion, and the record beside each

"""Each training run exports as a FHIR R4 Provenance that validates, with AuditEvents beside it."""

from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.provenance import Provenance

from clinrlhf.compliance.approval import approve
from clinrlhf.compliance.criteria import AcceptanceCriteria
from clinrlhf.compliance.promotion import promote
from clinrlhf.compliance.provenance import provenance_bundle, registry_events
from clinrlhf.compliance.registry import versions_of_run
from clinrlhf.identity import Principal
from clinrlhf.lineage.chain import load_chain
from clinrlhf.store import consistent_read

OFFICER = Principal(sub="officer-1", role="compliance", scopes=frozenset(), issuer="test", name="Dr. Ada Lee")


def _bundle(sample):
    chain = load_chain(sample.client, sample.good.pipeline_run_id)
    versions = versions_of_run(sample.client, sample.good.pipeline_run_id)
    with consistent_read(sample.sessions) as session:
        return provenance_bundle(chain, versions, registry_events(session, versions))


def _resources(bundle, kind):
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def test_bundle_validates_and_has_a_provenance_per_training_run(sample):
    bundle = _bundle(sample)
    Bundle.model_validate(bundle)
    provenances = [Provenance.model_validate(p) for p in _resources(bundle, "Provenance")]
    assert len(provenances) == 3
    urls = {e["fullUrl"] for e in bundle["entry"]}
    for p in provenances:
        assert p.target[0].reference in urls  # the model, as a Device in the same Bundle
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} == {"Device", "Provenance"}


def test_ppo_provenance_names_datasets_parent_models_and_agents(sample):
    criteria = AcceptanceCriteria(max_subgroup_gap=0.3)
    approve(
        sample.client,
        sample.sessions,
        sample.good.version,
        OFFICER,
        sample.settings.deid_secret,
        criteria=criteria,
    )
    promote(sample.client, sample.sessions, sample.settings, sample.good.version, criteria, OFFICER)
    bundle = _bundle(sample)
    ppo = next(p for p in _resources(bundle, "Provenance") if "aligned policy" in p["activity"]["text"])
    snapshot = sample.client.get_run(sample.good.stages["reward"]).data.tags["clinrlhf.dataset_sha256"]
    entities = {
        (e["role"], e["what"].get("display") or e["what"]["identifier"]["value"]) for e in ppo["entity"]
    }
    assert ("source", snapshot) in entities
    assert ("derivation", "supervised policy") in entities and ("source", "DP reward model") in entities
    roles = [a["type"]["coding"][0]["code"] for a in ppo["agent"]]
    assert roles == ["author", "assembler", "verifier"]
    assert ppo["agent"][2]["who"]["identifier"]["value"].startswith("compliance:")
    assert ppo["agent"][2]["who"]["display"].startswith("Dr. Ada Lee: approved")  # a name people read
    assert ppo["agent"][0]["who"]["display"].startswith("unverified: ")  # no token: the OS user, marked
    device = next(d for d in _resources(bundle, "Device") if d["version"])
    assert device["version"] == [{"value": sample.good.version}]
    events = [FhirAuditEvent.model_validate(a) for a in _resources(bundle, "AuditEvent")]
    assert [e.type.code for e in events] == ["ModelApproval", "ModelPromotion"]


def test_reward_provenance_reads_the_snapshot_dataset_by_full_sha256(sample):
    bundle = _bundle(sample)
    reward = next(p for p in _resources(bundle, "Provenance") if "reward" in p["activity"]["text"])
    sha = sample.client.get_run(sample.good.stages["reward"]).data.tags["clinrlhf.dataset_sha256"]
    datasets = [e for e in reward["entity"] if "identifier" in e["what"]]
    assert datasets[0]["what"]["identifier"] == {"system": "urn:clinrlhf:dataset-sha256", "value": sha}
    assert "feedback-snapshot" in datasets[0]["what"]["display"]
    assert reward["policy"][0].startswith("urn:clinrlhf:deid-config-sha256:")

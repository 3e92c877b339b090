"""`clinrlhf provenance RUN_ID` writes a FHIR R4 Bundle that validates, for a pipeline or one run."""

import json

import pytest
import torch
from fhir.resources.R4B.bundle import Bundle

from clinrlhf.cli import main
from clinrlhf.pipeline.sample_run import record_sample_run
from clinrlhf.settings import Settings

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    home = tmp_path_factory.mktemp("provenance")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        return home, record_sample_run(Settings(home=home))


@pytest.fixture(autouse=True)
def env(sample, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("CLINRLHF_HOME", str(sample[0]))


def _resource_types(bundle):
    return [e["resource"]["resourceType"] for e in bundle["entry"]]


def test_pipeline_run_exports_every_training_run(sample, tmp_path, capsys):
    out = tmp_path / "provenance.json"
    assert main(["provenance", sample[1].pipeline_run_id, "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    bundle = json.loads(out.read_text())
    Bundle.model_validate(bundle)
    assert _resource_types(bundle).count("Provenance") == 3


def test_one_training_run_exports_alone_to_stdout(sample, capsys):
    assert main(["provenance", sample[1].stages["reward"]]) == 0
    bundle = json.loads(capsys.readouterr().out)
    Bundle.model_validate(bundle)
    assert _resource_types(bundle) == ["Device", "Provenance"]


def test_the_eval_run_is_not_a_training_run(sample, capsys):
    assert main(["provenance", sample[1].stages["eval"]]) == 2
    assert "is the eval run" in capsys.readouterr().err


def test_unknown_run(capsys):
    assert main(["provenance", "0" * 32]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_the_export_uses_the_ai_transparency_profiles(sample, capsys):
    """Every model is an AI-Device (HL7 AI Transparency on FHIR); the aligned policy's Device points
    to its model card, an AI-ModelCard DocumentReference in the same Bundle that carries the card the
    compliance report prints."""
    from fhir.resources.R4B.device import Device
    from fhir.resources.R4B.documentreference import DocumentReference

    from clinrlhf.compliance.ai_transparency import AI_DEVICE, AI_MODEL_CARD, MODEL_CARD_EXTENSION

    assert main(["provenance", sample[1].pipeline_run_id]) == 0
    bundle = json.loads(capsys.readouterr().out)
    Bundle.model_validate(bundle)
    entries = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    devices = [Device.model_validate(r) and r for r in entries.values() if r["resourceType"] == "Device"]
    assert len(devices) == 3 and all(d["meta"]["profile"] == [AI_DEVICE] for d in devices)
    assert all(d["type"]["coding"][0]["code"] == "Artificial-Intelligence" for d in devices)
    (policy,) = [d for d in devices if d["version"]]
    (card_url,) = [
        e["valueReference"]["reference"] for e in policy["extension"] if e["url"] == MODEL_CARD_EXTENSION
    ]
    document = entries[card_url]
    DocumentReference.model_validate(document)
    assert document["meta"]["profile"] == [AI_MODEL_CARD]
    assert document["description"].startswith(f"# Model card: clinrlhf-policy v{sample[1].version}")
    assert "## Intended use" in document["description"]

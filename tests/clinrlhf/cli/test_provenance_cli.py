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

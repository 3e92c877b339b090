"""The environment is logged as frozen requirements, so a model can be rebuilt on the same stack."""

from importlib import metadata
from pathlib import Path

from clinrlhf.lineage.environment import REQUIREMENTS, SHA256_TAG, frozen_requirements, requirements_text


def test_frozen_requirements_pin_every_installed_distribution_once():
    pins = frozen_requirements()
    assert f"mlflow=={metadata.version('mlflow')}" in pins
    assert f"torch=={metadata.version('torch')}" in pins
    names = [p.split("==")[0].lower().replace("_", "-") for p in pins]
    assert len(names) == len(set(names))


def test_pipeline_run_carries_the_requirements_and_their_hash(sample):
    import hashlib

    run = sample.client.get_run(sample.good.pipeline_run_id)
    local = sample.client.download_artifacts(
        run.info.run_id, REQUIREMENTS, str(sample.settings.resolved_home)
    )
    text = Path(local).read_text()
    assert run.data.tags[SHA256_TAG] == hashlib.sha256(text.encode()).hexdigest()
    assert text == requirements_text()

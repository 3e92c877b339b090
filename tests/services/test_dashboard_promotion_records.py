"""A promotion from the compliance dashboard goes through the one promotion code path, so it writes
the same change record and CHAI Applied Model Card as `clinrlhf promote`, and the report page shows
them. Real HTTP on localhost, real MLflow store."""

from __future__ import annotations

import httpx
import pytest
from mlflow.tracking import MlflowClient

from clinrlhf.compliance.promotion_records import RECORD_RUN_TAG, read_records
from clinrlhf.compliance.registry import MODEL_NAME
from clinrlhf.identity import mint_token
from clinrlhf.pipeline.sample_run import record_sample_run
from clinrlhf.settings import Settings

# The sample run may miss the default subgroup-gap criterion; the reason keeps the test about records.
REASON = {"override_reason": "test: miniature sample run"}


@pytest.fixture(scope="module")
def site(tmp_path_factory, policy_dir, live_server):
    with pytest.MonkeyPatch.context() as mp:
        home = tmp_path_factory.mktemp("dashboard-records")
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
        settings = Settings(home=home, policy=policy_dir)
        sample = record_sample_run(settings)
        token = mint_token(settings, role="compliance", sub="officer-9", name="Dr. B. Okafor")
        with live_server(settings) as server, httpx.Client(base_url=server.url, timeout=120) as client:
            client.headers["Authorization"] = f"Bearer {token}"
            yield client, sample, settings


def test_promoting_from_the_dashboard_writes_the_change_record_and_chai_card(site) -> None:
    client, sample, settings = site
    for action in ("approve", "promote"):
        response = client.post(f"/compliance/versions/{sample.version}/{action}", json=REASON)
        assert response.status_code == 200, response.text
    mlflow = MlflowClient(settings.mlflow_tracking_uri)
    mv = mlflow.get_model_version(MODEL_NAME, str(sample.version))
    stored = read_records(mlflow, mv)
    assert stored is not None and stored.records is not None and stored.run_id == mv.tags[RECORD_RUN_TAG]
    assert stored.records.change_record["previous_version"] == "none"
    assert stored.records.change_record["promoted"]["name"] == "Dr. B. Okafor"
    assert stored.records.chai_card["ReleaseInfo"]["ReleaseVersion"].startswith(
        f"{MODEL_NAME} v{sample.version}"
    )
    page = client.get(f"/compliance/report/{sample.pipeline_run_id}").text
    assert "Change records (FDA PCCP)" in page and "replaces no version (first promotion)" in page
    assert "<h3>KeyMetrics</h3>" in page

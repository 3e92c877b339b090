"""The compliance pages: read-only HTML for the compliance role, OperationOutcomes for anyone else."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import pytest

from clinrlhf.identity import mint_token
from clinrlhf.pipeline.sample_run import record_sample_run
from clinrlhf.settings import Settings


@pytest.fixture(scope="module")
def site(tmp_path_factory, policy_dir, live_server):
    """A server whose MLflow store holds one (miniature) pipeline run, with its registered version."""
    with pytest.MonkeyPatch.context() as mp:
        home = tmp_path_factory.mktemp("compliance")
        # The store under this home, for server and test; set through monkeypatch (configure_mlflow
        # sets the variable too) so that it is gone again for the modules that run after this one.
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
        settings = Settings(home=home, policy=policy_dir)
        sample = record_sample_run(settings)
        tokens = {
            role: mint_token(settings, role=role, sub=f"t-{role}")
            for role in ("clinician", "cds-client", "ml-engineer", "compliance")
        }
        with live_server(settings) as server, httpx.Client(base_url=server.url, timeout=120) as client:
            yield client, sample, tokens


def _get(site, path, role=None):
    client, _, tokens = site
    headers = {"Authorization": f"Bearer {tokens[role]}"} if role else {}
    return client.get(path, headers=headers)


def test_compliance_officer_reads_the_report(site):
    _, sample, _ = site
    response = _get(site, f"/compliance/report/{sample.pipeline_run_id}", "compliance")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    ids: set[str] = set()

    class Sections(HTMLParser):
        def handle_starttag(self, tag, attrs):
            ids.update(v for k, v in attrs if k == "id" and v)

    Sections().feed(response.text)
    assert {
        "summary",
        "acceptance",
        "approvals",
        "model-card",
        "hti1",
        "privacy",
        "subgroups",
        "lineage",
    } <= ids
    assert response.headers["cache-control"] == "no-store"


def test_report_page_allows_its_own_style_and_images_and_no_script(site):
    _, sample, _ = site
    policy = _get(site, f"/compliance/report/{sample.pipeline_run_id}", "compliance").headers[
        "content-security-policy"
    ]
    assert re.search(r"style-src 'sha256-[A-Za-z0-9+/=]+'", policy)
    assert "img-src data:" in policy and "script-src" not in policy and "default-src 'none'" in policy


def test_a_stage_run_id_opens_its_pipeline_report(site):
    _, sample, _ = site
    response = _get(site, f"/compliance/report/{sample.stages['ppo']}", "compliance")
    assert response.status_code == 200 and sample.pipeline_run_id in response.text


def test_index_lists_registered_versions_with_their_reports(site):
    _, sample, _ = site
    response = _get(site, "/compliance", "compliance")
    assert response.status_code == 200
    assert (
        f"v{sample.version}" in response.text
        and f"/compliance/report/{sample.pipeline_run_id}" in response.text
    )


@pytest.mark.parametrize("role", ["clinician", "cds-client", "ml-engineer"])
def test_other_roles_are_forbidden(site, role):
    _, sample, _ = site
    for path in ("/compliance", f"/compliance/report/{sample.pipeline_run_id}"):
        response = _get(site, path, role)
        assert response.status_code == 403
        assert response.headers["content-type"].startswith("application/fhir+json")
        assert response.json()["resourceType"] == "OperationOutcome"


def test_no_token_is_unauthorised(site):
    _, sample, _ = site
    response = _get(site, f"/compliance/report/{sample.pipeline_run_id}")
    assert response.status_code == 401 and response.json()["issue"][0]["code"] == "login"


def test_unknown_and_malformed_run_ids(site):
    assert _get(site, f"/compliance/report/{'0' * 32}", "compliance").status_code == 404
    malformed = _get(site, "/compliance/report/not-a-run", "compliance")
    assert malformed.status_code == 422 and malformed.json()["resourceType"] == "OperationOutcome"

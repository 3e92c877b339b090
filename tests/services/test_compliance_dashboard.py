"""The compliance officer's dashboard, /compliance, in a real browser (headless Chromium) against a
live server whose MLflow store holds two miniature pipeline runs: v1 passes the default acceptance
criteria, v2 does not (concordance 0.30).

The officer logs in on the review page's form and lands on the dashboard; approve and promote run
the library's rules (the CLI's), so the tests check the registry and the audit trail they leave.
"""

from __future__ import annotations

import re

import pytest
from mlflow.tracking import MlflowClient
from playwright.sync_api import expect

from clinrlhf.compliance.approval import APPROVAL
from clinrlhf.compliance.governance import RECORD
from clinrlhf.compliance.promotion import PROMOTION
from clinrlhf.compliance.registry import get_version, production_version
from clinrlhf.identity import mint_token
from clinrlhf.pipeline.sample_run import record_sample_run
from clinrlhf.settings import Settings
from clinrlhf.store import consistent_read, deployment_store
from clinrlhf.store.models import AuditEvent
from clinrlhf.store.quarantine import quarantined

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def world_site(tmp_path_factory, policy_dir, live_server):
    with pytest.MonkeyPatch.context() as mp:
        home = tmp_path_factory.mktemp("dashboard")
        # The store under this home, for server and test; set through monkeypatch (configure_mlflow
        # sets the variable too) so that it is gone again for the modules that run after this one.
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
        settings = Settings(home=home, policy=policy_dir)
        passing = record_sample_run(settings)
        failing = record_sample_run(settings, concordance=0.30, seed=1)
        with live_server(settings) as server:
            yield server.url, settings, passing, failing


@pytest.fixture(scope="module")
def site(world_site) -> str:
    return world_site[0]


@pytest.fixture(scope="module")
def settings(world_site) -> Settings:
    return world_site[1]


def registry(settings: Settings) -> MlflowClient:
    uri = settings.mlflow_tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def log_in(page, settings: Settings, role: str, landing: str, name: str | None = None) -> None:
    page.goto("/review/login")
    page.fill("#token", mint_token(settings, role=role, sub=f"dash-{role}", name=name))
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(landing + "$"))
    # the URL changes when the page commits; its deferred scripts bind the keys by DOMContentLoaded
    page.wait_for_load_state("domcontentloaded")


def csrf(page) -> str:
    return page.locator('meta[name="csrf-token"]').get_attribute("content")


def test_an_officer_logs_in_onto_the_dashboard_and_sees_runs_ledger_versions_and_audit(
    page, settings, world_site
) -> None:
    _, _, passing, failing = world_site
    page.goto("/compliance")  # not logged in: a browser is sent to the login form, not a 401
    expect(page).to_have_url(re.compile(r"/review/login$"))
    page.fill("#token", mint_token(settings, role="compliance", sub="dash-compliance"))
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/compliance$"))
    expect(page.get_by_test_id("audit")).to_contain_text(re.compile(r"verified at .*, \d+ events"))
    runs = page.get_by_test_id("runs")
    expect(runs.locator("tbody tr")).to_have_count(2)
    expect(runs).to_contain_text(passing.pipeline_run_id[:12])
    expect(runs.locator(f'a[href$="/compliance/report/{failing.pipeline_run_id}"]')).to_have_count(1)
    measured = registry(settings).get_run(passing.stages["eval"]).data.metrics["eval.concordance"]
    expect(runs).to_contain_text(f"{measured:.3f}")  # the passing run's concordance, as MLflow holds it
    expect(runs).to_contain_text("3.000")  # the privacy its reward model spent
    expect(page.get_by_test_id("ledger").locator("tbody tr")).to_have_count(4)  # one odometer per unit
    expect(page.get_by_test_id(f"version-{passing.version}")).to_contain_text("Not approved")
    expect(page.get_by_test_id(f"version-{failing.version}")).to_contain_text("criteria not met")
    # The agreement view is one click away, and links back.
    page.get_by_role("link", name="Clinician agreement").first.click()
    expect(page).to_have_url(re.compile(r"/review/admin/agreement$"))
    page.get_by_role("link", name="Compliance dashboard").click()
    expect(page).to_have_url(re.compile(r"/compliance$"))
    assert not page.errors, page.errors  # no script error, no CSP violation, no failed request


def test_the_dashboard_keeps_a_strict_content_security_policy(page, settings) -> None:
    log_in(page, settings, "compliance", "/compliance")
    response = page.request.get("/compliance")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "default-src 'none'" in policy
    assert response.headers["cache-control"] == "no-store"


def test_an_officer_approves_and_promotes_a_passing_version_from_the_page(page, settings, world_site) -> None:
    _, _, passing, _ = world_site
    log_in(page, settings, "compliance", "/compliance", name="Ada Officer")
    card = page.get_by_test_id(f"version-{passing.version}")
    card.get_by_role("button", name=f"Approve v{passing.version}").click()
    expect(page.get_by_test_id("status")).to_contain_text(f"version {passing.version} approved")
    expect(card).to_contain_text("Approved by Ada Officer")  # the token's name, kept by the session
    card.get_by_role("button", name=f"Promote v{passing.version}").click()
    expect(page.get_by_test_id("status")).to_contain_text(f"version {passing.version} is in production")
    expect(card.get_by_test_id("production")).to_be_visible()
    client = registry(settings)
    live = production_version(client)
    assert live is not None and str(live.version) == passing.version
    with consistent_read(deployment_store(settings)) as session:
        kinds = {e.entity_type for e in session.query(AuditEvent).filter(AuditEvent.action == "E")}
    assert {APPROVAL, PROMOTION, RECORD} <= kinds, kinds
    assert not page.errors, page.errors


def test_an_action_without_the_csrf_token_is_refused(page, settings, world_site) -> None:
    _, _, _, failing = world_site
    log_in(page, settings, "compliance", "/compliance")
    url = f"/compliance/versions/{failing.version}/approve"
    refused = page.request.post(url, data={"override_reason": "tested"})  # the session cookie, no token
    assert refused.status == 403 and "CSRF" in refused.text()
    forged = page.request.post(url, data={"override_reason": "tested"}, headers={"X-CSRF-Token": "forged"})
    assert forged.status == 403
    assert "clinrlhf.approval.audit_event_id" not in get_version(registry(settings), failing.version).tags


def test_a_failing_version_needs_a_written_override_reason(page, settings, world_site) -> None:
    _, _, _, failing = world_site
    log_in(page, settings, "compliance", "/compliance")
    url = f"/compliance/versions/{failing.version}/approve"
    bare = page.request.post(url, data={}, headers={"X-CSRF-Token": csrf(page)})
    assert bare.status == 409 and "acceptance criteria not met: concordance" in bare.text()
    card = page.get_by_test_id(f"version-{failing.version}")
    reason = card.get_by_label(re.compile("Override reason"))
    expect(reason).to_have_attribute("required", "")
    reason.fill("Pilot on the renal ward only; concordance re-checked by hand.")
    card.get_by_role("button", name=f"Approve v{failing.version}").click()
    expect(page.get_by_test_id("status")).to_contain_text("overriding the failed criteria")
    expect(card).to_contain_text("Pilot on the renal ward only")
    tags = get_version(registry(settings), failing.version).tags
    assert tags["clinrlhf.approval.override_reason"].startswith("Pilot on the renal ward")


def test_a_failing_version_is_promoted_with_a_reason_and_rolled_back(page, settings, world_site) -> None:
    """After the tests above: v1 is in production, v2 approved with an override."""
    _, _, passing, failing = world_site
    log_in(page, settings, "compliance", "/compliance")
    card = page.get_by_test_id(f"version-{failing.version}")
    card.get_by_label(re.compile("Override reason")).fill("Renal ward pilot, approved by the board.")
    card.get_by_role("button", name=f"Promote v{failing.version}").click()
    expect(card.get_by_test_id("production")).to_be_visible()
    page.get_by_role("button", name="Roll back production").click()
    expect(page.get_by_test_id("status")).to_contain_text(f"version {passing.version} is in production again")
    live = production_version(registry(settings))
    assert live is not None and str(live.version) == passing.version
    assert not page.errors, page.errors


def test_an_officer_quarantines_and_releases_a_clinician_from_the_page(page, settings) -> None:
    log_in(page, settings, "compliance", "/compliance")
    page.fill("#q-clinician", "c-7f3a")
    page.fill("#q-reason", "Ratings contradict the guideline on every case.")
    page.get_by_role("button", name="Quarantine").click()
    row = page.get_by_test_id("quarantine").locator("tbody tr", has_text="c-7f3a")
    expect(row).to_contain_text("Ratings contradict the guideline")
    with consistent_read(deployment_store(settings)) as session:
        assert "c-7f3a" in quarantined(session)
    row.get_by_label("Reason to release").fill("Reviewed with the clinician; retrained.")
    row.get_by_role("button", name="Release").click()
    expect(page.get_by_test_id("status")).to_contain_text("c-7f3a released")
    expect(page.get_by_test_id("quarantine")).to_contain_text("Nobody is quarantined")
    assert not page.errors, page.errors


def test_a_clinician_session_gets_an_error_page_not_json(page, settings) -> None:
    log_in(page, settings, "clinician", "/review")
    response = page.goto("/compliance")
    assert response is not None and response.status == 403
    assert response.headers["content-type"].startswith("text/html")
    expect(page.get_by_test_id("error")).to_contain_text("compliance officers")
    page.errors.clear()  # the 403 itself is expected


def test_the_dashboard_fits_a_phone(page, settings) -> None:
    page.set_viewport_size({"width": 360, "height": 780})
    log_in(page, settings, "compliance", "/compliance")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the page scrolls sideways: {width}px wide"

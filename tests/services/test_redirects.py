"""Redirects and the URLs the service gives out never echo the request's Host header: they are
paths on this host, or URLs under `CLINRLHF_PUBLIC_BASE_URL`."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from clinrlhf.identity import mint_token
from clinrlhf.settings import Settings
from services.api.app import create_app

POISON = "attacker.example"


@pytest.mark.parametrize(
    ("public", "login"),
    [(None, "/review/login"), ("https://cds.hospital.example", "https://cds.hospital.example/review/login")],
    ids=["no public base URL", "public base URL"],
)
def test_redirects_and_links_ignore_a_forged_host(
    tmp_path: Path, policy_dir: Path, public: str | None, login: str
) -> None:
    settings = Settings(home=tmp_path, policy=policy_dir, public_base_url=public)
    compliance = mint_token(settings, "compliance", "auditor-1")
    with TestClient(create_app(settings), base_url=f"http://{POISON}") as client:
        to_login = client.get("/review", headers={"Accept": "text/html"}, follow_redirects=False)
        assert to_login.status_code == 303 and to_login.headers["location"] == login
        admin = client.get("/review/admin/agreement", headers={"Accept": "text/html"}, follow_redirects=False)
        assert admin.status_code == 303 and admin.headers["location"] == login
        client.get("/review/login")
        nonce = client.cookies["clinrlhf_login"]
        landing = client.post("/review/session", json={"token": compliance}, headers={"X-CSRF-Token": nonce})
        assert landing.status_code == 200, landing.text
        assert POISON not in landing.json()["next"]
        metadata = client.get("/fhir/metadata", headers={"Authorization": f"Bearer {compliance}"})
        assert metadata.status_code == 200 and POISON not in metadata.text

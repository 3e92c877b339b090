"""A review-page session ends when its clinician logs out, for whoever kept a copy of the cookie
(the server remembers the revocation), and a cookie sealed in one environment is worthless in
another (a development session does not survive a switch to production with the same key)."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr

from clinrlhf.identity import mint_token
from clinrlhf.settings import Settings
from services.api.app import create_app
from services.web.session import SESSION_COOKIE

KEY = SecretStr("5e" * 32)


def logged_in(client: TestClient, token: str) -> tuple[str, str]:
    """Log in as the form does; the session cookie and the page's CSRF token."""
    client.get("/review/login")
    nonce = client.cookies["clinrlhf_login"]
    response = client.post("/review/session", json={"token": token}, headers={"X-CSRF-Token": nonce})
    assert response.status_code == 200, response.text
    page = client.get("/review")
    assert page.status_code == 200
    match = re.search(r'<meta name="csrf-token" content="([^"]*)"', page.text)
    assert match
    return client.cookies[SESSION_COOKIE], match.group(1)


def test_a_cookie_kept_past_logout_opens_nothing(tmp_path: Path, policy_dir: Path) -> None:
    settings = Settings(home=tmp_path, policy=policy_dir)
    with TestClient(create_app(settings)) as client:
        cookie, csrf = logged_in(client, mint_token(settings, "clinician", "dr-out"))
        assert client.post("/review/logout", json={}, headers={"X-CSRF-Token": csrf}).status_code == 204
    with TestClient(create_app(settings)) as thief:  # another process, the same database
        thief.cookies.set(SESSION_COOKIE, cookie, path="/review")
        assert thief.get("/review").status_code == 401


def test_a_development_session_is_not_valid_in_production(tmp_path: Path, policy_dir: Path) -> None:
    development = Settings(home=tmp_path, policy=policy_dir, deid_key=KEY, audit_key=KEY)
    with TestClient(create_app(development)) as client:
        cookie, _ = logged_in(client, mint_token(development, "clinician", "dr-dev"))
    production = development.model_copy(update={"env": "production"})
    with TestClient(create_app(production)) as client:
        client.cookies.set(SESSION_COOKIE, cookie, path="/review")
        assert client.get("/review").status_code == 401

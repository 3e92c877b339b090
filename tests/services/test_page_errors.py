"""A malformed address opened in a browser is an error page, never raw OperationOutcome JSON; tools
(a bearer token, or JSON asked for) keep the API's OperationOutcome."""

from __future__ import annotations

from pathlib import Path

import httpx

from clinrlhf.identity import mint_token
from clinrlhf.settings import Settings

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_a_malformed_report_address_is_a_page_in_a_browser_and_json_for_tools(
    live_server, tmp_path: Path, policy_dir: Path
) -> None:
    settings = Settings(home=tmp_path / "home", policy=policy_dir, database_url=None)
    officer = {"Authorization": f"Bearer {mint_token(settings, role='compliance', sub='officer-1')}"}
    with live_server(settings) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        http.get("/review/login")  # a browser logs in on the form, and holds the session cookie
        nonce = http.cookies["clinrlhf_login"]
        login = http.post(
            "/review/session", json={"token": officer["Authorization"][7:]}, headers={"X-CSRF-Token": nonce}
        )
        assert login.status_code == 200, login.text
        page = http.get("/compliance/report/not-a-run-id", headers=BROWSER)
        tool = httpx.get(f"{server.url}/compliance/report/not-a-run-id", headers=officer, timeout=30)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "resourceType" not in page.text and "nothing at this address" in page.text
    assert tool.status_code == 422 and tool.json()["resourceType"] == "OperationOutcome"

"""Behind a TLS-terminating proxy: forwarded headers are believed from configured proxies only
(`CLINRLHF_TRUSTED_PROXIES`); then the review page's cookies are `Secure` and every response
carries HSTS. From anyone else, `X-Forwarded-Proto: https` changes nothing.

The app is called over ASGI from 127.0.0.1, as `clinrlhf serve` runs it: uvicorn's own proxy
handling off (the test server in conftest.py leaves uvicorn's default on, which trusts localhost)."""

from __future__ import annotations

import anyio
import httpx
import pytest

from clinrlhf.settings import Settings
from services.api.app import create_app

FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}


def login_page(settings: Settings) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(settings), client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://clinrlhf.test") as client:
            return await client.get("/review/login", headers=FORWARDED)

    return anyio.run(call)


def test_behind_a_configured_proxy_cookies_are_secure_and_hsts_is_sent(api_settings: Settings) -> None:
    response = login_page(api_settings.model_copy(update={"trusted_proxies": "127.0.0.1"}))
    assert response.status_code == 200
    cookie = response.headers["set-cookie"].lower()
    assert "; secure" in cookie
    assert "max-age=" in response.headers["strict-transport-security"]


@pytest.mark.parametrize("trusted", [None, "10.0.0.1"], ids=["no proxy configured", "another proxy"])
def test_forwarded_headers_from_anyone_else_are_ignored(api_settings: Settings, trusted: str | None) -> None:
    response = login_page(api_settings.model_copy(update={"trusted_proxies": trusted}))
    assert response.status_code == 200
    assert "; secure" not in response.headers["set-cookie"].lower()
    assert "strict-transport-security" not in response.headers

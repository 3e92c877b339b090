"""Which `aud` a bearer token must carry: `CLINRLHF_TOKEN_AUDIENCE`, or the endpoint's URL under the
configured `CLINRLHF_PUBLIC_BASE_URL` (CDS Hooks clients name the endpoint they call). Never a URL
built from the request's Host header, which whoever sends the request chooses."""

from __future__ import annotations

import httpx

from clinrlhf.identity import mint_token
from clinrlhf.settings import Settings


def token_for(settings: Settings, audience: str) -> str:
    return mint_token(settings.model_copy(update={"token_audience": audience}), "cds-client", "ehr-1")


def test_a_token_for_another_deployment_is_refused_whatever_host_the_request_names(
    server, api_settings: Settings
) -> None:
    """The attack: a token minted for other.example's clinrlhf, sent with `Host: other.example`."""
    token = token_for(api_settings, "http://other.example/cds-services")
    response = httpx.get(
        f"{server.url}/cds-services",
        headers={"Authorization": f"Bearer {token}", "Host": "other.example"},
    )
    assert response.status_code == 401
    assert response.json()["resourceType"] == "OperationOutcome"


def test_the_endpoint_url_under_the_configured_public_base_url_is_accepted(
    live_server, api_settings: Settings
) -> None:
    settings = api_settings.model_copy(update={"public_base_url": "https://cds.hospital.example/"})
    token = token_for(api_settings, "https://cds.hospital.example/cds-services")
    wrong_path = token_for(api_settings, "https://cds.hospital.example/fhir/metadata")
    with live_server(settings) as live:
        ok = httpx.get(f"{live.url}/cds-services", headers={"Authorization": f"Bearer {token}"})
        elsewhere = httpx.get(f"{live.url}/cds-services", headers={"Authorization": f"Bearer {wrong_path}"})
    assert ok.status_code == 200, ok.text
    assert elsewhere.status_code == 401

"""Fetch prefetch data the CDS client left out, from its FHIR server (CDS Hooks 2.0, "FHIR Resource
Access"): each missing template is filled in, with the access token the client sent, and the answers
go through the same de-identification as a prefetch does. Nothing fetched is stored or logged.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from services.cds.discovery import PREFETCH
from services.cds.prefetch import PrefetchError
from services.cds.schemas import CDSRequest

TIMEOUT_SECONDS = 10.0
MAX_PAGES = 20  # a patient's active problems, allergies and four labs fit in far fewer


def missing_keys(prefetch: dict[str, Any] | None) -> list[str]:
    return [k for k in PREFETCH if not prefetch or prefetch.get(k) is None]


def _query(template: str, patient_id: str) -> str:
    # The patient id is the client's own value: percent-encode it so it cannot change the path.
    return template.replace("{{context.patientId}}", quote(patient_id, safe=""))


def _get(client: httpx.Client, url: str, key: str) -> dict[str, Any]:
    try:
        response = client.get(url)
    except httpx.HTTPError:
        raise PrefetchError(412, f"the FHIR server could not be reached for {key}") from None
    if response.status_code != 200:
        raise PrefetchError(412, f"the FHIR server answered {response.status_code} for {key}")
    try:
        data = response.json()
    except ValueError:
        raise PrefetchError(412, f"the FHIR server sent no JSON for {key}") from None
    if not isinstance(data, dict):
        raise PrefetchError(412, f"the FHIR server sent no resource for {key}")
    return data


def _search(client: httpx.Client, base: str, url: str, key: str) -> dict[str, Any]:
    """All pages of a searchset, following `next` links on the same server only."""
    bundle = _get(client, url, key)
    first = bundle.get("entry") or []
    entries = list(first) if isinstance(first, list) else []
    for _ in range(MAX_PAGES - 1):
        raw = bundle.get("link")
        links = raw if isinstance(raw, list) else []
        nxt = next(
            (lk.get("url") for lk in links if isinstance(lk, dict) and lk.get("relation") == "next"), None
        )
        if not isinstance(nxt, str) or not nxt.startswith(base):
            break
        bundle = _get(client, nxt, key)
        page = bundle.get("entry") or []
        entries += page if isinstance(page, list) else []
    return {"resourceType": "Bundle", "type": "searchset", "entry": entries}


def fill_prefetch(request: CDSRequest) -> dict[str, Any] | None:
    """The request's prefetch with every missing key fetched from `fhirServer`, when it names one."""
    prefetch = dict(request.prefetch or {})
    missing = missing_keys(prefetch)
    if not missing or not request.fhirServer:
        return prefetch or None
    base = request.fhirServer.rstrip("/") + "/"
    if urlsplit(base).scheme not in ("https", "http"):
        raise PrefetchError(412, "fhirServer must be an http(s) URL")
    headers = {"Accept": "application/fhir+json"}
    if request.fhirAuthorization is not None:
        headers["Authorization"] = f"Bearer {request.fhirAuthorization.access_token}"
    with httpx.Client(headers=headers, timeout=TIMEOUT_SECONDS, follow_redirects=False) as client:
        for key in missing:
            url = base + _query(PREFETCH[key], request.context.patientId)
            prefetch[key] = _get(client, url, key) if key == "patient" else _search(client, base, url, key)
    return prefetch

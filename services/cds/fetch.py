"""Fetch prefetch data the CDS client left out, from its FHIR server (CDS Hooks 3.0, "FHIR Resource
Access"): each missing template is filled in, with the access token the client sent (when its
scopes cover what is missing: services.cds.authorization), and the answers go through the same
de-identification as a prefetch does. Nothing fetched is stored or logged.

The service only ever calls out to FHIR servers configured for the calling client
(`CLINRLHF_FHIR_SERVERS`): a `fhirServer` naming any other host is refused before a connection is
made, so the service can neither be aimed at internal hosts nor made to hand the EHR's access token
to one. Every failure of a configured server gives the same answer, so a caller learns nothing about
what the server did. A request's fetches share one overall deadline (a server trickling bytes cannot
hold a thread for longer), and each process runs at most `CLINRLHF_FHIR_FETCHES_IN_FLIGHT` fetches
at once; past that the request is refused with 503 at once instead of queueing for a thread.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from clinrlhf.settings import Settings
from services.cds.authorization import refusal, ungranted
from services.cds.discovery import PREFETCH
from services.cds.prefetch import PrefetchError
from services.cds.schemas import CDSRequest

MAX_PAGES = 20  # a patient's active problems, allergies and four labs fit in far fewer
MAX_RESPONSE_BYTES = 8_000_000  # per page: far above a real patient's, far below a memory problem
NOT_ALLOWED = "fhirServer is not a FHIR server configured for this CDS client"
UNAVAILABLE = "the FHIR server did not provide the missing prefetch"
BUSY = "too many FHIR fetches in flight; retry shortly"


class _Failed(Exception):
    """Any failure of the FHIR server; reported to the caller only as UNAVAILABLE."""


def normalize_base(url: str) -> str | None:
    """`scheme://host[:port]/path` without a trailing slash, scheme and host lower-cased; None if
    `url` is not a plain http(s) URL (user info, query and fragment are refused, not dropped)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        return None
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    netloc = host if port is None else f"{host}:{port}"
    return f"{parts.scheme.lower()}://{netloc}{parts.path.rstrip('/')}"


def parse_fhir_servers(raw: str | None) -> dict[str, frozenset[str]]:
    """`CLINRLHF_FHIR_SERVERS` as {client id: normalized base URLs}; ValueError if malformed."""
    if not raw:
        return {}
    data = json.loads(raw)
    if not isinstance(data, Mapping):
        raise ValueError("CLINRLHF_FHIR_SERVERS must be a JSON object {client_id: [base URLs]}")
    out: dict[str, frozenset[str]] = {}
    for client, urls in data.items():
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise ValueError("CLINRLHF_FHIR_SERVERS: each client maps to a list of base URLs")
        bases = [normalize_base(u) for u in urls]
        if any(b is None for b in bases):
            raise ValueError("CLINRLHF_FHIR_SERVERS: every base URL must be a plain http(s) URL")
        out[str(client)] = frozenset(b for b in bases if b is not None)
    return out


def missing_keys(prefetch: dict[str, Any] | None) -> list[str]:
    return [k for k in PREFETCH if not prefetch or prefetch.get(k) is None]


def _query(template: str, patient_id: str) -> str:
    # The patient id is the client's own value: percent-encode it so it cannot change the path.
    return template.replace("{{context.patientId}}", quote(patient_id, safe=""))


class FHIRFetcher:
    """Fills in missing prefetch from allow-listed FHIR servers, within a deadline and a bound on
    fetches in flight. Thread-safe: one per process, shared by every request."""

    def __init__(self, settings: Settings) -> None:
        self.allowed = parse_fhir_servers(settings.fhir_servers)
        self.deadline_seconds = settings.fhir_fetch_deadline_seconds
        self._slots = threading.BoundedSemaphore(settings.fhir_fetches_in_flight)

    def fill(self, request: CDSRequest, client_id: str) -> dict[str, Any] | None:
        """The request's prefetch with every missing key fetched from `fhirServer`, when it names
        one configured for `client_id`. Raises PrefetchError: 412 (not allowed, scopes that do not
        cover the missing keys, or the server failed), 503 (too many fetches in flight)."""
        prefetch = dict(request.prefetch or {})
        missing = missing_keys(prefetch)
        if not missing or not request.fhirServer:
            return prefetch or None
        base = normalize_base(request.fhirServer)
        if base is None or base not in self.allowed.get(client_id, frozenset()):
            raise PrefetchError(412, NOT_ALLOWED)
        if request.fhirAuthorization is not None:
            lacking = ungranted(request.fhirAuthorization, request.context.patientId, missing)
            if lacking:
                raise PrefetchError(412, refusal(lacking))
        if not self._slots.acquire(blocking=False):
            raise PrefetchError(503, BUSY)
        try:
            prefetch.update(self._fetch_all(request, base + "/", missing))
        except _Failed:
            raise PrefetchError(412, UNAVAILABLE) from None
        finally:
            self._slots.release()
        return prefetch

    def _fetch_all(self, request: CDSRequest, base: str, missing: list[str]) -> dict[str, Any]:
        headers = {"Accept": "application/fhir+json"}
        if request.fhirAuthorization is not None:
            headers["Authorization"] = f"Bearer {request.fhirAuthorization.access_token}"
        deadline = time.monotonic() + self.deadline_seconds
        out: dict[str, Any] = {}
        with httpx.Client(headers=headers, follow_redirects=False, trust_env=False) as client:
            for key in missing:
                url = base + _query(PREFETCH[key], request.context.patientId)
                out[key] = (
                    _get(client, url, deadline) if key == "patient" else _search(client, base, url, deadline)
                )
        return out


def _get(client: httpx.Client, url: str, deadline: float) -> dict[str, Any]:
    """One resource, read as a stream so that the deadline holds however slowly bytes arrive: the
    deadline is checked after every chunk, and no single read may wait longer than what was left of
    it when the page was requested (so a page ends within twice the deadline at worst)."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _Failed
    chunks, size = [], 0
    try:
        with client.stream("GET", url, timeout=httpx.Timeout(remaining)) as response:
            if response.status_code != 200:
                raise _Failed
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES or time.monotonic() > deadline:
                    raise _Failed
                chunks.append(chunk)
    except httpx.HTTPError:
        raise _Failed from None
    try:
        data = json.loads(b"".join(chunks))
    except ValueError:
        raise _Failed from None
    if not isinstance(data, dict):
        raise _Failed
    return data


def _search(client: httpx.Client, base: str, url: str, deadline: float) -> dict[str, Any]:
    """All pages of a searchset, following `next` links on the same server only."""
    bundle = _get(client, url, deadline)
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
        bundle = _get(client, nxt, deadline)
        page = bundle.get("entry") or []
        entries += page if isinstance(page, list) else []
    return {"resourceType": "Bundle", "type": "searchset", "entry": entries}

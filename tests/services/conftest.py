"""A real clinrlhf API on 127.0.0.1 (uvicorn in a thread) with a tiny untrained policy."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
import uvicorn

from clinrlhf.identity import mint_token
from clinrlhf.policy import PolicyConfig, build_policy, build_tokenizer, save_policy
from clinrlhf.settings import Settings
from clinrlhf.text.prompt import vocabulary_corpus
from clinrlhf.world.world import World
from services.api.app import create_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def policy_dir(tmp_path_factory: pytest.TempPathFactory, world: World) -> Path:
    tokenizer = build_tokenizer(vocabulary_corpus(world))
    torch.manual_seed(0)
    return save_policy(build_policy(PolicyConfig(), tokenizer), tokenizer, tmp_path_factory.mktemp("policy"))


@pytest.fixture(scope="session")
def api_settings(tmp_path_factory: pytest.TempPathFactory, policy_dir: Path) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("home"), policy=policy_dir, database_url=None)


class LiveServer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server() -> type[LiveServer]:
    """The LiveServer class, for tests that need a server with settings of their own."""
    return LiveServer


@pytest.fixture(scope="session")
def server(api_settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(api_settings) as live:
        yield live


@pytest.fixture(scope="session")
def tokens(api_settings: Settings) -> dict[str, str]:
    return {
        role: mint_token(api_settings, role=role, sub=f"test-{role}")
        for role in ("clinician", "cds-client", "ml-engineer", "compliance", "deidentifier")
    }


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60.0) as c:
        yield c


_SEARCH = {
    "Condition": "conditions",
    "Observation": "observations",
    "MedicationRequest": "medications",
    "AllergyIntolerance": "allergies",
}


def patient_view_request(bundle: Mapping[str, Any], user: str = "Practitioner/dr-7") -> dict[str, Any]:
    """A CDS Hooks request as an EHR would send it, every prefetch filled from the bundle."""
    resources = [e["resource"] for e in bundle["entry"]]
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    searches: dict[str, list] = {key: [] for key in _SEARCH.values()}
    for r in resources:
        if r["resourceType"] in _SEARCH:
            searches[_SEARCH[r["resourceType"]]].append({"resource": r, "search": {"mode": "match"}})
    prefetch = {"patient": patient} | {
        k: {"resourceType": "Bundle", "type": "searchset", "entry": v} for k, v in searches.items()
    }
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": user, "patientId": patient["id"]},
        "prefetch": prefetch,
    }


@pytest.fixture(scope="session")
def patient_view():  # noqa: ANN201 -- returns the request-building function
    return patient_view_request


CHROMIUM = Path("/usr/bin/chromium")  # Debian's, never a downloaded browser


@pytest.fixture
def page(site: str):  # noqa: ANN201 -- a playwright Page
    """Headless Chromium at the test module's `site` (a fixture each browser-test module defines),
    collecting script errors, CSP violations and 4xx/5xx responses in `page.errors`."""
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-background-networking"],
        )
        page = browser.new_page(base_url=site)
        page.errors = []  # type: ignore[attr-defined]
        page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)  # type: ignore[attr-defined]
        page.on("pageerror", lambda e: page.errors.append(str(e)))  # type: ignore[attr-defined]
        page.on("response", lambda r: page.errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)  # type: ignore[attr-defined]
        yield page
        browser.close()


@pytest.fixture(scope="session")
def auth(tokens: dict[str, str]):  # noqa: ANN201 -- returns a small header-building function
    """`auth("clinician", "application/fhir+json")` -> request headers with that role's token."""

    def headers(role: str, content_type: str | None = None) -> dict[str, str]:
        out = {"Authorization": f"Bearer {tokens[role]}"}
        return out | ({"Content-Type": content_type} if content_type else {})

    return headers

"""A slow FHIR server cannot stall the service: each request's fetches share an overall deadline,
fetches in flight are bounded (past the bound, 503 at once), and the health probes never wait for
a thread. The FHIR server here is a real socket on 127.0.0.1 that trickles its answer."""

from __future__ import annotations

import json
import socketserver
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from clinrlhf.settings import Settings

ATTACKERS = 45  # as in the red-team's report


class Trickle(socketserver.ThreadingTCPServer):
    """Answers every request with a 200 whose body arrives one byte every `interval` seconds, until
    `stop` is set. Counts the connections it has accepted."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, interval: float) -> None:
        self.interval, self.stop, self.accepted = interval, threading.Event(), 0
        super().__init__(("127.0.0.1", 0), _TrickleHandler)


class _TrickleHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: Trickle = self.server  # type: ignore[assignment]
        server.accepted += 1
        self.request.recv(65536)
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\nContent-Length: 100000\r\n\r\n"
        try:
            self.request.sendall(head)
            while not server.stop.wait(server.interval):
                self.request.sendall(b" ")
        except OSError:
            return  # the service gave up on us: what we want


@pytest.fixture
def trickle() -> Iterator[Trickle]:
    server = Trickle(interval=0.25)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()


def request_for(fhir_base: str) -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": "slow-fetch",
        "fhirServer": fhir_base,
        "context": {"userId": "Practitioner/dr-3", "patientId": "p-1"},
    }


def settings_for(api_settings: Settings, base: str, **update: Any) -> Settings:
    servers = json.dumps({"test-cds-client": [base]})
    return api_settings.model_copy(update={"fhir_servers": servers, **update})


def test_a_trickling_fhir_server_is_cut_off_at_the_deadline(
    live_server, api_settings: Settings, trickle: Trickle, auth
) -> None:
    base = f"http://127.0.0.1:{trickle.server_address[1]}/fhir"
    settings = settings_for(api_settings, base, fhir_fetch_deadline_seconds=1.0)
    with live_server(settings) as live, httpx.Client(base_url=live.url, timeout=15.0) as client:
        started = time.monotonic()
        response = client.post(
            "/cds-services/clinrlhf-treatment",
            json=request_for(base),
            headers=auth("cds-client", "application/json"),
        )
        took = time.monotonic() - started
    assert response.status_code == 412 and response.json()["resourceType"] == "OperationOutcome"
    assert took < 4.0, f"the fetch took {took:.1f} s against a 1 s deadline"


def test_many_slow_fetches_are_refused_past_the_bound_and_health_still_answers(
    live_server, api_settings: Settings, trickle: Trickle, auth
) -> None:
    """The red-team's attack: 45 calls to a trickling server at once. At most two fetch; the rest
    are 503 OperationOutcomes at once; /healthz and /readyz answer within two seconds (the red-team saw 18 s timeouts)."""
    base = f"http://127.0.0.1:{trickle.server_address[1]}/fhir"
    settings = settings_for(api_settings, base, fhir_fetch_deadline_seconds=20.0, fhir_fetches_in_flight=2)
    headers = auth("cds-client", "application/json")
    with live_server(settings) as live, httpx.Client(base_url=live.url, timeout=30.0) as client:

        def attack(_: int) -> tuple[int, float]:
            started = time.monotonic()
            try:
                r = client.post("/cds-services/clinrlhf-treatment", json=request_for(base), headers=headers)
            except httpx.TimeoutException:
                return 0, time.monotonic() - started
            return r.status_code, time.monotonic() - started

        with ThreadPoolExecutor(ATTACKERS) as pool:
            attacks = [pool.submit(attack, i) for i in range(ATTACKERS)]
            time.sleep(2.0)  # every attack has been sent; the admitted ones are trickling
            probes = []
            for path in ("/healthz", "/readyz"):
                started = time.monotonic()
                try:
                    status = client.get(path, timeout=5.0).status_code
                except httpx.TimeoutException:
                    status = 0
                probes.append((path, status, time.monotonic() - started))
            refused = [f.result() for f in attacks if f.done()]
            trickle.stop.set()  # let the admitted fetches end
            results = [f.result() for f in attacks]
    assert [(p, s) for p, s, _ in probes] == [("/healthz", 200), ("/readyz", 200)], probes
    assert all(t < 2.0 for _, _, t in probes), probes
    assert trickle.accepted <= 2
    busy = [r for r in results if r[0] == 503]
    assert len(busy) >= ATTACKERS - 2 and len(refused) >= ATTACKERS - 2
    assert all(t < 5.0 for _, t in busy)

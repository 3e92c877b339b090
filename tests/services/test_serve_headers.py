"""`clinrlhf serve` bounds request headers: four requests with megabytes of headers are refused at
the door and leave the server's memory where it was. Against the real command, since the HTTP
implementation under uvicorn, not the app, reads headers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from clinrlhf.settings import Settings

HUGE = 8_000_000  # bytes of one header; the red-team sent 32 MB


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def served(api_settings: Settings, policy_dir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = os.environ | {"CLINRLHF_HOME": str(api_settings.resolved_home), "CLINRLHF_ENV": "development"}
    cmd = [sys.executable, "-m", "clinrlhf", "serve", "--port", str(port), "--policy", str(policy_dir)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "clinrlhf serve did not start"
            time.sleep(0.3)
        yield url, proc
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def send_huge_header(port: int) -> int | None:
    """The status the server answers a request with a HUGE-byte header, or None if it hung up."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        try:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Pad: ")
            conn.sendall(b"a" * HUGE)
            conn.sendall(b"\r\n\r\n")
        except OSError:  # reset: the server stopped reading
            pass
        try:
            head = conn.recv(64)
        except OSError:
            return None
    return int(head.split()[1]) if head.startswith(b"HTTP/1.1 ") else None


def test_requests_with_huge_headers_are_refused_and_cost_no_memory(served) -> None:
    url, proc = served
    port = int(url.rsplit(":", 1)[1])
    before = rss_bytes(proc.pid)
    answers = [send_huge_header(port) for _ in range(4)]
    grown = rss_bytes(proc.pid) - before
    assert all(a in (None, 400, 431) for a in answers), answers
    assert grown < 32_000_000, f"the server grew by {grown / 1e6:.0f} MB"
    assert httpx.get(f"{url}/healthz", timeout=5.0).status_code == 200  # and it still serves


def test_ordinary_headers_still_pass(served) -> None:
    url, _ = served
    response = httpx.get(f"{url}/healthz", headers={"X-Trace": "t" * 4000}, timeout=5.0)
    assert response.status_code == 200

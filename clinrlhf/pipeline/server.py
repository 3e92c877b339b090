"""Run `clinrlhf serve` as a real process on 127.0.0.1 for the duration of a block."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(
    home: Path, policy: Path, *, log: Path, env: dict[str, str] | None = None, timeout: float = 300.0
) -> Iterator[str]:
    """Start the API in a subprocess, wait until /healthz answers, yield its base URL, stop it. The
    wait is long because a loaded machine can take minutes to import the server; a server that
    exits is noticed at once."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "clinrlhf",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--policy",
        str(policy),
    ]
    child_env = {**os.environ, **(env or {}), "CLINRLHF_HOME": str(home)}
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as sink:
        process = subprocess.Popen(command, env=child_env, stdout=sink, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(base, process, timeout)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_healthy(base: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the API server exited with status {process.returncode} before it was ready")
        try:
            if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the API server did not become healthy within {timeout:.0f}s")

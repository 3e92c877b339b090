"""Harness for the reliability tests: `clinrlhf serve` in a child process, a PostgreSQL cluster the
test may stop and start, cards to send feedback about, and concurrent clients that retry.

Everything listens on 127.0.0.1 only, and every process started here is stopped by the fixture
that started it, whatever the test did. The figures the load tests measure are printed at the end
of the run (`pytest_terminal_summary`).

The soak variants (the full 20,000 entries) run only with CLINRLHF_SOAK=1, as `make soak` sets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from clinrlhf.identity import mint_token
from clinrlhf.settings import Settings
from clinrlhf.store import (
    add_card,
    add_case,
    consistent_read,
    deidentify_case,
    deployment_store,
    make_engine,
    record_audit,
    transaction,
    verify_audit,
)
from clinrlhf.store.models import Feedback
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World

SERVICE = "/cds-services/clinrlhf-treatment"
FEEDBACK = f"{SERVICE}/feedback"
SOAK = os.environ.get("CLINRLHF_SOAK") == "1"
POSTGRES_URL = os.environ.get("CLINRLHF_TEST_POSTGRES_URL")
TODAY = date(2026, 3, 1)
OVERRIDE = "https://clinrlhf.dev/fhir/CodeSystem/override-reason"
FIGURES = pytest.StashKey[list[str]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: the long reliability runs (`make soak`, CLINRLHF_SOAK=1)")
    config.stash[FIGURES] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="a soak run: `make soak` (CLINRLHF_SOAK=1) runs it")
    for item in items:
        if "soak" in item.keywords and not SOAK:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if config.stash.get(FIGURES, []):
        terminalreporter.section("reliability figures")
        for line in config.stash[FIGURES]:
            terminalreporter.write_line(line)


@pytest.fixture
def report_figure(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record one line of figures for the end-of-run summary."""
    return lambda line: request.config.stash[FIGURES].append(f"{request.node.name}: {line}")


# --- the server ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """`clinrlhf serve` as an operator runs it, in a process group of its own so that a crash (or the
    end of the test) takes the supervisor and every worker down together."""

    def __init__(self, settings: Settings, policy: Path, workers: int, port: int | None = None) -> None:
        self.settings, self.policy, self.workers = settings, policy, workers
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = settings.resolved_home / "serve.log"

    def start(self, timeout: float = 120) -> Served:
        env = {
            **os.environ,
            "CLINRLHF_HOME": str(self.settings.resolved_home),
            "CLINRLHF_DATABASE_URL": self.settings.resolved_database_url,
        }
        command = [sys.executable, "-m", "clinrlhf", "serve", "--port", str(self.port)]
        command += ["--workers", str(self.workers), "--policy", str(self.policy), "--log-level", "warning"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"clinrlhf serve exited with {self.process.returncode}: {self.tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"clinrlhf serve was not ready within {timeout:g} s: {self.tail()}")

    def worker_pids(self) -> list[int]:
        """The supervisor's worker processes, from /proc (multiprocessing's resource tracker, also
        a child, is not one)."""
        assert self.process is not None
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
                command = (stat.parent / "cmdline").read_bytes()
            except (OSError, IndexError, ValueError):  # it exited meanwhile
                continue
            if ppid == self.process.pid and b"resource_tracker" not in command:
                children.append(int(stat.parent.name))
        return children

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL the whole group: no shutdown handler runs, as in a crash or an OOM kill."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM, wait=30)
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int, wait: float = 10) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):  # it is gone already
            os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            return
        self._reap_group()
        self.process = None

    def _reap_group(self) -> None:
        """Workers may outlive the supervisor for a moment: wait until the group is empty."""
        assert self.process is not None
        for _ in range(100):
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


@pytest.fixture
def serve(policy_dir: Path) -> Iterator[Callable[..., Served]]:
    """`serve(settings, workers=2)` starts a server; every one started is stopped afterwards."""
    started: list[Served] = []

    def start(settings: Settings, workers: int = 1, port: int | None = None) -> Served:
        served = Served(settings, policy_dir, workers, port)
        started.append(served)
        return served.start()

    try:
        yield start
    finally:
        for served in started:
            served.stop()


# --- databases -----------------------------------------------------------------------------------


def schema_url(server_url: str) -> tuple[str, Callable[[], None]]:
    """A fresh schema on a PostgreSQL server, so a test starts from an empty store; and its dropper."""
    schema = f"rel_{uuid.uuid4().hex[:12]}"
    admin = make_engine(server_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

    return f"{server_url}{'&' if '?' in server_url else '?'}options=-csearch_path%3D{schema}", drop


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None (SQLite under the test's home), or a fresh schema on CLINRLHF_TEST_POSTGRES_URL."""
    if request.param == "sqlite":
        yield None
        return
    if not POSTGRES_URL:
        pytest.skip("set CLINRLHF_TEST_POSTGRES_URL to run against PostgreSQL (.ci/run does)")
    url, drop = schema_url(POSTGRES_URL)
    try:
        yield url
    finally:
        drop()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    if not POSTGRES_URL:
        pytest.skip("set CLINRLHF_TEST_POSTGRES_URL to run against PostgreSQL (.ci/run does)")
    url, drop = schema_url(POSTGRES_URL)
    try:
        yield url
    finally:
        drop()


class Cluster:
    """A PostgreSQL cluster of the test's own, which it may stop and start at will: restarting the
    shared one that CLINRLHF_TEST_POSTGRES_URL names could be someone's real server. Made with
    initdb, as .ci/postgres.sh makes CI's, and run as the `postgres` user when the test runs as root
    (PostgreSQL refuses to run as root)."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="clinrlhf-rel-pg-"))  # not under /tmp/pytest-of-root (0700)
        self.data, self.port = self.root / "data", free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.root, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self._as, str(self.bin / tool), *args], check=True, capture_output=True)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """`immediate` is a crash: every backend is killed and the next start replays the WAL."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        subprocess.run(
            [*self._as, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip(
            "needs PostgreSQL's initdb and pg_ctl (Debian package postgresql) to stop and start a server"
        )
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root, PostgreSQL must run as the postgres user, and runuser is missing")
    made = Cluster(bin_dir)
    try:
        made.start()
        yield made
    finally:
        made.remove()


# --- a store with cards --------------------------------------------------------------------------


def seed_cards(settings: Settings, world: World, n: int) -> list[tuple[str, str]]:
    """`n` cards as the CDS service stores them, audited; returns (card, first suggestion) ids."""
    out = []
    with transaction(deployment_store(settings)) as session:
        for patient in generate_patients(world, n, seed=7, today=TODAY):
            case = deidentify_case(patient.bundle, key=settings.deid_secret, today=TODAY)
            row, _ = add_case(session, case, source="cds")
            record_audit(session, actor="test", action="C", entity_type="Case", entity_id=row.id)
            card = add_card(
                session,
                case_id=row.id,
                target="hypertension",
                prompt="treat hypertension ->",
                model_version="test@1",
                suggestions=[("lisinopril", "lisinopril 10 mg"), ("amlodipine", "amlodipine 5 mg")],
            )
            record_audit(session, actor="test", action="C", entity_type="Card", entity_id=card.id)
            out.append((card.id, card.suggestions[0].id))
    return out


@dataclass
class Store:
    """A store ready for feedback: its settings, its cards, and a cds-client token for it."""

    settings: Settings
    cards: list[tuple[str, str]]
    token: str

    def bodies(self, n: int) -> list[bytes]:
        return feedback_bodies(self.cards, n)

    def feedback_rows(self) -> int:
        with consistent_read(deployment_store(self.settings)) as session:
            return session.scalar(select(func.count()).select_from(Feedback)) or 0

    def duplicated_entries(self) -> int:
        """Entries stored more than once, by content (card and timestamp are unique per entry)."""
        with consistent_read(deployment_store(self.settings)) as session:
            groups = (
                select(Feedback.card_id, Feedback.outcome_timestamp)
                .group_by(Feedback.card_id, Feedback.outcome_timestamp)
                .having(func.count() > 1)
            )
            return session.scalar(select(func.count()).select_from(groups.subquery())) or 0

    def audit_problem(self) -> str | None:
        with consistent_read(deployment_store(self.settings)) as session:
            report = verify_audit(session)
        return None if report.ok else report.problem


@pytest.fixture
def make_store(tmp_path: Path, world: World) -> Callable[..., Store]:
    def make(database_url: str | None = None, cards: int = 50) -> Store:
        settings = Settings(home=tmp_path / "home", database_url=database_url)
        token = mint_token(settings, role="cds-client", sub="reliability-ehr", ttl=4 * 3600)
        return Store(settings, seed_cards(settings, world, cards), token)

    return make


def feedback_bodies(cards: Sequence[tuple[str, str]], n: int, first: int = 0) -> list[bytes]:
    """`n` distinct one-entry feedback bodies (each its own timestamp), half accepted, half overridden."""
    start, bodies = datetime(2026, 1, 1, tzinfo=UTC), []
    for i in range(first, first + n):
        card, suggestion = cards[i % len(cards)]
        entry: dict[str, Any] = {
            "card": card,
            "outcomeTimestamp": (start + timedelta(milliseconds=i)).isoformat(),
        }
        if i % 2:
            entry |= {"outcome": "accepted", "acceptedSuggestions": [{"id": suggestion}]}
        else:
            reason = {"reason": {"system": OVERRIDE, "code": "other"}, "userComment": "see note"}
            entry |= {"outcome": "overridden", "overrideReason": reason}
        bodies.append(json.dumps({"feedback": [entry]}).encode())
    return bodies


# --- clients that retry --------------------------------------------------------------------------

RETRYABLE = frozenset({429, 503, 507})


@dataclass
class Load:
    """What concurrent clients saw. Every body is sent until acknowledged (200), retrying the very
    same bytes, which is what makes a retry safe: the entry's idempotency key is its content."""

    acknowledged: int = 0
    stored: int = 0  # the sum of `stored` over acknowledgements
    duplicates: int = 0  # the sum of `duplicates`: entries whose earlier attempt had committed
    latencies: list[float] = field(default_factory=list)  # seconds, acknowledged requests
    statuses: Counter[str] = field(default_factory=Counter)  # every attempt: status or error name
    refusals: list[str] = field(default_factory=list)  # a retryable status without its headers or outcome
    failures: list[str] = field(default_factory=list)  # an answer that is neither 200 nor retryable
    seconds: float = 0.0
    disrupted_after: int | None = None  # acknowledgements before the disruption (see `drive_with`)

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")

    def summary(self) -> str:
        rate = self.acknowledged / self.seconds if self.seconds else 0.0
        return (
            f"{self.acknowledged} acknowledged in {self.seconds:.1f} s ({rate:.0f}/s), "
            f"p50 {self.percentile(0.5):.1f} ms, p99 {self.percentile(0.99):.1f} ms; "
            f"attempts {dict(sorted(self.statuses.items()))}"
        )


async def _post_until_acknowledged(http: httpx.AsyncClient, body: bytes, load: Load, deadline: float) -> None:
    pause = 0.05
    while time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            response = await http.post(FEEDBACK, content=body)
        except httpx.TransportError as err:
            # The server is down or restarting: back off, or 64 clients reconnecting in a tight loop
            # would take the CPU that the restarting server needs.
            load.statuses[type(err).__name__] += 1
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)
            continue
        load.statuses[str(response.status_code)] += 1
        if response.status_code == 200:
            load.latencies.append(time.perf_counter() - started)
            reply = response.json()
            load.acknowledged += 1
            load.stored += reply["stored"]
            load.duplicates += reply["duplicates"]
            return
        if response.status_code not in RETRYABLE:
            load.failures.append(f"{response.status_code} {response.text[:200]}")
            return
        await asyncio.sleep(_retry_after(response, load))
    load.failures.append("gave up: the deadline passed")


def _retry_after(response: httpx.Response, load: Load) -> float:
    """The Retry-After the server asked for (capped, to keep tests short); a refusal that lacks it
    or is not an OperationOutcome is recorded as a defect."""
    retry = response.headers.get("retry-after", "")
    is_outcome = response.headers.get("content-type", "").startswith("application/fhir+json") and (
        response.json().get("resourceType") == "OperationOutcome"
    )
    if not retry.isdigit() or not is_outcome:
        load.refusals.append(f"{response.status_code} retry-after={retry!r} {response.text[:200]}")
        return 0.5
    return min(float(retry), 1.0)


async def drive(
    url: str, token: str, bodies: Sequence[bytes], concurrency: int, timeout: float, load: Load | None = None
) -> Load:
    """`concurrency` clients post `bodies` between them, each until acknowledged."""
    load, queue = load or Load(), list(reversed(bodies))
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def client(http: httpx.AsyncClient) -> None:
        while queue:
            await _post_until_acknowledged(http, queue.pop(), load, deadline)

    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as http:
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
    load.seconds = time.monotonic() - started
    return load


async def drive_with(
    url: str,
    token: str,
    bodies: Sequence[bytes],
    concurrency: int,
    timeout: float,
    *,
    after: int,
    disrupt: Callable[[], None],
) -> Load:
    """`drive`, and once `after` posts are acknowledged, `disrupt()` (blocking: a crash, a restart)
    in a thread while the clients go on. `disrupted_after` says whether, and when, it happened."""
    load = Load()
    task = asyncio.ensure_future(drive(url, token, bodies, concurrency, timeout, load))
    while not task.done() and load.acknowledged < after:
        await asyncio.sleep(0.02)
    if not task.done():
        load.disrupted_after = load.acknowledged
        await asyncio.to_thread(disrupt)
    return await task


CONCURRENCY = 64


@pytest.fixture
def send_feedback() -> Callable[..., Load]:
    """`send_feedback(url, store, bodies, disrupt=f, after=k)`: the bodies posted by 64 clients that
    retry until acknowledged, with `f()` run once `k` are acknowledged (see `drive_with`)."""

    def send(
        url: str,
        store: Store,
        bodies: Sequence[bytes],
        *,
        disrupt: Callable[[], None] | None = None,
        after: int = 0,
        timeout: float = 3000,
    ) -> Load:
        if disrupt is None:
            return asyncio.run(drive(url, store.token, bodies, CONCURRENCY, timeout))
        return asyncio.run(
            drive_with(url, store.token, bodies, CONCURRENCY, timeout, after=after, disrupt=disrupt)
        )

    return send

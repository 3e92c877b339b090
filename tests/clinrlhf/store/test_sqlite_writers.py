"""SQLite writers of one process queue for the write lock instead of sleeping in SQLite's busy
handler; a failed transaction frees the queue; readers never wait for writers."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from clinrlhf.store import consistent_read, record_audit, transaction, verify_chain
from clinrlhf.store.models import AuditEvent

REPO = Path(__file__).parents[3]


@pytest.fixture(autouse=True)
def sqlite_only(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("the writer queue is SQLite's")


def append(sessions: sessionmaker[Session], who: str) -> None:
    with transaction(sessions) as session:
        record_audit(session, actor=who, action="C", entity_type="Review", entity_id=who)


def test_many_threads_writing_at_once_all_commit_in_one_chain(sessions) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: append(sessions, f"writer-{i}"), range(160)))
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 160
        assert verify_chain(session) is None
    assert time.monotonic() - started < 30  # busy-handler sleeps made this take minutes


def test_a_failed_transaction_frees_the_queue(sessions) -> None:
    with pytest.raises(RuntimeError), transaction(sessions) as session:
        record_audit(session, actor="x", action="C", entity_type="Review", entity_id="1")
        session.flush()
        raise RuntimeError("the request failed half way")
    done = threading.Thread(target=append, args=(sessions, "next"), daemon=True)
    done.start()
    done.join(timeout=10)
    assert not done.is_alive(), "the writer queue was not released"


def test_a_reader_does_not_wait_for_a_writer(sessions) -> None:
    append(sessions, "first")
    holding, release = threading.Event(), threading.Event()

    def slow_writer() -> None:
        with transaction(sessions) as session:
            record_audit(session, actor="slow", action="C", entity_type="Review", entity_id="2")
            session.flush()
            holding.set()
            release.wait(10)

    writer = threading.Thread(target=slow_writer, daemon=True)
    writer.start()
    assert holding.wait(10)
    started = time.monotonic()
    with consistent_read(sessions) as session:
        seen = session.scalar(select(func.count()).select_from(AuditEvent))
    assert seen == 1 and time.monotonic() - started < 1  # the uncommitted event is not seen
    release.set()
    writer.join(10)


WRITER = """
import sys
from clinrlhf.store import make_engine, make_session_factory, record_audit, transaction
sessions = make_session_factory(make_engine(sys.argv[1]))
for i in range(int(sys.argv[3])):
    with transaction(sessions) as session:
        record_audit(session, actor=sys.argv[2], action="C", entity_type="Review", entity_id=str(i))
"""


def test_processes_writing_at_once_queue_on_the_file_lock(engine: Engine, sessions) -> None:
    url = engine.url.render_as_string(hide_password=False)
    started = time.monotonic()
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, url, f"process-{i}", "40"], cwd=REPO)
        for i in range(3)
    ]
    assert [w.wait(timeout=120) for w in writers] == [0, 0, 0]
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 120
        assert verify_chain(session) is None
    assert time.monotonic() - started < 60

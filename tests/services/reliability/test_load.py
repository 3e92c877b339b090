"""Load on a real server: 64 concurrent clients post feedback to `clinrlhf serve --workers 2`, on
SQLite and on PostgreSQL. Every entry is acknowledged and stored exactly once, with its audit event,
and p50 and p99 are reported. Every tenth entry is posted twice back to back, so that the two copies
race, most likely on different workers: a retry is safe because an entry's idempotency key is its
content, and the copy that loses the race is answered as a duplicate.

`make test` sends 2,000 entries; `make soak` 20,000.
"""

from __future__ import annotations

import pytest

WORKERS = 2
SOAK_TIMEOUT = 3600  # seconds per soak test: 20,000 entries on a busy 2-core machine


def with_racing_copies(bodies: list[bytes]) -> tuple[list[bytes], int]:
    """Every tenth body twice in a row (two clients take them at once); and how many copies."""
    sent = []
    for i, body in enumerate(bodies):
        sent += [body, body] if i % 10 == 0 else [body]
    return sent, len(sent) - len(bodies)


def check_load(entries: int, database_url, make_store, serve, send_feedback, report_figure) -> None:
    store = make_store(database_url)
    served = serve(store.settings, workers=WORKERS)
    assert len(served.worker_pids()) == WORKERS
    sent, copies = with_racing_copies(store.bodies(entries))
    load = send_feedback(served.url, store, sent)
    report_figure(f"{entries} entries, {WORKERS} workers: {load.summary()}")
    assert load.failures == [] and load.refusals == []
    assert load.acknowledged == len(sent)
    assert (load.stored, load.duplicates) == (entries, copies)
    assert store.feedback_rows() == entries
    assert store.duplicated_entries() == 0
    assert store.audit_problem() is None


def test_every_entry_under_load_is_stored_exactly_once(
    database_url, make_store, serve, send_feedback, report_figure
) -> None:
    check_load(2_000, database_url, make_store, serve, send_feedback, report_figure)


@pytest.mark.soak
@pytest.mark.timeout(SOAK_TIMEOUT)
def test_soak_twenty_thousand_entries_are_stored_exactly_once(
    database_url, make_store, serve, send_feedback, report_figure
) -> None:
    check_load(20_000, database_url, make_store, serve, send_feedback, report_figure)

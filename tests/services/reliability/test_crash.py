"""A crash mid-load: `clinrlhf serve` is SIGKILLed (no shutdown handler runs, as in an OOM kill)
while 64 clients post feedback, then started again on the same port. The clients retry what was not acknowledged, with
the same bodies and so the same idempotency keys. Every entry ends up stored exactly once: none
acknowledged is lost (a reply is sent only after its commit), and none whose commit landed just
before the crash, unacknowledged, is stored twice when its retry arrives."""

from __future__ import annotations

import pytest

ENTRIES = 2_000
SOAK_TIMEOUT = 3600  # seconds per soak test: 20,000 entries on a busy 2-core machine


def check_crash(entries: int, database_url, make_store, serve, send_feedback, report_figure) -> None:
    store = make_store(database_url)
    served = serve(store.settings)  # one process: a restart with workers waits for each to import

    def crash_and_restart() -> None:
        served.kill()
        served.start()

    load = send_feedback(
        served.url, store, store.bodies(entries), disrupt=crash_and_restart, after=entries // 3
    )
    report_figure(f"killed after {load.disrupted_after} of {entries} acknowledged: {load.summary()}")
    assert load.disrupted_after is not None, "the load ended before the crash"
    felt = sum(n for status, n in load.statuses.items() if not status.isdigit())
    assert felt > 0, "no client saw the crash"
    assert load.failures == [] and load.refusals == []
    assert load.acknowledged == entries
    # Commits whose reply the crash swallowed came back as duplicates on retry, not as new rows.
    assert load.stored + load.duplicates == entries
    assert store.feedback_rows() == entries
    assert store.duplicated_entries() == 0
    assert store.audit_problem() is None


def test_a_crash_mid_load_loses_and_duplicates_nothing(
    database_url, make_store, serve, send_feedback, report_figure
) -> None:
    check_crash(ENTRIES, database_url, make_store, serve, send_feedback, report_figure)


@pytest.mark.soak
@pytest.mark.timeout(SOAK_TIMEOUT)
def test_soak_a_crash_mid_load_of_twenty_thousand(
    database_url, make_store, serve, send_feedback, report_figure
) -> None:
    check_crash(20_000, database_url, make_store, serve, send_feedback, report_figure)

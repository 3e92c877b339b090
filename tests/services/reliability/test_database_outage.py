"""PostgreSQL goes down mid-load (killed, as in a crash, then started again) under a server with two
workers. While it is down, clients get 503 with Retry-After, as an OperationOutcome, and never a
500; `/readyz` says 503 too. Once it is back, the pool reconnects by itself (connections are
checked before use), the clients' retries are stored, and nothing acknowledged is lost.

The test runs a PostgreSQL cluster of its own (initdb, as .ci/postgres.sh does), because it stops
the server: the one CLINRLHF_TEST_POSTGRES_URL names may be shared.
"""

from __future__ import annotations

import time

import httpx
import pytest

ENTRIES = 2_000
DOWN_SECONDS = 3.0
SOAK_TIMEOUT = 3600  # seconds per soak test: 20,000 entries on a busy 2-core machine


def check_outage(entries: int, cluster, make_store, serve, send_feedback, report_figure) -> None:
    store = make_store(cluster.url)
    served = serve(store.settings, workers=2)
    probes: list[httpx.Response] = []

    def restart_database() -> None:
        cluster.stop("immediate")
        time.sleep(DOWN_SECONDS / 2)
        probes.append(httpx.get(f"{served.url}/readyz", timeout=10))
        time.sleep(DOWN_SECONDS / 2)
        cluster.start()

    load = send_feedback(
        served.url, store, store.bodies(entries), disrupt=restart_database, after=entries // 3
    )
    report_figure(
        f"database down {DOWN_SECONDS:g} s after {load.disrupted_after} acknowledged: {load.summary()}"
    )
    assert load.disrupted_after is not None, "the load ended before the outage"
    assert load.statuses["503"] > 0, "no client was told the database was down"
    assert load.refusals == [], "a 503 lacked Retry-After or was not an OperationOutcome"
    assert load.failures == [] and "500" not in load.statuses
    (probe,) = probes
    assert probe.status_code == 503 and probe.headers["retry-after"].isdigit()
    assert probe.json()["issue"][0]["code"] == "no-store"
    assert httpx.get(f"{served.url}/readyz", timeout=10).status_code == 200
    assert load.acknowledged == entries
    assert load.stored + load.duplicates == entries
    assert store.feedback_rows() == entries
    assert store.duplicated_entries() == 0
    assert store.audit_problem() is None


@pytest.mark.postgres
def test_a_database_restart_mid_load_is_503_then_nothing_is_lost(
    cluster, make_store, serve, send_feedback, report_figure
) -> None:
    check_outage(ENTRIES, cluster, make_store, serve, send_feedback, report_figure)


@pytest.mark.postgres
@pytest.mark.soak
@pytest.mark.timeout(SOAK_TIMEOUT)
def test_soak_a_database_restart_mid_load_of_twenty_thousand(
    cluster, make_store, serve, send_feedback, report_figure
) -> None:
    check_outage(20_000, cluster, make_store, serve, send_feedback, report_figure)

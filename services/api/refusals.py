"""Every refused request is counted in the audit trail, without letting a flood of refusals become
a flood of writes to it.

A middleware counts each 4xx response by status, method and route template (never the raw path,
which may carry identifiers). The counts are written as aggregated audit events (one event per
status and route, its count in the entity id) every `interval` seconds and when the service stops:
an attacker probing the service appears in the trail with how many attempts were refused, and a
burst of 10,000 refusals costs a handful of appends, not 10,000 serialised ones.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from contextlib import suppress

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clinrlhf.store import record_audit, transaction
from clinrlhf.store.audit import Outcome

log = logging.getLogger("services.api")
ACTOR = "service:refusals"  # the service itself records what it refused
ENTITY_TYPE = "Refusal"
UNMATCHED = "(no route)"  # a path no route matched: the raw path is never recorded

Key = tuple[int, str, str]  # (status, method, route template)


def entity_id(key: Key, count: int) -> str:
    """`422 POST /fhir/QuestionnaireResponse x17`, cut to the column's 64 characters."""
    status, method, route = key
    suffix = f" x{count}"
    return f"{status} {method} {route}"[: 64 - len(suffix)] + suffix


class RefusalCounter:
    """Counts refused requests between flushes; safe to use from any thread."""

    def __init__(self) -> None:
        self._counts: Counter[Key] = Counter()
        self._lock = threading.Lock()

    def count(self, status: int, method: str, route: str) -> None:
        with self._lock:
            self._counts[(status, method, route)] += 1

    def drain(self) -> Counter[Key]:
        with self._lock:
            counts, self._counts = self._counts, Counter()
        return counts

    def flush(self, sessions: sessionmaker[Session]) -> int:
        """Write what was counted since the last flush as audit events; returns the refusals written."""
        counts = self.drain()
        if not counts:
            return 0
        with transaction(sessions) as session:
            for key, n in sorted(counts.items()):
                outcome: Outcome = "8" if key[0] in (401, 403) else "4"  # serious failure: auth refused
                record_audit(
                    session,
                    actor=ACTOR,
                    action="E",
                    entity_type=ENTITY_TYPE,
                    entity_id=entity_id(key, n),
                    outcome=outcome,
                )
        return sum(counts.values())

    async def flush_every(self, sessions: sessionmaker[Session], interval: float) -> None:
        """Flush every `interval` seconds until cancelled; a failed flush is logged and retried."""
        while True:
            await asyncio.sleep(interval)
            try:
                await run_in_threadpool(self.flush, sessions)
            except Exception as err:  # noqa: BLE001 - the counts are lost, the service goes on
                log.warning("could not record refusals in the audit trail (%s)", type(err).__name__)


class RefusalAudit:
    """Count every response with a 4xx status (the outermost app sees them all, 413 and 415
    included) by its route template."""

    def __init__(self, app: ASGIApp, counter: RefusalCounter) -> None:
        self.app, self.counter = app, counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start" and 400 <= message["status"] < 500:
                route = getattr(scope.get("route"), "path", None) or UNMATCHED
                self.counter.count(message["status"], scope["method"], route)
            await send(message)

        await self.app(scope, receive, counting_send)


async def stop_flushing(
    task: asyncio.Task[None], counter: RefusalCounter, sessions: sessionmaker[Session]
) -> None:
    """Cancel the periodic flush and write what is left: refusals up to shutdown are counted."""
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
    try:
        await run_in_threadpool(counter.flush, sessions)
    except Exception as err:  # noqa: BLE001 - shutting down regardless; say what was lost
        log.warning("could not record the last refusals in the audit trail (%s)", type(err).__name__)

"""Probes, the only routes that need no token: liveness (`/healthz`) and readiness (`/readyz`).

A load balancer or orchestrator cannot hold a bearer token, and the answers say nothing about the
data: "ok", "ready", or an OperationOutcome naming no more than that the database is unreachable.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from clinrlhf.store import consistent_read
from services.errors import RETRY_AFTER_SECONDS, APIError
from services.state import StateDep

router = APIRouter(tags=["health"])
# The probes never use the shared thread pool: when every pool thread is busy (slow FHIR servers,
# a locked database) the process is still alive, and a probe that queued behind them would have an
# orchestrator restart a working process. Readiness gets one thread of its own.
_READINESS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="readyz")
READINESS_TIMEOUT_SECONDS = 5.0


@router.get("/healthz", summary="Liveness probe (no token needed)")
async def healthz() -> dict[str, str]:
    """The process answers. Says nothing about the database: restarting a live process whose
    database is down would not bring the database back."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness probe (no token needed): 200 while the database answers, 503 otherwise",
    responses={503: {"description": "the database is unreachable"}},
)
async def readyz(state: StateDep) -> dict[str, str]:
    """Whether this process can store what it is sent: one round trip to the database, on a pooled
    connection (checked before use, so a restarted database shows as ready as soon as it is). A
    read-only snapshot: the probe never waits behind SQLite's writer."""

    def probe() -> None:
        with consistent_read(state.sessions) as session:
            session.execute(text("SELECT 1"))

    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.run_in_executor(_READINESS, probe), READINESS_TIMEOUT_SECONDS)
    except (SQLAlchemyError, TimeoutError):
        retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        raise APIError(503, "the database is unreachable", code="no-store", headers=retry) from None
    return {"status": "ready"}

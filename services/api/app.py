"""The clinrlhf HTTP API: CDS Hooks 2.0 and FHIR R4, de-identifying every request at the door.

Run it with `clinrlhf serve`, or as a uvicorn factory: `uvicorn --factory services.api.app:create_app`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import torch
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from clinrlhf import __version__
from clinrlhf.identity import parse_issuers
from clinrlhf.settings import Settings, load_settings
from clinrlhf.store import deployment_store
from clinrlhf.store.replay import DatabaseJtiCache
from clinrlhf.world.world import load_world
from services.api.access_log import RouteTemplate, install_access_log_filter
from services.api.middleware import ErrorShield, RequestGuard
from services.api.refusals import RefusalAudit, RefusalCounter, stop_flushing
from services.api.routes import cds_hooks, deidentify, fhir, health, model_card
from services.api.routes import compliance as compliance_pages
from services.body import BODY_COMPONENTS
from services.errors import install_error_handlers
from services.fhir import transparency as fhir_transparency
from services.recommend import PolicyHolder, PolicyUnavailableError
from services.state import AppState
from services.web import admin as review_admin
from services.web import dashboard
from services.web import routes as review_page
from services.web.headers import SecurityHeaders
from services.web.page_errors import install_page_errors

log = logging.getLogger("services.api")
REFUSAL_FLUSH_SECONDS = 30.0  # how often counted refusals are appended to the audit trail


def _lifespan(state: AppState, refusals: RefusalCounter) -> Any:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # One intra-op thread: the policy is tiny, so extra threads only spin and contend (measured
        # 5-10x more CPU per suggestion with 2 threads on a busy 2-core machine). Requests, served
        # one at a time under the policy lock, are the unit of parallelism.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:  # load the policy before the first request needs it; the service still starts without one
            await run_in_threadpool(state.policies.get)
        except PolicyUnavailableError:
            log.warning("no policy available yet: the CDS service answers 503 until one is trained")
        flushing = asyncio.create_task(refusals.flush_every(state.sessions, REFUSAL_FLUSH_SECONDS))
        try:
            yield
        finally:
            await stop_flushing(flushing, refusals, state.sessions)
            torch.set_num_threads(threads)

    return lifespan


def _openapi(app: FastAPI) -> Any:
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(BODY_COMPONENTS)
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for `settings` (read from the environment when None)."""
    settings = settings or load_settings()
    parse_issuers(settings.jwks_issuers)  # a malformed issuer list stops start-up, not a request
    sessions = deployment_store(settings)
    state = AppState(
        settings=settings,
        sessions=sessions,
        jti_cache=DatabaseJtiCache(sessions),  # shared by every worker: a replay is caught by any
        policies=PolicyHolder(settings),
        world=load_world(),
        deid_key=settings.deid_secret,
    )
    refusals = RefusalCounter()
    app = FastAPI(
        title="clinrlhf",
        version=__version__,
        lifespan=_lifespan(state, refusals),
        docs_url=None,
        redoc_url=None,
        description="CDS Hooks 2.0 treatment suggestions and FHIR R4 clinician reviews. Every request is "
        "de-identified on arrival; errors are FHIR OperationOutcomes.",
    )
    app.state.clinrlhf = state
    install_error_handlers(app)
    # Added innermost first: SecurityHeaders wraps ErrorShield, which wraps RequestGuard, which
    # wraps the routes; so even a last-resort 500 carries the security headers.
    app.add_middleware(RequestGuard, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(ErrorShield)
    app.add_middleware(SecurityHeaders)
    if settings.trusted_proxies:  # outermost: everything inside sees the client and scheme it forwarded
        proxies = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)
    app.add_middleware(RouteTemplate)  # outermost: sees the route whatever answered
    app.add_middleware(RefusalAudit, counter=refusals)  # outermost: it sees every refusal
    for module in (health, cds_hooks, fhir, deidentify, model_card):
        app.include_router(module.router)
    app.include_router(fhir_transparency.router)  # each card's Provenance, Device and model card
    # The clinicians' review page (server-rendered HTML, its script and stylesheet).
    app.include_router(review_page.router)
    app.include_router(review_admin.router)  # its admin view: agreement, for compliance officers
    app.mount(f"{review_page.PREFIX}/static", review_page.static_files(), name="review-static")
    # Compliance officers' dashboard (governance actions from the page) and each run's report.
    app.include_router(dashboard.router)
    app.include_router(compliance_pages.router)
    install_page_errors(app)  # the compliance pages' errors: HTML pages for a browser
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    install_access_log_filter()
    return app

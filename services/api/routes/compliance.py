"""Read-only pages for compliance officers: the registered policy versions, and each pipeline run's
compliance report, rendered from MLflow and the audit trail at request time.

Only a token whose scopes read the audit trail (`AuditEvent.r`, the compliance role's) gets in, as
on the API: no token is a 401, another role a 403, both as OperationOutcomes.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import re
import threading
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi import Path as PathParam
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from starlette.responses import HTMLResponse

from clinrlhf.identity import Principal, actor
from clinrlhf.lineage.chain import RunNotFound, load_chain
from clinrlhf.lineage.registry import MODEL_NAME, PIPELINE_RUN, production_version
from clinrlhf.lineage.report import build_report
from clinrlhf.settings import Settings
from clinrlhf.store import record_audit, transaction
from services.errors import APIError
from services.state import StateDep, require_scope

PREFIX = "/compliance"
router = APIRouter(prefix=PREFIX, tags=["compliance"])
Officer = Annotated[Principal, Depends(require_scope("AuditEvent", "r"))]
RunId = Annotated[str, PathParam(pattern=r"^[0-9a-f]{32}$", description="an MLflow run id")]
_STYLE = re.compile(r"<style>(.*?)</style>", re.DOTALL)
# The report's plots come from matplotlib's pyplot, whose figure registry is global state: two
# reports drawn at once in the thread pool could swap figures. Reports are rare; draw one at a time.
_RENDERING = threading.Lock()


def _client(settings: Settings) -> MlflowClient:
    uri = settings.mlflow_tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _page(body: str) -> HTMLResponse:
    """The page with a policy that allows its own inline stylesheet (by hash), inline images, and
    no script at all; never cached, as it names approvers and privacy spent."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(m.encode()).digest()).decode() + "'"
        for m in _STYLE.findall(body)
    ]
    policy = "; ".join(
        [
            "default-src 'none'",
            "style-src " + (" ".join(hashes) or "'none'"),
            "img-src data:",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )
    return HTMLResponse(body, headers={"Content-Security-Policy": policy, "Cache-Control": "no-store"})


@router.get("", summary="Registered policy versions, with links to their compliance reports")
def versions(state: StateDep, _officer: Officer) -> HTMLResponse:
    client = _client(state.settings)
    found: list[ModelVersion] = []
    with contextlib.suppress(MlflowException):  # no registered model yet
        found = list(client.search_model_versions(f"name = '{MODEL_NAME}'"))
    production = production_version(client)
    rows = []
    for mv in sorted(found, key=lambda v: -int(v.version)):
        run = html.escape(mv.tags.get(PIPELINE_RUN, ""))
        live = " (production)" if production and str(production.version) == str(mv.version) else ""
        approved = html.escape(mv.tags.get("clinrlhf.approval.actor", "not approved"))
        rows.append(
            f"<tr><td>v{mv.version}{live}</td><td>{approved}</td>"
            f'<td><a href="{PREFIX}/report/{run}">report of run {run}</a></td></tr>'
        )
    table = "".join(rows) or '<tr><td colspan="3">No policy is registered yet.</td></tr>'
    return _page(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>clinrlhf compliance</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2rem}td,th{padding:.3rem .6rem;text-align:left}</style>"
        f"</head><body><h1>{MODEL_NAME}</h1><table><tr><th>version</th><th>approved by</th><th>report</th></tr>"
        f"{table}</table></body></html>"
    )


@router.get("/report/{run_id}", summary="The compliance report of a pipeline run (or of one of its stages)")
def report(run_id: RunId, state: StateDep, officer: Officer) -> HTMLResponse:
    client = _client(state.settings)
    try:
        chain = load_chain(client, run_id)
    except RunNotFound:
        raise APIError(404, "no pipeline run with that id") from None
    with _RENDERING:
        body = build_report(client, chain, state.settings.mlflow_tracking_uri, sessions=state.sessions)
    with transaction(state.sessions) as session:  # a report reads the feedback's aggregates: audited
        record_audit(
            session, actor=actor(officer, state.deid_key), action="R", entity_type="Report", entity_id=run_id
        )
    return _page(body)

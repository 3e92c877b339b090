"""Each pipeline run's compliance report, rendered from MLflow and the audit trail at request time
(the dashboard that lists them is `services.web.dashboard`, at /compliance).

Only a caller whose scopes read the audit trail (`AuditEvent.r`, the compliance role's) gets in, by
bearer token or the review page's session: no credentials are a 401, another role a 403, as
OperationOutcomes for tools and as pages (or the login form) for a browser.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from mlflow.tracking import MlflowClient
from starlette.responses import HTMLResponse

from clinrlhf.compliance.report import build_report
from clinrlhf.identity import actor
from clinrlhf.lineage.chain import RunNotFound, load_chain
from clinrlhf.settings import Settings
from clinrlhf.store import record_audit, transaction
from services.errors import APIError
from services.state import StateDep
from services.web.dashboard import Officer

PREFIX = "/compliance"
router = APIRouter(prefix=PREFIX, tags=["compliance"])
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


@router.get(
    "/report/{run_id}",
    name="compliance_report",
    summary="The compliance report of a pipeline run (or of one of its stages)",
)
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

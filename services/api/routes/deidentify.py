"""`POST /fhir/$deidentify`: a hospital de-identifies its own export before sharing it.

The same rule file as ingestion (`default_rules()`), and the same engine and report
(`privacy.deid.batch`). Nothing of the input is kept: the Bundle lives in this request's memory
only, errors are fixed text, and the one row written is an audit event holding counts.

The HMAC key is the request's own, drawn fresh and then forgotten, never the deployment's
`CLINRLHF_DEID_KEY`: with the deployment's key this route would be an oracle, telling whoever holds
the role the pseudonym and the date shift of any patient id they guess, which would undo the
pseudonyms and shifted dates of the store, its snapshots and every earlier export. The cost: one
patient gets the same pseudonym and shift only within one request (docs/deidentification.md).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from clinrlhf.identity import Principal, actor
from clinrlhf.store import record_audit
from privacy.deid import default_rules
from privacy.deid.batch import Batch, BatchError, deidentify_batch
from privacy.deid.split import split_bundle
from services.body import body_schema, read_json
from services.errors import APIError
from services.fhir.deidentify import BALLOT_OUT_DATA, OUT_DATA, OperationInputError, output, read_input
from services.responses import FHIR_JSON, FHIRResponse
from services.state import AppState, SessionDep, StateDep, require_scope

router = APIRouter(prefix="/fhir", tags=["FHIR"], default_response_class=FHIRResponse)
KEY_BYTES = 32


async def operation_body(request: Request) -> Any:
    return await read_json(request)


def _audit_id(batch: Batch) -> str:
    """The audit event's entity id: counts only (at most 64 characters for any realistic export)."""
    report = batch.report
    return f"patients={batch.patients} resources={report.resources_in} kept={report.resources_out}"[:64]


_DESCRIPTION = (
    "Send a Bundle (or Parameters with identifiableData) holding one or more patients; get Parameters "
    "with {data} (the Bundle, under the deployment's rule file and a key of this request's own) and "
    "report (counts by identifier type and method, k-anonymity; no values)."
)
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {FHIR_JSON: {"schema": {"type": "object"}}}},
    422: {"description": "a policy other than the rule file, no Patient, or a record the rules refuse"},
}
Caller = Annotated[Principal, Depends(require_scope("Deidentify", "c"))]
Body = Annotated[Any, Depends(operation_body)]


@router.post(
    "/$deidentify",
    summary="De-identify a Bundle (DARTS $deidentify)",
    description=_DESCRIPTION.format(data=OUT_DATA),
    responses=_RESPONSES,
    openapi_extra=body_schema(None, FHIR_JSON),
)
def deidentify(principal: Caller, body: Body, state: StateDep, session: SessionDep) -> FHIRResponse:
    return _deidentify(principal, body, state, session, OUT_DATA)


@router.post(
    "/$de-identify",
    summary="De-identify a Bundle (the DARTS 1.0.0 ballot's name for $deidentify)",
    description=_DESCRIPTION.format(data=BALLOT_OUT_DATA),
    responses=_RESPONSES,
    openapi_extra=body_schema(None, FHIR_JSON),
)
def de_identify(principal: Caller, body: Body, state: StateDep, session: SessionDep) -> FHIRResponse:
    return _deidentify(principal, body, state, session, BALLOT_OUT_DATA)


def _deidentify(
    principal: Principal, body: Any, state: AppState, session: Session, data_name: str
) -> FHIRResponse:
    rules = default_rules()
    try:
        bundle = read_input(body, rules).bundle
        patients, unlinked = split_bundle(bundle)
        if not patients:
            raise OperationInputError(422, "the Bundle holds no Patient", "processing")
        batch = deidentify_batch(
            patients, unlinked, key=secrets.token_bytes(KEY_BYTES), today=date.today(), rules=rules
        )
    except OperationInputError as err:
        raise APIError(err.status, err.message, code=err.code) from None
    except BatchError as err:
        raise APIError(422, str(err), code="processing") from None
    report = json.dumps(batch.report.to_dict(), sort_keys=True, separators=(",", ":")).encode()
    with session.begin():  # audited before it is answered: an unaudited de-identification never leaves
        record_audit(
            session,
            actor=actor(principal, state.deid_key),
            action="E",
            entity_type="Deidentify",
            entity_id=_audit_id(batch),
            entity_sha256=hashlib.sha256(report).hexdigest(),  # binds the report the caller received
        )
    return FHIRResponse(output(batch, data_name))

"""Every error is a FHIR OperationOutcome with the right status, and never quotes the request.

Diagnostics are fixed text written here, or schema locations (field names and list indexes) taken
from validation errors; input values are never copied into a response or a log line.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from clinrlhf.store.outage import Outage, outage_of
from services.responses import FHIRResponse

log = logging.getLogger(__name__)

# HTTP status -> FHIR IssueType (https://hl7.org/fhir/R4/valueset-issue-type.html)
ISSUE_CODES = {
    400: "structure",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    412: "incomplete",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
    429: "throttled",
    500: "exception",
    503: "transient",
    507: "no-store",
}
DEFAULT_MESSAGES = {
    400: "bad request",
    401: "authentication required",
    403: "not permitted",
    404: "not found",
    405: "method not allowed",
    413: "request body too large",
    415: "unsupported media type",
    422: "request could not be processed",
    500: "internal error",
    503: "service unavailable",
    507: "insufficient storage",
}
# How long a client should wait before retrying after a database outage: about what a PostgreSQL
# restart or failover takes, and long enough that retrying clients do not keep a recovering
# database busy.
RETRY_AFTER_SECONDS = 2
_OUTAGES = {
    Outage.UNAVAILABLE: (503, "no-store", "the database is unavailable; nothing was stored, try again"),
    Outage.LOCKED: (503, "lock-error", "the database is locked; nothing was stored, try again"),
    Outage.FULL: (507, "no-store", "the database has no room left; nothing was stored"),
}


class APIError(Exception):
    """An error to report as an OperationOutcome. `message` must not contain request content."""

    def __init__(
        self, status: int, message: str, *, code: str | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.code = code or ISSUE_CODES.get(status, "processing")
        self.headers = dict(headers or {})


def operation_outcome(code: str, diagnostics: str, severity: str = "error") -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


def outcome_response(
    status: int,
    message: str | None = None,
    *,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = operation_outcome(
        code or ISSUE_CODES.get(status, "processing"), message or DEFAULT_MESSAGES.get(status, "error")
    )
    return FHIRResponse(body, status_code=status, headers=dict(headers or {}))


def describe_errors(errors: Sequence[Mapping[str, Any]], limit: int = 5) -> str:
    """`loc: type` for the first few errors. Locations are schema names and list indexes; the one
    place where a location is the caller's own text, an unknown key, is replaced by a placeholder."""
    parts = []
    for err in errors[:limit]:
        loc = [str(p) for p in err.get("loc", ()) if isinstance(p, int | str)]
        if err.get("type") == "extra_forbidden" and loc:
            loc[-1] = "(unknown field)"
        parts.append(f"{'.'.join(loc) or '(root)'}: {err.get('type', 'invalid')}")
    more = f" (+{len(errors) - limit} more)" if len(errors) > limit else ""
    return "; ".join(parts) + more


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    return outcome_response(exc.status, exc.message, code=exc.code, headers=exc.headers)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    # Framework messages ("Not Found", "Method Not Allowed") are generic; our own are fixed text.
    message = exc.detail if isinstance(exc.detail, str) else None
    return outcome_response(exc.status_code, message, headers=exc.headers)


async def validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return outcome_response(400, "request body is not valid JSON", code="structure")
    return outcome_response(422, f"request failed validation: {describe_errors(errors)}", code="invalid")


async def _store_error(request: Request, exc: Exception) -> Response:
    """A database that is down, locked or full is the service's trouble, not the request's, and it
    passes: 503 (507 when full) with Retry-After. Any other database error is a bug: re-raised, so
    that ErrorShield logs it and answers 500."""
    outage = outage_of(exc)
    if outage is None:
        raise exc
    status, code, message = _OUTAGES[outage]
    # Type names only: a driver's message can quote the statement and its parameters.
    cause = type(getattr(exc, "orig", None) or exc).__name__
    log.warning("database %s (%s) in %s %s", outage.value, cause, request.method, request.url.path)
    return outcome_response(status, message, code=code, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(APIError, _api_error)
    app.add_exception_handler(SQLAlchemyError, _store_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, validation_error)

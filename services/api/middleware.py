"""ASGI middleware at the door: body limits and media types before any parsing, and a last-resort
handler that turns any unexpected exception into a 500 OperationOutcome without logging content."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.asgi import on_response_start
from services.errors import outcome_response

log = logging.getLogger("services.api")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON_TYPES = frozenset({"application/json", "application/fhir+json"})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def is_json_media_type(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media in JSON_TYPES or (media.startswith("application/") and media.endswith("+json"))


class RequestGuard:
    """Reject bodies over `max_body_bytes` (413) and non-JSON bodies (415) before the app reads them.

    The body is read here in full, up to the limit, whether or not a Content-Length was sent, and
    replayed to the app: a chunked upload cannot slip past the limit.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app, self.max_body_bytes = app, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        if not is_json_media_type(_header(scope, b"content-type")):
            await outcome_response(415, "send JSON: application/json or application/fhir+json")(
                scope, receive, send
            )
            return
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await self._too_large(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body, only a disconnect can follow
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"request body exceeds {self.max_body_bytes} bytes"
        await outcome_response(413, message, headers={"Connection": "close"})(scope, receive, send)


class ErrorShield:
    """The last resort: any exception becomes a 500 OperationOutcome. Only the exception type and
    the code locations are logged; exception messages can quote data, so they are not."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        def mark_started(_: Message) -> None:
            nonlocal started
            started = True

        try:
            await on_response_start(self.app, scope, receive, send, mark_started)
        except Exception as exc:  # noqa: BLE001 -- the whole point is to catch everything
            log.error(
                "unhandled %s in %s %s at %s",
                type(exc).__name__,
                scope.get("method"),
                scope.get("path"),
                where(exc),
            )
            if not started:
                await outcome_response(500)(scope, receive, send)


def where(exc: BaseException) -> str:
    """`file:line in function` frames of a traceback, innermost last, with no message or locals."""
    frames: Any = traceback.extract_tb(exc.__traceback__)[-6:]
    return " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} in {f.name}" for f in reversed(frames))

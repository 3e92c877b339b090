"""Access logs keep method, route and status: the route's template (`/fhir/QuestionnaireResponse/
{review_id}`), never the path as sent nor its query string. A path can carry a patient's name or an
identifier, and the log outlives the request.

uvicorn writes the access line from inside the app's `send` of the last body chunk, in the request's
own context: `RouteTemplate` (outermost middleware) remembers the matched route in a context
variable when the response starts, and `RouteOnly` rewrites uvicorn's record from it.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from services.asgi import on_response_start

UNMATCHED = "(no route)"  # a path no route matched: may be anything the caller typed
_ROUTE: ContextVar[str] = ContextVar("clinrlhf_access_route", default=UNMATCHED)


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED
    if isinstance(route, Mount):
        path += "/{path}"  # static files: the file name is ours, but say no more than the mount
    return str(scope.get("root_path", "")).rstrip("/") + path


class RouteTemplate:
    """Remember the matched route's template for the access log, when the response starts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await on_response_start(self.app, scope, receive, send, lambda _: _ROUTE.set(route_template(scope)))


class RouteOnly(logging.Filter):
    """Rewrite uvicorn access records `(client, method, path?query, http_version, status)`: the
    path becomes the route template (UNMATCHED outside a matched request, e.g. a 400 from the
    HTTP parser)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], _ROUTE.get(), args[3], args[4])
        return True


def install_access_log_filter(logger_name: str = "uvicorn.access") -> None:
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RouteOnly) for f in logger.filters):
        logger.addFilter(RouteOnly())

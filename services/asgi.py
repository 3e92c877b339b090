"""The step every pure-ASGI middleware here shares (no BaseHTTPMiddleware: nothing buffers or
re-threads a body): call the app and look at the response's start message on its way out."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send


async def on_response_start(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, seen: Callable[[Message], object]
) -> None:
    """Call `app`; `seen` gets each `http.response.start` message (and may add headers to it) before
    it is sent. Scopes other than HTTP (lifespan, websocket) pass straight through."""
    if scope["type"] != "http":
        await app(scope, receive, send)
        return

    async def watched(message: Message) -> None:
        if message["type"] == "http.response.start":
            seen(message)
        await send(message)

    await app(scope, receive, watched)

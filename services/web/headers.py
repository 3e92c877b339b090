"""Security headers on every response (OWASP Secure Headers): the review page loads only its own
script and stylesheet, cannot be framed, and leaks no URL in a Referer header."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.asgi import on_response_start

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


# HSTS on responses served over TLS (RFC 6797 ignores it over plain HTTP). A year, the usual value;
# no `preload`, which is a promise about every subdomain that only the operator can make.
HSTS = "max-age=31536000; includeSubDomains"


class SecurityHeaders:
    """Pure ASGI (no BaseHTTPMiddleware): it adds headers without buffering or re-threading a body.
    The scheme is the connection's, or a configured proxy's (`services.api.app`), never a header
    anyone else sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        def add_headers(message: Message) -> None:
            headers = MutableHeaders(scope=message)
            for name, value in SECURITY_HEADERS.items():
                headers.setdefault(name, value)
            if scope.get("scheme") == "https":
                headers.setdefault("Strict-Transport-Security", HSTS)

        await on_response_start(self.app, scope, receive, send, add_headers)

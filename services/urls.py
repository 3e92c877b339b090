"""URLs this service gives out (redirects, `Location`, links in cards): under the configured
`CLINRLHF_PUBLIC_BASE_URL`, or a path relative to this host when none is set. Never built from the
request's Host header, which whoever sends the request chooses: echoed into a redirect or a card's
link, it would send a clinician to another site."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request


def public_url(request: Request, name: str, **path_params: Any) -> str:
    """The URL of the route `name`: absolute under the public base URL, else an absolute path."""
    path = str(request.app.url_path_for(name, **path_params))
    root = str(request.scope.get("root_path", "")).rstrip("/")  # mounted under a prefix
    base = request.app.state.clinrlhf.settings.public_base_url
    return (base.rstrip("/") if base else "") + root + path

"""What `clinrlhf serve` says before it starts: which policy it serves, whether that is the version
approved for production, and where clinicians and compliance officers go.

By default serve takes the version the MLflow alias `production` names (its local copy, written by
`clinrlhf promote`), else the latest aligned policy (clinrlhf.policy.pointers.resolve_policy). Only
the first is approved: anything else is served with a NOT APPROVED line (clinrlhf.policy.served),
and the review page marks its suggestions the same way (services.web.production)."""

from __future__ import annotations

from pathlib import Path

from clinrlhf.policy.served import served_status

# Bound to every interface, the server is reached from this machine on localhost.
_ANY = {"0.0.0.0", "::", ""}


def url_lines(host: str, port: int, public_base_url: str | None) -> list[str]:
    base = (public_base_url or f"http://{'localhost' if host in _ANY else host}:{port}").rstrip("/")
    return [f"review page: {base}/review", f"compliance: {base}/compliance"]


def startup_lines(home: Path, policy: Path, host: str, port: int, public_base_url: str | None) -> list[str]:
    return [served_status(home, policy)[1], *url_lines(host, port, public_base_url)]

"""What `clinrlhf serve` says before it starts: which policy it serves, whether that is the version
approved for production, and where clinicians and compliance officers go.

By default serve takes the version the MLflow alias `production` names (its local copy, written by
`clinrlhf promote`), else the latest aligned policy (clinrlhf.policy.pointers.resolve_policy). Only
the first is approved: anything else is served with a NOT APPROVED line, and the review page marks
its suggestions the same way (services.web.production)."""

from __future__ import annotations

from pathlib import Path

from clinrlhf.policy.pointers import production_policy
from clinrlhf.policy.version import model_version

# Bound to every interface, the server is reached from this machine on localhost.
_ANY = {"0.0.0.0", "::", ""}


def policy_line(home: Path, policy: Path) -> str:
    version = model_version(policy)
    production = production_policy(home)
    if production is not None and Path(production.path).resolve() == policy.resolve():
        return f"serving policy {version}: the production version {production.name} v{production.version} (approved)"
    where = (
        f"{production.name} v{production.version} is the production version; serve it with no --policy"
        if production is not None
        else "no version is in production; `clinrlhf approve` then `clinrlhf promote` puts one there"
    )
    return f"serving policy {version}: NOT APPROVED for production ({where}). Its suggestions are for review only."


def url_lines(host: str, port: int, public_base_url: str | None) -> list[str]:
    base = (public_base_url or f"http://{'localhost' if host in _ANY else host}:{port}").rstrip("/")
    return [f"review page: {base}/review", f"compliance: {base}/compliance"]


def startup_lines(home: Path, policy: Path, host: str, port: int, public_base_url: str | None) -> list[str]:
    return [policy_line(home, policy), *url_lines(host, port, public_base_url)]

"""Who launched a training run, as people read it: the display name of a verified token
(CLINRLHF_TOKEN), or the operating-system user marked unverified. MLflow's own `mlflow.user` tag is
the OS user ("root" in a container), which says nothing about the person."""

from __future__ import annotations

import getpass

from clinrlhf.identity import MemoryJtiCache, TokenError, actor, actor_pseudonym, verify_token
from clinrlhf.settings import Settings

LAUNCHED_BY = "clinrlhf.launched_by"  # display name, or "unverified: <os user>"
LAUNCHED_BY_ACTOR = "clinrlhf.launched_by.actor"  # "<role>:<pseudonym>", as the audit trail names people


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid (some containers)
        return "unknown"


def launcher_tags(settings: Settings, token: str | None = None) -> dict[str, str]:
    """Tags naming who launched the run: from `token` (else CLINRLHF_TOKEN) when it verifies."""
    raw = token or (settings.token.get_secret_value().strip() if settings.token else "")
    if not raw:
        return {LAUNCHED_BY: f"unverified: {_os_user()}"}
    try:
        principal = verify_token(settings, raw, MemoryJtiCache())
    except TokenError as err:
        return {LAUNCHED_BY: f"unverified: {_os_user()} (token rejected: {err})"}
    alias = actor_pseudonym(principal, settings.deid_secret)
    by = f"{principal.name or alias} ({principal.role or 'external'})"
    return {LAUNCHED_BY: by, LAUNCHED_BY_ACTOR: actor(principal, settings.deid_secret)}

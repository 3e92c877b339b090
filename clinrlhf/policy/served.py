"""Whether the policy being served is the approved one, in one line for start-up and logs.

The approved version is the one the MLflow alias `production` names (its local copy, written by
`clinrlhf promote`; clinrlhf.policy.pointers). Any other policy is served marked NOT APPROVED."""

from __future__ import annotations

from pathlib import Path

from clinrlhf.policy.pointers import production_policy
from clinrlhf.policy.version import ModelIdentity, model_version


def served_status(home: Path, policy: Path) -> tuple[bool, str]:
    """(approved, "serving policy <model version>: …") for the policy folder `policy`."""
    version = model_version(policy)
    production = production_policy(home)
    if production is not None and Path(production.path).resolve() == policy.resolve():
        return (
            True,
            f"serving policy {version}: the production version {production.name} v{production.version} (approved)",
        )
    where = (
        f"{production.name} v{production.version} is the production version; serve it with no --policy"
        if production is not None
        else "no version is in production; `clinrlhf approve` then `clinrlhf promote` puts one there"
    )
    return (
        False,
        f"serving policy {version}: NOT APPROVED for production ({where}). Its suggestions are for review only.",
    )


def served_identity(home: Path, policy: Path, version: str) -> ModelIdentity:
    """The identity cards name for the policy folder `policy` (whose model version is `version`):
    the production version's registry name, version and training run when `policy` is it; the
    weights alone otherwise (an unapproved policy is not known to serving as a registered version)."""
    production = production_policy(home)
    if production is not None and Path(production.path).resolve() == policy.resolve():
        return ModelIdentity(version, production.name, production.version, production.run_id or None)
    return ModelIdentity(version)

"""Where aligned policies live under CLINRLHF_HOME, and which one serving uses by default: the
version promoted to production if there is one, else the latest aligned policy."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from clinrlhf.settings import Settings

_POINTER = "LATEST_ALIGNED"
_PRODUCTION = "PRODUCTION"


def models_dir(home: Path) -> Path:
    path = home / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def set_latest_aligned(home: Path, policy_dir: Path) -> None:
    pointer = models_dir(home) / _POINTER
    tmp = pointer.with_suffix(".tmp")
    tmp.write_text(str(policy_dir.resolve()))
    tmp.replace(pointer)  # atomic: a concurrent reader sees the old or the new path, never half


def latest_aligned(home: Path) -> Path | None:
    pointer = models_dir(home) / _POINTER
    return Path(pointer.read_text().strip()) if pointer.exists() else None


@dataclass(frozen=True)
class ProductionPolicy:
    """The local copy of the registered version that the MLflow alias `production` names.

    Serving reads this file on every request, so it follows a promotion without asking MLflow
    (an MLflow store takes about a second to open); `clinrlhf promote` and `rollback` write it
    right after they move the alias."""

    name: str
    version: str
    uri: str
    path: str
    # The MLflow run that trained the version, which the cards' AI transparency names; "" in a
    # pointer written before it was kept.
    run_id: str = ""


def set_production(home: Path, production: ProductionPolicy) -> None:
    pointer = models_dir(home) / _PRODUCTION
    tmp = pointer.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(production), indent=2))
    tmp.replace(pointer)  # atomic, as for LATEST_ALIGNED


def production_policy(home: Path) -> ProductionPolicy | None:
    pointer = models_dir(home) / _PRODUCTION
    return ProductionPolicy(**json.loads(pointer.read_text())) if pointer.exists() else None


MLFLOW_SCHEMES = ("runs:/", "models:/", "mlflow-artifacts:/")
NO_POLICY = "no aligned policy under $CLINRLHF_HOME; run `clinrlhf quickstart` or pass --policy"


class PolicyNotFoundError(LookupError):
    """No policy directory can be found where the configuration points."""


def _is_policy_dir(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def download_policy(settings: Settings, uri: str) -> Path:
    """The local policy directory of an MLflow model or artifact URI, downloaded under CLINRLHF_HOME."""
    import mlflow  # heavy; only needed for model URIs

    dst = settings.resolved_home / "models" / "mlflow" / hashlib.sha256(uri.encode()).hexdigest()[:16]
    dst.mkdir(parents=True, exist_ok=True)
    try:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=str(dst), tracking_uri=settings.mlflow_tracking_uri
            )
        )
    except Exception as err:  # MLflow raises many types; the URI is the user's own argument
        raise PolicyNotFoundError(f"cannot download {uri}: {type(err).__name__}") from None
    candidates = sorted(
        (p.parent for p in [local / "config.json", *local.rglob("config.json")] if _is_policy_dir(p.parent)),
        key=lambda p: len(p.parts),
    )
    if not candidates:
        raise PolicyNotFoundError(f"{uri} holds no policy (no config.json)")
    return candidates[0]


def resolve_policy(settings: Settings, location: str | None = None) -> Path:
    """The local policy directory to serve: `location` (a folder or an MLflow model URI), else
    ``settings.policy``, else the version promoted to production, else the latest aligned policy
    under ``settings.resolved_home``."""
    location = location or (str(settings.policy) if settings.policy else None)
    if location is None:
        production = production_policy(settings.resolved_home)
        if production is not None:
            # Never fall back to an unapproved policy when the promoted one has gone missing.
            if not _is_policy_dir(Path(production.path)):
                raise PolicyNotFoundError(
                    f"production version {production.version} is missing at {production.path}; "
                    "run `clinrlhf promote` or `clinrlhf rollback` again"
                )
            return Path(production.path)
        latest = latest_aligned(settings.resolved_home)
        if latest is None or not _is_policy_dir(latest):
            raise PolicyNotFoundError(NO_POLICY)
        return latest
    if location.startswith(MLFLOW_SCHEMES):
        return download_policy(settings, location)
    path = Path(location).expanduser().resolve()
    if not _is_policy_dir(path):
        raise PolicyNotFoundError(f"{path} is not a policy directory (no config.json)")
    return path

"""`clinrlhf serve`: the CDS Hooks and FHIR API, on uvicorn."""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path

from clinrlhf.cli import CLIError
from clinrlhf.policy.registry import latest_aligned
from clinrlhf.settings import MissingSecretError, Settings, load_settings

MLFLOW_SCHEMES = ("runs:/", "models:/", "mlflow-artifacts:/")
NO_POLICY = "no aligned policy under $CLINRLHF_HOME; run `clinrlhf quickstart` or pass --policy"


class PolicyNotFoundError(LookupError):
    """No policy directory can be found where the configuration points."""


def _is_policy_dir(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def _from_mlflow(settings: Settings, uri: str) -> Path:
    import mlflow  # heavy; only needed for model URIs

    dst = settings.resolved_home / "models" / "mlflow" / hashlib.sha256(uri.encode()).hexdigest()[:16]
    dst.mkdir(parents=True, exist_ok=True)
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst),
                                                         tracking_uri=settings.mlflow_tracking_uri))
    except Exception as err:  # MLflow raises many types; the URI is the user's own argument
        raise PolicyNotFoundError(f"cannot download {uri}: {type(err).__name__}") from None
    candidates = sorted((p.parent for p in [local / "config.json", *local.rglob("config.json")]
                         if _is_policy_dir(p.parent)), key=lambda p: len(p.parts))
    if not candidates:
        raise PolicyNotFoundError(f"{uri} holds no policy (no config.json)")
    return candidates[0]


def resolve_policy(settings: Settings, location: str | None = None) -> Path:
    """The local policy directory to serve: `location` (a folder or an MLflow model URI), else
    ``settings.policy``, else the latest aligned policy under ``settings.resolved_home``."""
    location = location or (str(settings.policy) if settings.policy else None)
    if location is None:
        latest = latest_aligned(settings.resolved_home)
        if latest is None or not _is_policy_dir(latest):
            raise PolicyNotFoundError(NO_POLICY)
        return latest
    if location.startswith(MLFLOW_SCHEMES):
        return _from_mlflow(settings, location)
    path = Path(location).expanduser().resolve()
    if not _is_policy_dir(path):
        raise PolicyNotFoundError(f"{path} is not a policy directory (no config.json)")
    return path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "serve", help="serve the CDS Hooks and FHIR API",
        description="Serve CDS Hooks 2.0 (GET /cds-services, POST /cds-services/clinrlhf-treatment and its "
        "/feedback) and FHIR R4 (GET /fhir/metadata, POST /fhir/QuestionnaireResponse). Every request body is "
        "de-identified at the door; GET /healthz needs no token, everything else a bearer token "
        "(see `clinrlhf token`).")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument("--policy", metavar="PATH_OR_MODEL_URI", default=None,
                        help="policy folder or MLflow model URI (runs:/..., models:/...); "
                        "default: the latest aligned policy in $CLINRLHF_HOME")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    try:
        policy = resolve_policy(settings, args.policy)
        settings.deid_secret  # noqa: B018 -- fail now, not on the first request, if production lacks the key
    except (PolicyNotFoundError, MissingSecretError) as err:
        raise CLIError(str(err)) from None
    if args.workers < 1:
        raise CLIError("--workers must be at least 1")
    import uvicorn

    # The app factory reads its settings from the environment, in this process or in each worker.
    os.environ["CLINRLHF_POLICY"] = str(policy)
    uvicorn.run("services.api.app:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level=args.log_level, proxy_headers=False)
    return 0

"""`clinrlhf serve`: the CDS Hooks and FHIR API, on uvicorn."""

from __future__ import annotations

import argparse
import os
import sys

from clinrlhf.cli import CLIError

# A TCP port; uvicorn would take 99999 modulo 65536 (34463) without a word, and 0 as "any free port".
PORTS = range(1, 65536)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "serve",
        help="serve the CDS Hooks and FHIR API",
        description="Serve CDS Hooks 2.0 (GET /cds-services, POST /cds-services/clinrlhf-treatment and its "
        "/feedback) and FHIR R4 (GET /fhir/metadata, POST /fhir/QuestionnaireResponse). Every request body is "
        "de-identified at the door; GET /healthz needs no token, everything else a bearer token "
        "(see `clinrlhf token`).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument(
        "--policy",
        metavar="PATH_OR_MODEL_URI",
        default=None,
        help="policy folder or MLflow model URI (runs:/..., models:/...); default: the version the "
        "MLflow alias `production` names, else the latest aligned policy in $CLINRLHF_HOME, which "
        "is served marked NOT APPROVED",
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.port not in PORTS:
        raise CLIError(f"--port {args.port} is not a TCP port (1-65535)")
    from clinrlhf.policy.pointers import PolicyNotFoundError, resolve_policy
    from clinrlhf.settings import MissingSecretError, load_settings

    settings = load_settings()
    try:
        policy = resolve_policy(settings, args.policy)
        settings.deid_secret  # noqa: B018 -- fail now, not on the first request, if production lacks the key
        settings.audit_secret  # noqa: B018 -- likewise the audit trail's key
    except (PolicyNotFoundError, MissingSecretError) as err:
        raise CLIError(str(err)) from None
    generated = (
        sorted(p.name for p in settings.keys_dir.glob("*.key")) if settings.env == "development" else []
    )
    if generated:  # development keys are never used silently
        print(
            f"clinrlhf serve: development keys generated in {settings.keys_dir} are in use "
            f"({', '.join(generated)}); production needs CLINRLHF_DEID_KEY and CLINRLHF_AUDIT_KEY",
            file=sys.stderr,
        )
    if args.workers < 1:
        raise CLIError("--workers must be at least 1")
    from clinrlhf.cli.serve_startup import startup_lines

    for line in startup_lines(settings.resolved_home, policy, args.host, args.port, settings.public_base_url):
        print(f"clinrlhf serve: {line}", file=sys.stderr)
    import uvicorn

    # The app factory reads its settings from the environment, in this process or in each worker.
    os.environ["CLINRLHF_POLICY"] = str(policy)
    uvicorn.run(
        "services.api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        # h11, not httptools: httptools has no bound on header size (four requests with 32 MB
        # headers took a server from 656 MB to 1.07 GB); h11 refuses a request line plus headers
        # over the bound with 400 before buffering more.
        http="h11",
        h11_max_incomplete_event_size=settings.max_header_bytes,
        # Forwarded headers are believed only from CLINRLHF_TRUSTED_PROXIES, by the app itself
        # (services.api.app); uvicorn's own handling, which trusts 127.0.0.1 by default, stays off.
        proxy_headers=False,
    )
    return 0

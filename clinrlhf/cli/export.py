"""`clinrlhf export`: a versioned, de-identified snapshot of the feedback, as NDJSON plus its SHA-256."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clinrlhf.cli import CLIError

if TYPE_CHECKING:  # the store pulls in SQLAlchemy: imported when the command runs, not for --help
    from clinrlhf.store import Snapshot


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "export",
        help="export the feedback as a de-identified NDJSON snapshot plus its SHA-256",
        description="Export every stored judgment (reviews and CDS feedback, de-identified) as "
        "judgments-<version>.ndjson, with judgments-<version>.ndjson.sha256 (`sha256sum -c` format) and a "
        "judgments-<version>.json manifest. The version is the UTC time and the first 12 hex digits of the "
        "SHA-256. The export is recorded in the audit trail. Prints the manifest as JSON.",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder for the files (default: $CLINRLHF_HOME/exports)",
    )
    parser.set_defaults(func=run)


def manifest(snapshot: Snapshot, name: str) -> dict[str, Any]:
    from clinrlhf.store import SNAPSHOT_FORMAT
    from clinrlhf.world.world import load_world
    from privacy.deid import config_sha256

    return {
        "format": SNAPSHOT_FORMAT,
        "version": snapshot.version,
        "file": name,
        "sha256": snapshot.sha256,
        "judgments": snapshot.judgments,
        "kinds": snapshot.kinds,
        "created": snapshot.created.isoformat() + "Z",
        "world_sha256": load_world().sha256,
        "deid_config_sha256": config_sha256(),
    }


def _stage(out: Path, snapshot: Snapshot, staged: list[tuple[Path, Path]]) -> dict[str, Any]:
    """Write the three files under temporary names, listing each in `staged` (partial, final): they
    are published only once the audit event has committed."""
    name = f"judgments-{snapshot.version}.ndjson"
    described = manifest(snapshot, name)
    contents = {
        name: snapshot.ndjson,
        f"{name}.sha256": f"{snapshot.sha256}  {name}\n".encode(),
        f"judgments-{snapshot.version}.json": (json.dumps(described, indent=2) + "\n").encode(),
    }
    for filename, data in contents.items():
        partial = out / f".{filename}.partial"
        staged.append((partial, out / filename))
        partial.write_bytes(data)
    return described


def run(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from clinrlhf.settings import load_settings
    from clinrlhf.store import deployment_store, export_snapshot, transaction
    from clinrlhf.world.world import load_world

    settings = load_settings()
    out = (args.out or settings.resolved_home / "exports").expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CLIError(f"cannot create {out} ({err.strerror})") from None
    staged: list[tuple[Path, Path]] = []
    try:
        with transaction(deployment_store(settings)) as session:
            snapshot = export_snapshot(session, actor="cli", world=load_world())
            described = _stage(out, snapshot, staged)
    except (SQLAlchemyError, OSError) as err:  # nothing is published, and the audit event rolled back
        for partial, _ in staged:
            partial.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise CLIError(f"cannot write to {out} ({err.strerror})") from None
        raise CLIError(f"cannot read the store ({type(err).__name__})") from None
    for partial, final in staged:
        os.replace(partial, final)
    print(json.dumps(described, indent=2))
    return 0

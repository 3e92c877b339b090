"""`clinrlhf ingest`: de-identify FHIR R4 Bundles or Bulk Data NDJSON and store the cases.

File names often carry patient names (Synthea's do), so messages name files by their position on
the command line ("PATH argument 2", or "PATH argument 1 file 3 of 12" inside a folder, in name
order), never by path or content.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clinrlhf.cli import CLIError

if TYPE_CHECKING:  # the store pulls in SQLAlchemy: imported when the command runs, not for --help
    from clinrlhf.store.ingest import IngestSummary


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "ingest",
        help="de-identify FHIR R4 Bundles (.json) or Bulk Data NDJSON (.ndjson) and store the cases",
        description="Read FHIR R4 Bundles (.json; one or several patients each) or Bulk Data NDJSON exports "
        "(.ndjson; one resource per line, grouped by patient reference across all the files given), "
        "de-identify each patient at the door and store the de-identified cases. Bundles without a Patient "
        "(e.g. Synthea's hospital and practitioner files) are skipped, as are patients whose record cannot be read; "
        "each skip is one line on stderr naming the file by its place on the command line and the reason. "
        "A folder stands for the .json and .ndjson files in it. Prints a JSON summary. All or nothing: "
        "an unreadable file stores nothing. The batch's de-identification report (counts by identifier type and "
        "method, k-anonymity of age band, sex and ZIP3; no PHI) is written under CLINRLHF_HOME/reports/deid.",
    )
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", type=Path, help=".json Bundle, .ndjson file, or a folder of them"
    )
    parser.add_argument(
        "--today",
        type=date.fromisoformat,
        default=None,
        metavar="YYYY-MM-DD",
        help="date the records are read on, for ages (default: today)",
    )
    parser.set_defaults(func=run)


def _sources(paths: list[Path]) -> Iterator[tuple[str, Path]]:
    """(name, file) for each file to read: a folder stands for its .json and .ndjson files."""
    for n, path in enumerate(paths, 1):
        if not path.is_dir():
            yield f"PATH argument {n}", path
            continue
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in (".json", ".ndjson"))
        if not files:
            raise CLIError(f"PATH argument {n}: a folder without .json or .ndjson files")
        for i, file in enumerate(files, 1):
            yield f"PATH argument {n} file {i} of {len(files)}", file


def _read_json(path: Path, n: str) -> Any:
    try:
        with path.open("rb") as f:
            return json.load(f)
    except FileNotFoundError:
        raise CLIError(f"{n}: no such file") from None
    except IsADirectoryError:
        raise CLIError(f"{n}: is a directory") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CLIError(f"{n}: not valid JSON") from None


def _read_ndjson(path: Path, n: str) -> Iterator[Mapping[str, Any]]:
    try:
        with path.open("rb") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    resource = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    raise CLIError(f"{n} line {line_no}: not valid JSON") from None
                if not isinstance(resource, Mapping) or not isinstance(resource.get("resourceType"), str):
                    raise CLIError(f"{n} line {line_no}: not a FHIR resource")
                yield resource
    except FileNotFoundError:
        raise CLIError(f"{n}: no such file") from None
    except IsADirectoryError:
        raise CLIError(f"{n}: is a directory") from None


def run(args: argparse.Namespace) -> int:
    from clinrlhf.settings import MissingSecretError, load_settings
    from clinrlhf.store import deployment_store, transaction
    from clinrlhf.store.ingest import IngestSummary, split_bundle, split_by_patient

    settings = load_settings()
    try:
        key = settings.deid_secret
    except MissingSecretError as err:
        raise CLIError(str(err)) from None
    today = args.today or date.today()
    summary, pooled = IngestSummary(), []
    with transaction(deployment_store(settings)) as session:
        for n, path in _sources(args.paths):
            if path.suffix.lower() == ".ndjson":
                pooled += list(_read_ndjson(path, n))  # Bulk Data splits one patient across files
                continue
            if path.suffix.lower() != ".json":
                raise CLIError(f"{n}: expected a .json Bundle or an .ndjson file")
            bundle = _read_json(path, n)
            if (
                not isinstance(bundle, Mapping)
                or bundle.get("resourceType") != "Bundle"
                or not isinstance(bundle.get("entry", []), list)
            ):
                raise CLIError(f"{n}: not a FHIR Bundle")
            _ingest(session, *split_bundle(bundle), summary, key, today, n)
        if pooled:
            _ingest(session, *split_by_patient(pooled), summary, key, today, "the NDJSON files")
    for skip in summary.skips:
        print(f"clinrlhf ingest: {skip.line()}", file=sys.stderr)
    report = summary.finish()
    path = write_report(settings.resolved_home, report.to_dict())
    out = summary.to_dict() | {"deid_report": str(path), "k_anonymity": report.k_anonymity}
    print(json.dumps(out, indent=2))
    return 0


def write_report(home: Path, report: dict[str, Any]) -> Path:
    """`home/reports/deid/ingest-<UTC time>.json`: counts and rule-file identity only, no PHI."""
    folder = home / "reports" / "deid"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = folder / f"ingest-{stamp}.json"
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return path


def _ingest(
    session: Any,
    bundles: list[dict[str, Any]],
    unlinked: Any,
    summary: IngestSummary,
    key: bytes,
    today: date,
    source: str,
) -> None:
    from clinrlhf.store.ingest import Skip, ingest_patient_bundles

    summary.dropped.update(unlinked)
    if not bundles:
        summary.skipped["no-patient"] += 1
        summary.skips.append(Skip(source, "the Bundle holds no Patient"))
        return
    ingest_patient_bundles(session, bundles, key=key, today=today, summary=summary, source=source)

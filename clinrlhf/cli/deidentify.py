"""`clinrlhf deidentify IN [OUT]`: de-identify a FHIR export for sharing, and print its report.

The same rule file, engine and report as `clinrlhf ingest` and `POST /fhir/$deidentify`, and like
the operation a key of the run's own: nothing is read from or written to the deployment (no
settings, no store, no CLINRLHF_HOME), so a hospital can run it on the machine that holds the
export. Messages name the input and output as IN and OUT, never by path or content: file names
often carry patient names (Synthea's do).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from clinrlhf.cli import CLIError

STDIO = "-"
DESCRIPTION = """\
De-identify a FHIR R4 export before sharing it: every patient's record goes through the rule file
that ingestion uses (privacy/deid/rules/default.json), and the report says what was done, in counts
only (by identifier type, by method, by Safe Harbor category, and the k-anonymity of the patients'
age band, sex, ZIP3, race and ethnicity). Nothing is stored and nothing of the input is printed.

IN is a Bundle (.json, one or more patients; Synthea's files are such Bundles) or NDJSON: one FHIR
resource or Bundle per line, as a Bulk Data export writes it, its files concatenated. A resource
belongs to the Patient its `subject` or `patient` names; resources that name no patient of the
input are left out and counted under unlinked_resources. The output has the input's form: a Bundle
for a Bundle, one resource per line for NDJSON.

Ids and references become HMAC pseudonyms and dates move by a per-patient shift, under a key drawn
for this run and then forgotten: one run gives one patient one pseudonym and one shift, but two
runs give two, and neither matches the deployment's store. De-identify a whole export in one run.
"""
EPILOG = """\
examples:
  clinrlhf deidentify export.json shared.json              # report on stdout
  cat Patient.ndjson Condition.ndjson | clinrlhf deidentify - > shared.ndjson  # report on stderr
  clinrlhf deidentify export.ndjson shared.ndjson --report report.json

Exit status 0 when every patient was de-identified; 2, with one line on stderr, when the input
cannot be read or a patient's record is refused (nothing is written then).
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "deidentify",
        help="de-identify a FHIR Bundle or NDJSON export for sharing (nothing stored); print the report",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", metavar="IN", help="a .json Bundle or an .ndjson file; - for stdin")
    parser.add_argument(
        "output",
        metavar="OUT",
        nargs="?",
        default=STDIO,
        help="where to write the result (default: - for stdout)",
    )
    parser.add_argument(
        "--report",
        metavar="FILE",
        type=Path,
        default=None,
        help="write the report (JSON, counts only) here; by default it goes to stdout when OUT is a file "
        "and to stderr when OUT is stdout",
    )
    parser.add_argument(
        "--today",
        type=date.fromisoformat,
        default=None,
        metavar="YYYY-MM-DD",
        help="date the records are read on, for ages and the 90-year limit on dates (default: today)",
    )
    parser.set_defaults(func=run)


def _reason(err: OSError) -> str:
    """The system's reason without the path it names ("File name too long")."""
    return os.strerror(err.errno) if err.errno else type(err).__name__


def _read(source: str) -> bytes:
    if source == STDIO:
        return sys.stdin.buffer.read()
    try:
        return Path(source).read_bytes()
    except FileNotFoundError:
        raise CLIError("IN: no such file") from None
    except IsADirectoryError:
        raise CLIError("IN: is a directory, not a file") from None
    except PermissionError:
        raise CLIError("IN: not readable (permission denied)") from None
    except OSError as err:  # the system's own message quotes the path: give its reason alone
        raise CLIError(f"IN: cannot be read ({_reason(err)})") from None


def _is_bundle(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("resourceType") == "Bundle"


def _check_bundle(bundle: Mapping[str, Any], where: str) -> None:
    entries = bundle.get("entry", [])
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise CLIError(f"{where}: Bundle.entry is not a list of entries")


def _lines(data: bytes) -> Iterator[tuple[int, Mapping[str, Any]]]:
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            raise CLIError(f"IN line {number}: not valid JSON (NDJSON holds one resource per line)") from None
        if not isinstance(value, Mapping) or not isinstance(value.get("resourceType"), str):
            raise CLIError(f"IN line {number}: not a FHIR resource")
        yield number, value


def read_input(data: bytes) -> tuple[bool, list[Mapping[str, Any]], dict[int, str]]:
    """(is a Bundle, the resources, id() of a resource -> its Bundle entry's fullUrl)."""
    from privacy.deid.split import bundle_resources

    try:
        whole = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        whole = None
    if _is_bundle(whole):
        _check_bundle(whole, "IN")
        resources, full_urls = bundle_resources(whole)
        return True, resources, full_urls
    resources, full_urls = [], {}
    for number, value in _lines(data):
        if _is_bundle(value):  # a Bundle per line: its entries join the pool, fullUrls and all
            _check_bundle(value, f"IN line {number}")
            more, urls = bundle_resources(value)
            resources += more
            full_urls |= urls
        else:
            resources.append(value)
    if not resources:
        raise CLIError("IN: no FHIR resources (expected a Bundle or NDJSON)")
    return False, resources, full_urls


def _write(target: str, text: str, name: str) -> None:
    if target == STDIO:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        Path(target).write_text(text)
    except (FileNotFoundError, NotADirectoryError):
        raise CLIError(f"{name}: its folder does not exist") from None
    except IsADirectoryError:
        raise CLIError(f"{name}: is a directory") from None
    except PermissionError:
        raise CLIError(f"{name}: not writable (permission denied)") from None
    except OSError as err:
        raise CLIError(f"{name}: cannot be written ({_reason(err)})") from None


def run(args: argparse.Namespace) -> int:
    import secrets

    from privacy.deid import default_rules
    from privacy.deid.batch import BatchError, deidentify_batch
    from privacy.deid.split import split_by_patient

    is_bundle, resources, full_urls = read_input(_read(args.input))
    patients, unlinked = split_by_patient(resources, full_urls)
    if not patients:
        raise CLIError("IN: holds no Patient, so nothing can be de-identified")
    try:
        batch = deidentify_batch(
            patients,
            unlinked,
            key=secrets.token_bytes(32),
            today=args.today or date.today(),
            rules=default_rules(),
        )
    except BatchError as err:
        raise CLIError(f"IN: {err}") from None
    if is_bundle:
        data = json.dumps(batch.bundle, separators=(",", ":")) + "\n"
    else:
        data = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in batch.resources())
    report = batch.report.to_dict() | {"unlinked_resources": dict(sorted(batch.unlinked.items()))}
    report_text = json.dumps(report, indent=2, sort_keys=True) + "\n"
    _write(args.output, data, "OUT")
    if args.report is not None:
        _write(str(args.report), report_text, "--report FILE")
    else:
        (sys.stdout if args.output != STDIO else sys.stderr).write(report_text)
    return 0

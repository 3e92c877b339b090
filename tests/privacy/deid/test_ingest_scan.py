"""After `clinrlhf ingest` of the 11 Synthea patients, no byte under CLINRLHF_HOME (nor on stdout) holds
any of their identifiers: names, phone numbers, address lines, identifier values, birth dates and
patient ids, in plain text or inside a base64 run (as a clinical note would be stored)."""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import re
from datetime import date
from pathlib import Path

import pytest

from clinrlhf.cli import ingest

SYNTHEA = sorted((Path(__file__).parents[4] / "shared" / "data" / "synthea-r4").glob("*.json"))
_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/]{24,}={0,2}")


def identifiers(patient: dict) -> set[str]:
    found = {patient["id"], patient["birthDate"]}
    born = date.fromisoformat(patient["birthDate"])
    found |= {f"{born.month}/{born.day}/{born.year}", f"{born.month:02d}/{born.day:02d}/{born.year}"}
    for name in patient.get("name", []):
        for part in [*name.get("given", []), name.get("family", "")]:
            found |= {part, part.rstrip("0123456789")}
    found |= {t["value"] for t in patient.get("telecom", [])}
    found |= {i["value"] for i in patient.get("identifier", [])}
    for address in patient.get("address", []):
        found |= {*address.get("line", []), address.get("city", "")}
    return {s for s in found if len(s) >= 4}


def _decoded_runs(data: bytes) -> bytes:
    """Whatever decodes from base64 runs in `data`, so an encoded note cannot hide a name."""
    parts = []
    for run in _BASE64_RUN.findall(data):
        try:
            parts.append(base64.b64decode(run + b"=" * (-len(run) % 4)))
        except (binascii.Error, ValueError):
            continue
    return b"\n".join(parts)


def _run_ingest(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="clinrlhf")
    ingest.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["ingest", *argv])
    return int(args.func(args) or 0)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLINRLHF_HOME", str(tmp_path / "home"))
    for name in ("CLINRLHF_DATABASE_URL", "CLINRLHF_ENV", "CLINRLHF_DEID_KEY"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "home"


def test_no_patient_identifier_survives_ingest_anywhere_under_home(home: Path, capsys) -> None:
    assert len(SYNTHEA) == 13
    assert _run_ingest(*map(str, SYNTHEA), "--today", "2026-03-01") == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed)
    assert summary["cases"] == 11 and summary["k_anonymity"]["records"] == 11
    files = [p for p in sorted(home.rglob("*")) if p.is_file()]
    assert any(p.suffix == ".db" for p in files) and any("reports" in p.parts for p in files)
    on_disk = b"\n".join(p.read_bytes() for p in files) + printed.encode()
    haystack = (on_disk + _decoded_runs(on_disk)).lower()
    secrets: set[str] = set()
    for path in SYNTHEA:
        bundle = json.loads(path.read_bytes())
        secrets |= {
            s
            for e in bundle["entry"]
            if e["resource"]["resourceType"] == "Patient"
            for s in identifiers(e["resource"])
        }
    assert len(secrets) > 100
    leaked = [s for s in secrets if s.lower().encode() in haystack]
    assert not leaked, f"{len(leaked)} patient identifiers found under CLINRLHF_HOME"  # never print them


def test_the_batch_report_is_written_and_holds_only_counts(home: Path, capsys) -> None:
    _run_ingest(*map(str, SYNTHEA[:2]), "--today", "2026-03-01")
    path = Path(json.loads(capsys.readouterr().out)["deid_report"])
    report = json.loads(path.read_text())
    assert path.parent == home.resolve() / "reports" / "deid"
    assert report["bundles"] == 2 and report["rules"]["version"]
    assert report["by_identifier"]["name"] > 0 and report["text_entities"]["NAME"] > 0
    values = [
        v for section in ("by_identifier", "by_method", "text_entities") for v in report[section].values()
    ]
    assert all(isinstance(v, int) for v in values)

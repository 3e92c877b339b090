"""After `clinrlhf ingest` of the 11 Synthea patients, no byte under CLINRLHF_HOME (nor on stdout) holds
any of their identifiers: names, phone numbers, address lines, identifier values, birth dates and
patient ids, in plain text or inside a base64 run (as a clinical note would be stored)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from clinrlhf.cli import ingest
from tests.conftest import SYNTHEA, IdentifierScan


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


def test_no_patient_identifier_survives_ingest_anywhere_under_home(
    home: Path, capsys, synthea_scan: IdentifierScan
) -> None:
    assert len(SYNTHEA) == 13
    assert _run_ingest(*map(str, SYNTHEA), "--today", "2026-03-01") == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed)
    assert summary["cases"] == 11 and summary["k_anonymity"]["records"] == 11
    files = [p for p in sorted(home.rglob("*")) if p.is_file()]
    assert any(p.suffix == ".db" for p in files) and any("reports" in p.parts for p in files)
    on_disk = b"\n".join(p.read_bytes() for p in files) + printed.encode()
    assert len(synthea_scan.secrets) > 100
    leaked = synthea_scan.leaks(on_disk)
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

"""`clinrlhf ingest` says which file it skipped and why, on one line each, without quoting the record;
a folder argument stands for the .json and .ndjson files in it, in name order."""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import pytest

from clinrlhf.cli import ingest

SYNTHEA = sorted((Path(__file__).parents[4] / "shared" / "data" / "synthea-r4").glob("*.json"))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLINRLHF_HOME", str(tmp_path / "home"))
    for name in ("CLINRLHF_DATABASE_URL", "CLINRLHF_POLICY", "CLINRLHF_ENV", "CLINRLHF_DEID_KEY"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "home"


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="clinrlhf")
    ingest.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["ingest", *argv])
    return int(args.func(args) or 0)


def patient_bundle() -> dict:
    bundle = next(
        b
        for b in (json.loads(p.read_bytes()) for p in SYNTHEA)
        if any(e["resource"]["resourceType"] == "Patient" for e in b["entry"])
    )
    return bundle


def with_patient(bundle: dict, change) -> dict:  # noqa: ANN001 -- a function that edits the Patient
    bundle = copy.deepcopy(bundle)
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    change(patient)
    return bundle


def test_each_skipped_bundle_is_named_with_its_reason_on_one_line(home: Path, tmp_path: Path, capsys) -> None:
    good = patient_bundle()
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "a_Quibbleton_ok.json").write_text(json.dumps(good))
    no_birth = with_patient(good, lambda p: p.pop("birthDate"))
    (folder / "b_Quibbleton_no_birth.json").write_text(json.dumps(no_birth))
    bad_lab = copy.deepcopy(good)
    lab = next(e["resource"] for e in bad_lab["entry"] if "valueQuantity" in e["resource"])
    lab["valueQuantity"]["value"] = "Quibbleton"
    (folder / "c_Quibbleton_bad_lab.json").write_text(json.dumps(bad_lab))
    hospital = {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Organization"}}]}
    (folder / "d_hospital.json").write_text(json.dumps(hospital))
    (folder / "notes.txt").write_text("not read: neither .json nor .ndjson")

    assert run(str(folder), "--today", "2026-03-01") == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["cases"] == 1
    assert summary["skipped"] == {"no-patient": 1, "unreadable-patient": 2}
    lines = captured.err.strip().splitlines()
    assert lines == [
        "clinrlhf ingest: skipped PATH argument 1 file 2 of 4, patient 1: "
        "the Patient has neither a birth date nor an age",
        "clinrlhf ingest: skipped PATH argument 1 file 3 of 4, patient 1: "
        "an element the de-identification rules keep holds a value of the wrong type",
        "clinrlhf ingest: skipped PATH argument 1 file 4 of 4: the Bundle holds no Patient",
    ]
    assert [s["source"] for s in summary["skips"]] == [
        "PATH argument 1 file 2 of 4",
        "PATH argument 1 file 3 of 4",
        "PATH argument 1 file 4 of 4",
    ]
    assert "Quibbleton" not in captured.out + captured.err


def test_files_given_one_by_one_are_named_by_their_position(home: Path, tmp_path: Path, capsys) -> None:
    good = patient_bundle()
    bad = tmp_path / "Quibbleton.json"
    bad.write_text(json.dumps(with_patient(good, lambda p: p.pop("birthDate"))))
    assert run(str(SYNTHEA[0]), str(bad), "--today", "2026-03-01") == 0
    err = capsys.readouterr().err
    assert "skipped PATH argument 2, patient 1: the Patient has neither a birth date nor an age" in err


def test_an_empty_folder_is_a_one_line_error(home: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        ingest.CLIError, match=r"^PATH argument 1: a folder without \.json or \.ndjson files$"
    ):
        run(str(tmp_path / "empty"))

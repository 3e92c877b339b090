"""End to end: identifiers planted in every structured field class and every free-text spelling the
de-identification knows about are found nowhere afterwards, not under CLINRLHF_HOME (databases
included), not in any log line, not in the MLflow store.

Two adversarial patients go through the real `clinrlhf ingest` command (a subprocess) and through
the API (CDS Hooks patient-view with prefetch, then feedback with a free-text comment, on a real
uvicorn server on 127.0.0.1) and a clinician's review with a comment; the stored judgments are
exported with `clinrlhf export` and logged to MLflow the way the pipeline's reward stage logs its
snapshot. The de-identified bundles the door hands on are read as well. Then every file under the home is read
as bytes, as text brought to NFKC without format characters, lookalikes or accents and case-folded,
and with its base64 runs decoded; the captured logs and a dump of every MLflow run are read the same
way. Each planted marker is unique (invented surnames such as "Quibbleton"), so any hit is a leak.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import logging
import os
import re
import subprocess
import sys
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pytest
from mlflow.tracking import MlflowClient

from clinrlhf.identity import mint_token
from clinrlhf.lineage.datasets import log_snapshot_dataset
from clinrlhf.lineage.runs import configure_mlflow, stage_run
from clinrlhf.settings import Settings
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World
from privacy.deid import deidentify_bundle

REPO = Path(__file__).parents[2]
SERVICE = "/cds-services/clinrlhf-treatment"
SNOMED = "http://snomed.info/sct"
TODAY = "2026-03-01"


@dataclass(frozen=True)
class Marker:
    """One planted identifier: `form` names the field class or spelling it tests; `found` says
    whether it is in a (normalised) haystack."""

    form: str
    found: Callable[[str], bool]


def text(secret: str) -> Callable[[str], bool]:
    needle = secret.casefold()
    return lambda haystack: needle in haystack


def pattern(regex: str) -> Callable[[str], bool]:
    compiled = re.compile(regex)
    return lambda haystack: compiled.search(haystack) is not None


# Structured field classes (privacy/deid: engine, methods, rules).
STRUCTURED = [
    Marker("coding.code holding an SSN", text("318-27-3645")),
    Marker("coding.code holding a phone number", text("617-555-0147")),
    Marker("coding.code holding a date", text("1936-05-17")),
    Marker("coding.code holding a lower-case name", text("brambleworth")),
    Marker("coding.system URL", text("zanzibarquill")),
    Marker("reference type segment", text("octavius")),
    Marker("Patient.gender", text("gundersnatch")),
    Marker("fullwidth ZIP digits", pattern(r"(?<!\w)90217(?!\w)")),
    Marker("birth date of a 96-year-old", text("1929-08-23")),
    Marker("a date revealing age over 89", text("1931-02-11")),
]
# Free-text spellings (privacy/deid/scrub).
FREE_TEXT = [
    Marker("accented name", text("quinonezbury")),
    Marker("accented name, diaeresis", text("mullerwick")),
    Marker("patient's surname broken by zero-width characters", text("quibbleton")),
    Marker("patient's given name with a Cyrillic lookalike", text("ottoline")),
    Marker("lower-case name after a title", text("fennelwhistle")),
    Marker("age 93 y.o.", pattern(r"(?<!\d)97\s*y\.?\s*o\b")),
    Marker("age 93yo", pattern(r"(?<!\d)96\s*yo\b")),
    Marker("age 93F", pattern(r"(?<![\w.])95\s?f\b")),
    Marker("age 93-year-old", pattern(r"(?<!\d)94[\s-]*year")),
    Marker("age in words", text("ninety-three")),
    Marker("SSN with dots", text("219.09.9991")),
    Marker("SSN in fullwidth digits", text("219-09-9992")),
    Marker("DD-Mon-YYYY date", text("14-feb-1937")),
    Marker("M/D date", pattern(r"(?<![\d/])7/19(?![\d/])")),
    Marker("e-mail spelled out", text("quillfeather")),
    Marker("contact's given name", text("thessaly")),
    Marker("contact's surname", text("wobblecombe")),
    Marker("contact's town", text("frobisham")),
    Marker("contact's phone", text("617-555-0166")),
]

NOTE = (
    "Seen with José Quiñonezbury and Zoë Müllerwick. Spoke with Quib\u200bble\u2060ton; "
    "\u041ettoline agreed. discussed with dr fennelwhistle. A 97 y.o. neighbour, a 96yo friend and "
    "95F from the ward; a 94-year-old; her aunt is ninety-three years old. SSN 219.09.9991, "
    "alt SSN \uff12\uff11\uff19-\uff10\uff19-\uff19\uff19\uff19\uff12. Seen 14-Feb-1937 and on 7/19. "
    "Reach her at quillfeather dot roe at gmail dot com. Thessaly Wobblecombe from Frobisham "
    "called from 617-555-0166."
)
# What a clinician might type into the CDS feedback comment: no patient record to help there.
COMMENT = (
    "José Quiñonezbury says 95F; quillfeather dot roe at gmail dot com; SSN 219.09.9991; "
    "seen 14-Feb-1937 and on 7/19; discussed with dr fennelwhistle."
)


def _patient(bundle: dict[str, Any]) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")


def _first(bundle: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind)


def structured_patient(base: dict[str, Any]) -> dict[str, Any]:
    bundle = copy.deepcopy(base)
    patient = _patient(bundle)
    patient.update(gender="Gundersnatch", birthDate="1929-08-23")
    patient["address"] = [{"city": "Boston", "state": "MA", "postalCode": "\uff19\uff10\uff12\uff11\uff17"}]
    condition = _first(bundle, "Condition")
    condition["code"]["coding"] += [
        {"system": SNOMED, "code": code}
        for code in ("318-27-3645", "617-555-0147", "1936-05-17", "brambleworth")
    ]
    condition["code"]["coding"].append({"system": "http://zanzibarquill.example.org/cs", "code": "44054006"})
    condition["onsetDateTime"] = "1931-02-11"
    condition["encounter"] = {"reference": "Octavius Brambleworth/enc-1"}
    extra = copy.deepcopy(condition)
    extra["id"] = "extra-condition"
    extra["subject"] = {"reference": "Octavius Brambleworth/pat-1"}
    bundle["entry"].append({"resource": extra})
    return bundle


def free_text_patient(base: dict[str, Any]) -> dict[str, Any]:
    bundle = copy.deepcopy(base)
    patient = _patient(bundle)
    patient["name"] = [{"given": ["Ottoline"], "family": "Quibbleton"}]
    patient["contact"] = [
        {
            "name": {"given": ["Thessaly"], "family": "Wobblecombe"},
            "telecom": [{"system": "phone", "value": "617-555-0166"}],
            "address": {"city": "Frobisham"},
        }
    ]
    subject = _first(bundle, "Condition")["subject"]
    for resource in (e["resource"] for e in bundle["entry"]):
        if resource["resourceType"] in (
            "Condition",
            "Observation",
            "AllergyIntolerance",
            "MedicationRequest",
        ):
            resource["note"] = [{"text": NOTE}]
    _first(bundle, "MedicationRequest")["dosageInstruction"] = [{"text": NOTE}]
    bundle["entry"].append(
        {
            "resource": {
                "resourceType": "DocumentReference",
                "id": "note-1",
                "status": "current",
                "subject": subject,
                "content": [
                    {
                        "attachment": {
                            "contentType": "text/plain",
                            "data": base64.b64encode(NOTE.encode()).decode(),
                        }
                    }
                ],
            }
        }
    )
    return bundle


_LOOKALIKES = str.maketrans("аеорсхАВЕКМНОРСТХοΑΒΕΚΜΝΟΡΤΧ", "aeopcxABEKMHOPCTXoABEKMNOPTX")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")


def normalised(raw: str) -> str:
    """NFKC, no format characters, lookalikes to Latin, no accents, case-folded."""
    text = unicodedata.normalize("NFKC", raw).translate(_LOOKALIKES)
    text = "".join(
        c for c in unicodedata.normalize("NFKD", text) if unicodedata.category(c) not in ("Mn", "Cf")
    )
    return text.casefold()


def readings(data: bytes) -> Iterator[str]:
    """The ways a leak could be read out of `data`: as text, and inside base64 runs."""
    raw = data.decode("utf-8", errors="ignore")
    yield normalised(raw)
    for run in _BASE64_RUN.findall(raw):
        try:
            yield normalised(base64.b64decode(run + "=" * (-len(run) % 4)).decode("utf-8", errors="ignore"))
        except (binascii.Error, ValueError):
            continue


def leaks(places: dict[str, bytes], markers: list[Marker]) -> list[str]:
    """'form @ place' for each marker found; the marker's value is never printed."""
    found = []
    for place, data in places.items():
        for reading in readings(data):
            found += [f"{m.form} @ {place}" for m in markers if m.found(reading)]
    return sorted(set(found))


class LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    capture = LogCapture()
    names = ["", "uvicorn", "uvicorn.error", "uvicorn.access", "services", "clinrlhf", "mlflow", "httpx"]
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(capture)
        lg.setLevel(logging.DEBUG)
    yield capture
    for lg, level in zip(loggers, levels, strict=True):
        lg.removeHandler(capture)
        lg.setLevel(level)


def cli(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLINRLHF_", "MLFLOW_"))}
    env["CLINRLHF_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "clinrlhf", *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def mlflow_dump(settings: Settings, scratch: Path) -> bytes:
    """Every run's params, tags, metrics and dataset inputs, and every artifact's bytes."""
    client = MlflowClient(settings.mlflow_tracking_uri)
    parts: list[bytes] = []
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id]):
            parts.append(json.dumps([run.data.params, run.data.tags, run.data.metrics]).encode())
            for dataset_input in run.inputs.dataset_inputs:
                parts.append(str(dataset_input.dataset).encode())
            (scratch / run.info.run_id).mkdir(parents=True)
            local = Path(
                client.download_artifacts(run.info.run_id, "", dst_path=str(scratch / run.info.run_id))
            )
            parts += [p.read_bytes() for p in sorted(local.rglob("*")) if p.is_file()]
    return b"\n".join(parts)


def test_no_planted_identifier_is_found_anywhere_after_ingest_and_the_api(
    tmp_path: Path, world: World, policy_dir: Path, live_server, patient_view, logs: LogCapture, monkeypatch
) -> None:
    home = tmp_path / "home"
    for name in ("CLINRLHF_DATABASE_URL", "CLINRLHF_ENV", "CLINRLHF_DEID_KEY", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")  # no network here
    monkeypatch.setenv("CLINRLHF_HOME", str(home))
    bases = [p.bundle for p in generate_patients(world, 2, seed=41)]
    bundles = [structured_patient(bases[0]), free_text_patient(bases[1])]
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for i, bundle in enumerate(bundles):
        (inputs / f"patient-{i}.json").write_text(json.dumps(bundle, ensure_ascii=False), "utf-8")

    # 1. The real `clinrlhf ingest`.
    ingested = cli(home, "ingest", *map(str, sorted(inputs.glob("*.json"))), "--today", TODAY)
    assert ingested.returncode == 0, ingested.stderr[-2000:]
    assert json.loads(ingested.stdout)["cases"] == 2  # both patients were read and stored, not skipped

    # 2. The API: patient-view with prefetch for both patients, then feedback with a comment.
    settings = Settings(home=home, policy=policy_dir, database_url=None)
    token = mint_token(settings, role="cds-client", sub="planted-test")
    headers = {"Authorization": f"Bearer {token}"}
    with live_server(settings) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        statuses = []
        cards: list[dict[str, Any]] = []
        for bundle in bundles:
            response = client.post(SERVICE, json=patient_view(bundle), headers=headers)
            statuses.append(response.status_code)
            logs.lines.append(response.text)  # what the EHR would log is checked too
            if response.status_code == 200:
                cards += response.json()["cards"]
        assert all(s < 500 for s in statuses) and statuses[1] == 200 and cards, statuses
        feedback = {
            "card": cards[-1]["uuid"],
            "outcome": "overridden",
            "outcomeTimestamp": datetime.now(UTC).isoformat(),
            "overrideReason": {
                "reason": {"system": "https://clinrlhf.dev/fhir/CodeSystem/override-reason", "code": "other"},
                "userComment": COMMENT,
            },
        }
        stored = client.post(f"{SERVICE}/feedback", json={"feedback": [feedback]}, headers=headers)
        assert stored.status_code == 200, stored.text
        # A clinician's review: its comment is the free text the store keeps (scrubbed at the door).
        pair = next(c for c in _two_suggestion_cards(client, headers, cards, world, patient_view))
        clinician = {"Authorization": f"Bearer {mint_token(settings, role='clinician', sub='planted-test')}"}
        reviewed = client.post(
            "/fhir/QuestionnaireResponse",
            json=_review(pair, COMMENT),
            headers=clinician | {"Content-Type": "application/fhir+json"},
        )
        assert reviewed.status_code == 201, reviewed.text

    # 3. The judgments exported, and logged to MLflow as the reward stage logs its snapshot.
    exported = cli(home, "export")
    assert exported.returncode == 0, exported.stderr[-2000:]
    manifest = json.loads(exported.stdout)
    snapshot = next(p for p in (home / "exports").rglob("judgments-*.ndjson"))
    assert manifest["judgments"] >= 1
    configure_mlflow(settings)
    with stage_run("reward", nested=False):
        log_snapshot_dataset(snapshot, manifest["sha256"], log_file=True)
        mlflow.log_dict(json.loads(ingested.stdout), "ingest-summary.json")
    mlflow.set_tracking_uri(None)

    # 4. Look everywhere.
    places = {str(p.relative_to(home)): p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file()}
    assert any(name.endswith(".db") for name in places) and any("mlartifacts" in name for name in places)
    places["logs: ingest"] = (ingested.stdout + ingested.stderr).encode()
    places["logs: export"] = (exported.stdout + exported.stderr).encode()
    places["logs: server and client"] = "\n".join(logs.lines).encode()
    places["mlflow: runs and artifacts"] = mlflow_dump(settings, tmp_path / "mlflow-download")
    # The store keeps facts and comment flags only, so free text reaches none of the places above
    # today; what the door hands on (notes included) is checked too, so that keeping notes later
    # cannot start leaking unnoticed.
    door = [
        deidentify_bundle(b, key=settings.deid_secret, today=date.fromisoformat(TODAY)).bundle
        for b in bundles
    ]
    places["the door's de-identified bundles"] = json.dumps(door, ensure_ascii=False).encode()
    found = leaks(places, STRUCTURED + FREE_TEXT)
    assert not found, "planted identifiers found:\n" + "\n".join(found)


def _two_suggestion_cards(
    client: httpx.Client, headers: dict[str, str], cards: list[dict[str, Any]], world: World, patient_view
) -> Iterator[dict[str, Any]]:
    """Cards a pairwise review can judge: the planted patients' first, then ordinary patients'."""
    yield from (c for c in cards if len(c["suggestions"]) == 2)
    for patient in generate_patients(world, 20, seed=31):
        response = client.post(SERVICE, json=patient_view(patient.bundle), headers=headers)
        yield from (c for c in response.json()["cards"] if len(c["suggestions"]) == 2)


def _review(card: dict[str, Any], comment: str) -> dict[str, Any]:
    a, b = (s["uuid"] for s in card["suggestions"])
    answers = [("card", {"valueString": card["uuid"]}), ("suggestion-a", {"valueString": a})]
    answers += [("suggestion-b", {"valueString": b}), ("choice", {"valueCoding": {"code": "a"}})]
    answers += [("comment", {"valueString": comment})]
    return {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "questionnaire": "https://clinrlhf.dev/fhir/Questionnaire/clinrlhf-review",
        "item": [{"linkId": link, "answer": [answer]} for link, answer in answers],
    }


def test_the_scan_finds_each_marker_where_it_was_planted() -> None:
    """The scan itself can fail: every marker is found in the raw inputs, as the scan reads them."""
    bundle = free_text_patient(structured_patient(copy.deepcopy(_BASE)))
    raw = {"inputs": json.dumps(bundle, ensure_ascii=False).encode(), "comment": COMMENT.encode()}
    found = {entry.split(" @ ")[0] for entry in leaks(raw, STRUCTURED + FREE_TEXT)}
    assert found == {m.form for m in STRUCTURED + FREE_TEXT}


_BASE: dict[str, Any] = {
    "resourceType": "Bundle",
    "type": "collection",
    "entry": [
        {"resource": {"resourceType": "Patient", "id": "p"}},
        {
            "resource": {
                "resourceType": "Condition",
                "id": "c",
                "subject": {"reference": "Patient/p"},
                "code": {"coding": [{"system": SNOMED, "code": "44054006"}]},
            }
        },
        {"resource": {"resourceType": "MedicationRequest", "id": "m", "subject": {"reference": "Patient/p"}}},
    ],
}

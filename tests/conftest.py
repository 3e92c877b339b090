"""Suite-wide fixtures. MLflow keeps the tracking URI and the active experiment in process globals:
a test that points MLflow at its own temporary store must not leave the next test pointing there.
The synthetic world and the tokenizer built from its vocabulary are read-only and shared by the
library's, the privacy layer's and the services' tests, so they are built once per session."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import mlflow
import mlflow.tracking.fluent as fluent
import pytest
from transformers import PreTrainedTokenizerFast

from clinrlhf.policy import build_tokenizer
from clinrlhf.text.prompt import vocabulary_corpus
from clinrlhf.world.world import World, load_world


@pytest.fixture(autouse=True)
def _isolated_mlflow() -> Iterator[None]:
    uri = mlflow.get_tracking_uri() if os.environ.get("MLFLOW_TRACKING_URI") else None
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()
    fluent._active_experiment_id = None  # set by mlflow.set_experiment; no public reset exists
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    mlflow.set_tracking_uri(uri or "")


@pytest.fixture(scope="session")
def world() -> World:
    return load_world()


@pytest.fixture(scope="session")
def tokenizer(world: World) -> PreTrainedTokenizerFast:
    return build_tokenizer(vocabulary_corpus(world))


# The 11 Synthea patients (and 2 files of hospitals and practitioners) that every de-identification
# path is scanned against: `clinrlhf ingest`, `clinrlhf deidentify` and `POST /fhir/$deidentify`.
SYNTHEA = sorted((Path(__file__).parents[2] / "shared" / "data" / "synthea-r4").glob("*.json"))
_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/]{24,}={0,2}")


def patient_identifiers(patient: dict[str, Any]) -> set[str]:
    """What identifies a Synthea patient: id, birth date (three spellings), names with and without
    Synthea's digits, telecom, identifier values, address lines and city (4 characters or more)."""
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


def decoded_runs(data: bytes) -> bytes:
    """Whatever decodes from base64 runs in `data`, so an encoded note cannot hide a name."""
    parts = []
    for run in _BASE64_RUN.findall(data):
        try:
            parts.append(base64.b64decode(run + b"=" * (-len(run) % 4)))
        except (binascii.Error, ValueError):
            continue
    return b"\n".join(parts)


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class IdentifierScan:
    """The identifiers of the Synthea patients, and which of them a blob of bytes holds, in plain
    text or inside a base64 run, case-insensitively. Callers count leaks, never print them."""

    def __init__(self, paths: list[Path]) -> None:
        self.secrets: set[str] = set()
        for path in paths:
            for entry in json.loads(path.read_bytes()).get("entry", []):
                if entry["resource"]["resourceType"] == "Patient":
                    self.secrets |= patient_identifiers(entry["resource"])

    def leaks(self, data: bytes) -> list[str]:
        haystack = (data + decoded_runs(data)).lower()
        return [s for s in self.secrets if s.lower().encode() in haystack]

    def leaks_from_deidentified(self, data: bytes) -> list[str]:
        """`leaks` for de-identified FHIR, whose structured dates are shifted under a key of the
        run's own: a shifted date can land on one of the eleven birth dates by chance, which is no
        leak. So an ISO birth date counts only where it is a birthDate; every other identifier,
        and the other spellings of a birth date (the engine writes none), count anywhere."""
        iso = {s for s in self.secrets if _ISO_DATE.fullmatch(s)}
        leaked = [s for s in self.leaks(data) if s not in iso]
        return leaked + [d for d in iso if re.search(rb'"birthDate"\s*:\s*"' + d.encode() + rb'"', data)]


@pytest.fixture(scope="session")
def synthea_scan() -> IdentifierScan:
    return IdentifierScan(SYNTHEA)

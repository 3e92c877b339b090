"""`POST /fhir/$deidentify` (after HL7's DARTS draft): a hospital sends its own export and gets back
the de-identified Bundle and the de-identification report, under ingestion's rule file, with
nothing of the input kept: no row but one audit event of counts, no log line with a value, no error
that quotes the input. Every request goes to a real `clinrlhf serve`-style uvicorn on 127.0.0.1."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.parameters import Parameters
from sqlalchemy import create_engine, inspect, text

from clinrlhf.cli import ingest
from clinrlhf.identity import mint_token
from clinrlhf.settings import Settings
from privacy.deid import config_fingerprint, pseudonym
from services.fhir.deidentify import report_from_parameter
from tests.conftest import SYNTHEA, IdentifierScan

FHIR_JSON = "application/fhir+json"
OPERATION = "/fhir/$deidentify"
PATIENTS = [
    p
    for p in SYNTHEA
    if any(e["resource"]["resourceType"] == "Patient" for e in json.loads(p.read_bytes())["entry"])
]
LIMIT = 16_000_000  # all 11 Synthea patients in one Bundle are about 15 MB


class Logs(logging.Handler):
    """Every record any logger emits while the module runs, uvicorn's access log included."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def logs() -> Logs:
    return Logs()


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, policy_dir: Path) -> Settings:
    home = tmp_path_factory.mktemp("deid-home")
    return Settings(home=home, policy=policy_dir, database_url=None, max_body_bytes=LIMIT)


@pytest.fixture(scope="module")
def site(settings: Settings, live_server, logs: Logs) -> Iterator[str]:
    server = live_server(settings)
    # Watched once uvicorn has configured logging, which replaces its loggers' handlers and levels.
    watched = [logging.getLogger(), logging.getLogger("uvicorn.access"), logging.getLogger("uvicorn.error")]
    for logger in watched:
        logger.addHandler(logs)
    access = logging.getLogger("uvicorn.access")
    level = access.level
    access.setLevel(logging.INFO)  # uvicorn's configuration set it to "warning"
    with server as live:
        yield live.url
    access.setLevel(level)
    for logger in watched:
        logger.removeHandler(logs)


@pytest.fixture(scope="module")
def headers(settings: Settings) -> dict[str, str]:
    token = mint_token(settings, role="deidentifier", sub="hospital-export-job")
    return {"Authorization": f"Bearer {token}", "Content-Type": FHIR_JSON}


def post(site: str, headers: dict[str, str], body: bytes) -> httpx.Response:
    with httpx.Client(base_url=site, timeout=120) as client:
        return client.post(OPERATION, content=body, headers=headers)


def part(parameters: dict[str, Any], name: str) -> dict[str, Any]:
    found = [p for p in parameters["parameter"] if p["name"] == name]
    assert len(found) == 1, f"expected one {name} parameter"
    return found[0]


def row_counts(settings: Settings) -> dict[str, int]:
    engine = create_engine(settings.resolved_database_url)
    with engine.connect() as connection:
        tables = inspect(connection).get_table_names()
        counts = {t: connection.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one() for t in tables}
    engine.dispose()
    return counts


def merged(paths: list[Path]) -> dict[str, Any]:
    """One transaction Bundle holding every patient of `paths`, fullUrls kept (references use them)."""
    entries = [e for p in paths for e in json.loads(p.read_bytes())["entry"]]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def nonempty(value: Any) -> Any:
    """The report with empty counters and null sections left out, as a Parameters part carries it."""
    if isinstance(value, dict):
        return {k: nonempty(v) for k, v in value.items() if v not in ({}, None, [])}
    return value


def test_every_synthea_bundle_round_trips_with_no_identifier_in_the_output(
    site: str, headers: dict[str, str], synthea_scan: IdentifierScan
) -> None:
    assert len(PATIENTS) == 11
    for path in PATIENTS:
        response = post(site, headers, path.read_bytes())
        assert response.status_code == 200, response.text[:300]
        assert response.headers["content-type"].startswith(FHIR_JSON)
        out = response.json()
        Parameters.model_validate({**out, "parameter": [p for p in out["parameter"] if "resource" not in p]})
        bundle = part(out, "deidentifiedData")["resource"]
        report = report_from_parameter(part(out, "report"))
        kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
        assert bundle["resourceType"] == "Bundle" and kinds.count("Patient") == 1
        assert report["bundles"] == 1 and report["resources_out"] == len(kinds)
        assert report["rules"] == config_fingerprint()
        leaked = synthea_scan.leaks_from_deidentified(response.content)
        assert not leaked, f"{len(leaked)} identifiers of the patient in the de-identified output"


def test_the_report_is_the_one_ingestion_writes_for_the_same_bundles(
    site: str, headers: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    response = post(site, headers, json.dumps(merged(SYNTHEA)).encode())
    assert response.status_code == 200, response.text[:300]
    out = response.json()
    assert len(part(out, "deidentifiedData")["resource"]["entry"]) > 2000
    monkeypatch.setenv("CLINRLHF_HOME", str(tmp_path / "ingest-home"))
    monkeypatch.delenv("CLINRLHF_DATABASE_URL", raising=False)
    parser = argparse.ArgumentParser(prog="clinrlhf")
    ingest.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["ingest", *map(str, SYNTHEA), "--today", date.today().isoformat()])
    assert args.func(args) == 0
    written = json.loads(Path(json.loads(capsys.readouterr().out)["deid_report"]).read_text())
    assert written["bundles"] == 11 and written["k_anonymity"]["records"] == 11
    assert report_from_parameter(part(out, "report")) == nonempty(written)
    unlinked = report_from_parameter(part(out, "unlinkedResources"))
    assert unlinked and all(isinstance(n, int) and n > 0 for n in unlinked.values())


def test_the_key_is_the_requests_own_so_outputs_link_neither_to_the_store_nor_to_each_other(
    site: str, headers: dict[str, str], settings: Settings
) -> None:
    body = PATIENTS[0].read_bytes()
    raw_id = next(
        e["resource"]["id"] for e in json.loads(body)["entry"] if e["resource"]["resourceType"] == "Patient"
    )

    def patient_id(response: httpx.Response) -> str:
        entries = part(response.json(), "deidentifiedData")["resource"]["entry"]
        return next(e["resource"]["id"] for e in entries if e["resource"]["resourceType"] == "Patient")

    first, second = patient_id(post(site, headers, body)), patient_id(post(site, headers, body))
    assert first != second
    assert pseudonym(settings.deid_secret, raw_id) not in (first, second)


def test_the_darts_parameters_form_is_accepted(site: str, headers: dict[str, str]) -> None:
    bundle = json.loads(PATIENTS[1].read_bytes())
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "identifiableData", "resource": bundle},
            {"name": "policy", "valueString": config_fingerprint()["name"]},
        ],
    }
    response = post(site, headers, json.dumps(body).encode())
    assert response.status_code == 200, response.text[:300]
    assert report_from_parameter(part(response.json(), "report"))["bundles"] == 1


def test_the_ballots_name_de_identify_answers_with_the_ballots_parameter_name(
    site: str, headers: dict[str, str]
) -> None:
    """The draft's 1.0.0 ballot renamed the operation `$de-identify` and its output `de-identifiedData`."""
    with httpx.Client(base_url=site, timeout=120) as client:
        response = client.post("/fhir/$de-identify", content=PATIENTS[3].read_bytes(), headers=headers)
    assert response.status_code == 200, response.text[:300]
    out = response.json()
    assert [p["name"] for p in out["parameter"]][0] == "de-identifiedData"
    assert part(out, "de-identifiedData")["resource"]["resourceType"] == "Bundle"
    assert report_from_parameter(part(out, "report"))["bundles"] == 1


def test_nothing_of_the_input_is_stored_or_logged_and_one_audit_event_of_counts_is(
    site: str, headers: dict[str, str], settings: Settings, logs: Logs, synthea_scan: IdentifierScan
) -> None:
    before = row_counts(settings)
    for path in PATIENTS[:3]:
        assert post(site, headers, path.read_bytes()).status_code == 200
    after = row_counts(settings)
    assert {t: after[t] - before[t] for t in after if after[t] != before[t]} == {"audit_events": 3}
    engine = create_engine(settings.resolved_database_url)
    with engine.connect() as connection:
        events = connection.execute(
            text("SELECT actor, action, entity_type, entity_id FROM audit_events ORDER BY seq DESC LIMIT 3")
        ).all()
    engine.dispose()
    assert {(e.action, e.entity_type) for e in events} == {("E", "Deidentify")}
    assert all(e.actor.startswith("deidentifier:") for e in events)
    assert all(set(e.entity_id) <= set("0123456789 patientsresourcekp=") for e in events)
    files = [p for p in sorted(Path(settings.resolved_home).rglob("*")) if p.is_file()]
    assert files  # the store and the keys, at least
    on_disk = b"\n".join(p.read_bytes() for p in files)
    logged = "\n".join(logs.lines).encode()
    assert any("$deidentify" in line for line in logs.lines)  # the access log did see the requests
    leaked = synthea_scan.leaks(on_disk) + synthea_scan.leaks(logged)
    assert not leaked, f"{len(leaked)} identifiers of the input stored or logged"


@pytest.mark.parametrize("role", ["clinician", "cds-client", "ml-engineer", "compliance"])
def test_every_other_role_is_refused_with_403(site: str, settings: Settings, role: str) -> None:
    token = mint_token(settings, role=role, sub=f"not-a-deidentifier-{role}")
    response = post(
        site, {"Authorization": f"Bearer {token}", "Content-Type": FHIR_JSON}, PATIENTS[2].read_bytes()
    )
    assert response.status_code == 403
    assert response.json()["resourceType"] == "OperationOutcome"


def test_no_token_is_401(site: str) -> None:
    response = post(site, {"Content-Type": FHIR_JSON}, PATIENTS[2].read_bytes())
    assert response.status_code == 401 and response.json()["resourceType"] == "OperationOutcome"


SECRET = "Zebulon Quartermaine 617-555-0199"
PLANTED_PATIENT = {
    "resourceType": "Patient",
    "id": "pat-1",
    "name": [{"text": SECRET}],
    "birthDate": "1960-01-01",
}


def _bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


MALFORMED: list[tuple[str, Any, int]] = [
    ("not JSON", f"{{{SECRET}", 400),
    ("a JSON array", [SECRET], 400),
    ("a resource that is neither a Bundle nor Parameters", PLANTED_PATIENT, 400),
    ("a Bundle whose entry is not a list", {"resourceType": "Bundle", "entry": {SECRET: 1}}, 400),
    ("an entry that is not an object", {"resourceType": "Bundle", "entry": [SECRET]}, 400),
    ("Parameters without identifiableData", {"resourceType": "Parameters", "parameter": []}, 400),
    (
        "Parameters whose identifiableData is no Bundle",
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "identifiableData", "resource": PLANTED_PATIENT}],
        },
        400,
    ),
    (
        "Parameters with an unknown parameter",
        {"resourceType": "Parameters", "parameter": [{"name": SECRET, "valueString": SECRET}]},
        400,
    ),
    (
        "NDJSON file URLs (the asynchronous form)",
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "identifiableDataFileUrls", "resource": {"resourceType": "Parameters"}}],
        },
        422,
    ),
    (
        "a policy other than the rule file",
        {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "identifiableData", "resource": _bundle(PLANTED_PATIENT)},
                {"name": "policy", "valueString": SECRET},
            ],
        },
        422,
    ),
    ("a Bundle without a Patient", _bundle({"resourceType": "Condition", "note": [{"text": SECRET}]}), 422),
    (
        "a kept element of the wrong type",
        _bundle(
            PLANTED_PATIENT,
            {
                "resourceType": "Observation",
                "subject": {"reference": "Patient/pat-1"},
                "status": {"text": SECRET},
                "valueQuantity": {"value": SECRET},
            },
        ),
        422,
    ),
]


@pytest.mark.parametrize(
    ("body", "status"), [(b, s) for _, b, s in MALFORMED], ids=[n for n, _, _ in MALFORMED]
)
def test_malformed_input_is_an_operation_outcome_that_quotes_nothing(
    site: str, headers: dict[str, str], body: Any, status: int
) -> None:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    response = post(site, headers, raw)
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith(FHIR_JSON)
    assert response.json()["resourceType"] == "OperationOutcome"
    for word in ("Zebulon", "Quartermaine", "0199"):
        assert word not in response.text


def test_a_body_over_the_deployments_limit_is_413(site: str, headers: dict[str, str]) -> None:
    response = post(site, headers, b" " * (LIMIT + 1))
    assert response.status_code == 413 and response.json()["resourceType"] == "OperationOutcome"


def test_the_capability_statement_names_the_operation(site: str, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=site, timeout=30) as client:
        statement = client.get("/fhir/metadata", headers={"Authorization": headers["Authorization"]}).json()
    operations = {o["name"]: o["definition"] for o in statement["rest"][0].get("operation", [])}
    assert operations["deidentify"].endswith("/OperationDefinition/deidentify")
    assert operations["de-identify"].endswith("/OperationDefinition/de-identify")


def test_after_every_request_above_no_log_line_holds_an_identifier_or_a_planted_value(
    logs: Logs, synthea_scan: IdentifierScan
) -> None:
    """Last in the module (pytest keeps file order): the malformed bodies' planted values included."""
    logged = "\n".join(logs.lines)
    assert logged.count("$deidentify") >= 20  # the refused requests were logged too, by route
    assert not synthea_scan.leaks(logged.encode())
    for word in ("Zebulon", "Quartermaine", "555-0199"):
        assert word not in logged

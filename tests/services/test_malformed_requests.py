"""Mutation fuzzing: whatever a client sends, the answer is never a 5xx, and errors are OperationOutcomes.

Beside random mutations: injection strings (SQL, script, template, path, header) in every string
field, and bodies in media types the API does not take. Schema-driven fuzzing of every operation is
in `reliability/test_schemathesis.py`."""

from __future__ import annotations

import copy
import json
import os
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from clinrlhf.settings import Settings
from clinrlhf.store import consistent_read, deployment_store, verify_audit
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World

JUNK: list[Any] = [
    None,
    0,
    -1,
    1e308,
    True,
    "",
    "x" * 2000,
    "Okafor",
    [],
    {},
    [[[]]],
    {"resourceType": "Bundle"},
    {"reference": "Patient/../../etc"},
    "2026-13-45",
    "\u0000\udcff"[:1],
]
ROUNDS = int(os.environ.get("CLINRLHF_FUZZ_ROUNDS", "40"))
INJECTIONS = [
    "'; DROP TABLE feedback; --",
    "x' OR '1'='1",
    "Robert'); DELETE FROM audit_events; --",
    "<script>alert(1)</script>",
    "{{7*7}}${7*7}<%= 7*7 %>",
    "../../../../etc/passwd",
    "line\r\nSet-Cookie: session=stolen",
    "\u202eevil\u0000",
]
DEEP = b"[" * 50_000 + b"]" * 50_000


def paths(node: Any, prefix: tuple = ()) -> Iterator[tuple]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node[:3]):
            yield from paths(value, (*prefix, i))


def string_paths(node: Any) -> Iterator[tuple]:
    """Paths to every string value in a document (the first three items of each list)."""
    for path in paths(node):
        if isinstance(value_at(node, path), str):
            yield path


def value_at(document: Any, path: tuple) -> Any:
    for step in path:
        document = document[step]
    return document


def replaced(document: Any, path: tuple, value: Any) -> Any:
    document = copy.deepcopy(document)
    value_at(document, path[:-1])[path[-1]] = value
    return document


def mutate(document: Any, rng: random.Random) -> Any:
    document = copy.deepcopy(document)
    candidates = [p for p in paths(document) if p]
    if not candidates:
        return document
    target = rng.choice(candidates)
    parent = document
    for step in target[:-1]:
        parent = parent[step]
    if rng.random() < 0.2 and isinstance(parent, dict):
        del parent[target[-1]]
    else:
        parent[target[-1]] = copy.deepcopy(rng.choice(JUNK))
    return document


def assert_not_5xx(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()["resourceType"] == "OperationOutcome"
        assert "Okafor" not in response.text


@pytest.fixture(scope="module")
def valid(server, auth, patient_view, world: World) -> dict[str, tuple[str, str, str, dict]]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for patient in generate_patients(world, 20, seed=41):
            request = patient_view(patient.bundle)
            response = client.post(
                "/cds-services/clinrlhf-treatment",
                json=request,
                headers=auth("cds-client", "application/json"),
            )
            card = next(iter(response.json()["cards"]), None)
            if card is not None:
                break
    assert card is not None, "no card for 20 patients"
    ids = [s["uuid"] for s in card["suggestions"]] * 2
    feedback = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": ids[0]}],
                "outcomeTimestamp": "2026-01-01T00:00:00Z",
                "overrideReason": {"reason": {"code": "other"}, "userComment": "c"},
            }
        ]
    }
    review = {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "questionnaire": "https://clinrlhf.dev/fhir/Questionnaire/clinrlhf-review",
        "item": [
            {"linkId": "card", "answer": [{"valueString": card["uuid"]}]},
            {"linkId": "suggestion-a", "answer": [{"valueString": ids[0]}]},
            {"linkId": "suggestion-b", "answer": [{"valueString": ids[1]}]},
            {"linkId": "choice", "answer": [{"valueCoding": {"code": "a"}}]},
            {"linkId": "rating-a", "answer": [{"valueInteger": 4}]},
        ],
    }
    return {
        "service": ("/cds-services/clinrlhf-treatment", "cds-client", "application/json", request),
        "feedback": ("/cds-services/clinrlhf-treatment/feedback", "cds-client", "application/json", feedback),
        "review": ("/fhir/QuestionnaireResponse", "clinician", "application/fhir+json", review),
    }


@pytest.mark.parametrize("endpoint", ["service", "feedback", "review"])
def test_mutated_requests_never_cause_a_5xx(client: httpx.Client, auth, valid, endpoint: str) -> None:
    path, role, media, document = valid[endpoint]
    rng = random.Random(endpoint)
    for i in range(ROUNDS):
        mutated = mutate(document, rng)
        if i % 2:  # two mutations at once reach states one cannot
            mutated = mutate(mutated, rng)
        assert_not_5xx(client.post(path, json=mutated, headers=auth(role, media)))


@pytest.mark.parametrize(
    "body",
    [DEEP, b"null", b"42", b'"text"', b"[]", b"\xff\xfe", b"{}", b'{"a":'],
    ids=["deep", "null", "number", "string", "list", "binary", "empty-object", "truncated"],
)
@pytest.mark.parametrize("endpoint", ["service", "feedback", "review"])
def test_bodies_that_are_not_the_expected_object_are_4xx(
    client: httpx.Client, auth, valid, endpoint, body
) -> None:
    path, role, media, _ = valid[endpoint]
    assert_not_5xx(client.post(path, content=body, headers=auth(role, media)))


@pytest.mark.parametrize("endpoint", ["service", "feedback", "review"])
def test_injection_strings_in_every_string_field_are_refused_or_stored_inert(
    client: httpx.Client, auth, valid, endpoint: str, api_settings: Settings
) -> None:
    """Each string field gets an injection string in turn (the payloads taken round-robin): the
    answer is a success or a 4xx OperationOutcome that does not echo it, and the store still stands,
    its audit trail intact (no statement was ever built from request text)."""
    path, role, media, document = valid[endpoint]
    targets = list(string_paths(document))
    assert targets
    for i, target in enumerate(targets):
        payload = INJECTIONS[i % len(INJECTIONS)]
        response = client.post(path, json=replaced(document, target, payload), headers=auth(role, media))
        assert_not_5xx(response)
        if response.status_code >= 400:
            assert payload not in response.text
    with consistent_read(deployment_store(api_settings)) as session:
        report = verify_audit(session)
    assert report.ok, report.problem


@pytest.mark.parametrize(
    "media",
    [
        "text/plain",
        "text/html",
        "application/xml",
        "application/fhir+xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/octet-stream",
        "json",
    ],
)
@pytest.mark.parametrize("endpoint", ["service", "feedback", "review"])
def test_bodies_in_other_media_types_are_415(client: httpx.Client, auth, valid, endpoint, media) -> None:
    path, role, _, document = valid[endpoint]
    response = client.post(path, content=json.dumps(document).encode(), headers=auth(role, media))
    assert response.status_code == 415 and response.json()["resourceType"] == "OperationOutcome"

"""Property-based fuzzing of every operation in /openapi.json (schemathesis): generated paths,
queries, headers and bodies, valid and invalid against the schema, sent to a real server with a
token of a role that may call the operation. Whatever arrives, the answer is never a 5xx, and every
error is an OperationOutcome.

CLINRLHF_FUZZ_EXAMPLES sets the examples per operation (default 25; `make soak` uses 200).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from clinrlhf.identity import mint_token
from clinrlhf.settings import Settings

EXAMPLES = int(os.environ.get("CLINRLHF_FUZZ_EXAMPLES", "25"))
# Who calls what: a token that passes each operation's scope check, so the body is what is tested.
ROLE_OF = {
    ("POST", "/cds-services/{service_id}"): "cds-client",
    ("POST", "/cds-services/{service_id}/feedback"): "cds-client",
    ("GET", "/compliance/report/{run_id}"): "compliance",
    ("POST", "/fhir/$deidentify"): "deidentifier",
    ("POST", "/fhir/$de-identify"): "deidentifier",
    ("GET", "/fhir/Provenance/{provenance_id}"): "cds-client",
    ("GET", "/fhir/Provenance"): "cds-client",
}


@pytest.fixture(scope="module")
def fuzzed(
    tmp_path_factory: pytest.TempPathFactory, policy_dir: Path, live_server
) -> Iterator[tuple[str, Settings]]:
    """A server of its own: what the fuzzer stores must not show up in other tests' counts."""
    api = Settings(home=tmp_path_factory.mktemp("fuzz"), policy=policy_dir)
    with live_server(api) as live:
        yield live.url, api


@pytest.fixture(scope="module")
def api_schema(fuzzed: tuple[str, Settings]):  # noqa: ANN201 -- a schemathesis schema
    url, _ = fuzzed
    return schemathesis.openapi.from_url(f"{url}/openapi.json")


@pytest.fixture(scope="module")
def bearer(fuzzed: tuple[str, Settings]) -> dict[str, str]:
    _, api = fuzzed
    roles = {"clinician", "cds-client", "compliance", "deidentifier"}
    return {role: f"Bearer {mint_token(api, role=role, sub=f'fuzz-{role}', ttl=3600)}" for role in roles}


def call(case: schemathesis.Case, bearer: dict[str, str]) -> int:
    role = ROLE_OF.get((case.method.upper(), case.path), "clinician")
    response = case.call(headers={"Authorization": bearer[role]}, timeout=60)
    where = f"{case.method} {case.formatted_path}"
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        assert response.json()["resourceType"] == "OperationOutcome", f"{where}: {response.text[:300]}"
    return response.status_code


# Operations are looped over inside the test rather than parametrized by schemathesis' pytest
# plugin: its lazy loading (needed, as the schema comes from a server a fixture starts) does not
# run under pytest 9.
@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda mode: mode.value)
def test_no_operation_answers_a_5xx(api_schema, bearer: dict[str, str], mode: GenerationMode) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {(op.method.upper(), op.path) for op in operations} >= set(ROLE_OF)
    seen: Counter[int] = Counter()
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
        )
        def check(case: schemathesis.Case) -> None:
            seen[call(case, bearer)] += 1

        try:
            check()
        except Unsatisfiable:
            # Negative mode only: an operation without parameters or body has nothing to make invalid.
            assert mode is GenerationMode.NEGATIVE, f"no {mode.value} case for {operation.label}"
    # The requests reached the handlers: valid ones were served, invalid ones refused by validation.
    assert seen[200] > 0 if mode is GenerationMode.POSITIVE else seen[400] + seen[422] > 0, seen

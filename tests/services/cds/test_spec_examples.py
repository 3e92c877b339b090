"""CDS Hooks 3.0 conformance, from the specification's own examples (`spec_examples/`, CC0): every
request, response and feedback example that applies to `patient-view` is exercised against the
running service. Requests are accepted (answered as the specification says: 200, or 412 for data
the service cannot get), its responses have the examples' shape and keep the invariants
cds-resp-1..7 (`services.cds.invariants`), and feedback examples are stored.

The examples name ids this service never issued (a card's uuid); those, and only those, are
replaced by the ids of a card the service did issue.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome

from clinrlhf.identity import grants
from clinrlhf.settings import Settings
from clinrlhf.store import counts, deployment_store
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World
from services.cds.invariants import response_violations
from services.cds.schemas import Action, CDSResponse, FHIRAuthorization, Link

EXAMPLES = Path(__file__).parent / "spec_examples"
SERVICE = "/cds-services/clinrlhf-treatment"
CLIENT = "test-cds-client"  # the cds-client token's `sub` (tests/services/conftest.py)
SPEC_FHIR_SERVER = "http://hooks.smarthealthit.org:9080"  # example 02's, configured for our client
EMPTY = {"resourceType": "Bundle", "type": "searchset", "entry": []}
SEARCH_KEYS = ("conditions", "observations", "medications", "allergies")
# The attributes CDS Hooks 3.0 defines for each object of a response (and `extension`, reserved).
ATTRIBUTES = {
    "card": {
        "uuid",
        "summary",
        "detail",
        "indicator",
        "source",
        "suggestions",
        "selectionBehavior",
        "overrideReasons",
        "links",
        "extension",
    },
    "source": {"label", "url", "icon", "topic", "extension"},
    "suggestion": {"label", "uuid", "isRecommended", "actions", "actionSelectionBehavior", "extension"},
    "action": {"type", "description", "resource", "resourceId", "extension"},
    "coding": {"system", "code", "display"},
    "link": {"label", "url", "type", "appContext", "autolaunchable", "extension"},
}


def example(name: str) -> Any:
    text = (EXAMPLES / name).read_text()
    text = re.sub(r"\{% raw\s+%\}\{\{\{% endraw\s+%\}", "{{", text)  # as the published page shows it
    return json.loads(text[text.index("{") :])  # 15 starts with its HTTP status line


def json_type(value: Any) -> str:
    return (
        "number" if isinstance(value, int | float) and not isinstance(value, bool) else type(value).__name__
    )


def shape_errors(ours: Any, spec: Any, at: str = "") -> list[str]:
    """Where `ours` and `spec` give one key values of different JSON types; lists are compared
    element by element against every element of the example's list."""
    if json_type(ours) != json_type(spec):
        return [f"{at or '(root)'}: {json_type(ours)} where the example has {json_type(spec)}"]
    if isinstance(ours, dict):
        return [e for k in ours.keys() & spec.keys() for e in shape_errors(ours[k], spec[k], f"{at}.{k}")]
    if isinstance(ours, list):
        return [e for i, o in enumerate(ours) for s in spec for e in shape_errors(o, s, f"{at}[{i}]")]
    return []


def unknown_attributes(response: dict[str, Any]) -> list[str]:
    """Keys of the response's objects that CDS Hooks 3.0 does not define."""
    found = []

    def check(obj: dict[str, Any], kind: str, at: str) -> None:
        found.extend(f"{at}.{k}" for k in obj.keys() - ATTRIBUTES[kind])

    for i, card in enumerate(response["cards"]):
        check(card, "card", f"cards[{i}]")
        check(card["source"], "source", f"cards[{i}].source")
        for coding in card.get("overrideReasons", []):
            check(coding, "coding", f"cards[{i}].overrideReasons")
        for link in card.get("links") or []:
            check(link, "link", f"cards[{i}].links")
        for j, suggestion in enumerate(card.get("suggestions", [])):
            check(suggestion, "suggestion", f"cards[{i}].suggestions[{j}]")
            for action in suggestion.get("actions", []):
                check(action, "action", f"cards[{i}].suggestions[{j}].actions")
    assert response.keys() <= {"cards", "systemActions", "extension"}
    return found


@pytest.fixture(scope="module")
def spec_client(live_server, api_settings: Settings) -> Iterator[httpx.Client]:
    """The service with example 02's FHIR server configured for the test client: what decides its
    answer is then the scopes the example grants, not an unknown server."""
    settings = api_settings.model_copy(update={"fhir_servers": json.dumps({CLIENT: [SPEC_FHIR_SERVER]})})
    with live_server(settings) as live, httpx.Client(base_url=live.url, timeout=60.0) as client:
        yield client


def post(client: httpx.Client, auth, body: Any) -> httpx.Response:
    response = client.post(SERVICE, json=body, headers=auth("cds-client"))
    if response.status_code == 200:
        assert response_violations(response.json()) == []  # cds-resp-1..7, on every response
    return response


def with_prefetch(request: dict[str, Any], patient_view, world: World, seed: int) -> dict[str, Any]:
    """The example request, its own fields kept, with this service's prefetch for a generated
    patient that has problems to treat; the patient takes the example's id."""
    pid = request["context"]["patientId"]
    for patient in generate_patients(world, 20, seed=seed):
        ours = patient_view(patient.bundle)
        if any(e["resource"]["resourceType"] == "Condition" for e in patient.bundle["entry"]):
            break
    prefetch = copy.deepcopy(ours["prefetch"])
    prefetch["patient"]["id"] = pid
    return {**request, "prefetch": {**(request.get("prefetch") or {}), **prefetch}}


# --- discovery --------------------------------------------------------------------------------


def test_discovery_is_shaped_as_the_specifications_examples(client: httpx.Client, auth) -> None:
    ours = client.get("/cds-services", headers=auth("cds-client")).json()
    for name in ("index__01__discovery.json", "index__31__extensions.json"):
        assert shape_errors(ours, example(name)) == []
    (service,) = ours["services"]
    assert (service["hook"], service["version"], service["hookVersion"]) == ("patient-view", "3.0.0", "1.0")
    assert {"title", "description", "id", "prefetch", "usageRequirements"} <= service.keys()
    spec = next(s for s in example("index__01__discovery.json")["services"] if s["hook"] == "patient-view")
    # Prefetch templates use the specification's token for the patient, as its example does.
    assert spec["prefetch"]["patientToGreet"] == "Patient/{{context.patientId}}"
    assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    assert all("{{context.patientId}}" in t for t in service["prefetch"].values())


# --- hook requests ----------------------------------------------------------------------------


def test_the_specifications_request_is_answered_412_naming_what_its_scopes_do_not_grant(
    spec_client: httpx.Client, auth
) -> None:
    """Example 02 sends only `patientToGreet`, and an access token scoped `user/Patient.read
    user/Observation.read`: the service cannot read conditions, medications or allergies with it,
    so it answers 412 as the specification says, without calling the FHIR server."""
    response = post(spec_client, auth, example("index__02__example.json"))
    assert response.status_code == 412, response.text
    outcome = response.json()
    OperationOutcome.model_validate(outcome)
    spec_outcome = example("index__15__example-operationoutcome-resource.http")
    OperationOutcome.model_validate(spec_outcome)
    assert outcome["issue"][0].keys() >= {"severity", "code", "diagnostics"}
    assert shape_errors(outcome["issue"], spec_outcome["issue"]) == []
    diagnostics = outcome["issue"][0]["diagnostics"]
    assert "fhirAuthorization.scope" in diagnostics
    assert all(f"{r}.s" in diagnostics for r in ("Condition", "MedicationRequest", "AllergyIntolerance"))
    assert "Patient.r" not in diagnostics  # user/Patient.read (SMART v1) grants the read


def test_the_specifications_access_token_is_read_as_smart_scopes() -> None:
    auth = FHIRAuthorization.model_validate(
        example("index__13__passing-the-access-token-to-the-cds-service.json")["fhirAuthorization"]
    )
    scopes = auth.scope.split()
    assert grants(scopes, "Patient", "r") and grants(scopes, "Observation", "s")
    assert not grants(scopes, "Condition", "s")


def test_the_specifications_request_with_this_services_prefetch_gets_its_empty_response(
    spec_client: httpx.Client, auth
) -> None:
    """Example 02's patient has no problem list: the answer is example 14, `{"cards": []}`."""
    request = example("index__02__example.json")
    greeted = request["prefetch"]["patientToGreet"]
    request["prefetch"] |= {"patient": greeted} | {key: EMPTY for key in SEARCH_KEYS}
    response = post(spec_client, auth, request)
    assert response.status_code == 200, response.text
    assert response.json() == example("index__14__http-response.json")


def test_prefetch_keys_of_other_services_are_ignored(
    client: httpx.Client, auth, patient_view, world: World
) -> None:
    """Example 12's prefetch keys (`hemoglobin-a1c`, `user`) sent beside this service's own."""
    request = patient_view(generate_patients(world, 1, seed=71)[0].bundle)
    extra = example("index__12__example-prefetch-data.json")["prefetch"]
    request["prefetch"] |= {k: v for k, v in extra.items() if k != "patient"}
    assert post(client, auth, request).status_code == 200


def test_the_extension_example_is_refused_only_for_the_patient_it_does_not_name(
    client: httpx.Client, auth, patient_view, world: World
) -> None:
    """Example 30 (a request `extension`) leaves out `context.patientId`, which the patient-view hook
    requires: 422 naming it. With the patient and prefetch added, the extension is simply ignored."""
    request = example("index__30__extensions.json")
    refused = post(client, auth, request)
    assert refused.status_code == 422
    assert "context.patientId" in refused.json()["issue"][0]["diagnostics"]
    request["context"]["patientId"] = "1288992"
    answered = post(client, auth, with_prefetch(request, patient_view, world, seed=72))
    assert answered.status_code == 200, answered.text
    assert answered.json()["cards"]


@pytest.fixture(scope="module")
def cards(server, auth, patient_view, world: World) -> list[dict[str, Any]]:
    """The cards the service gives for the patient-view hook definition's two context examples."""
    found = []
    with httpx.Client(base_url=server.url, timeout=60.0) as client:
        for i, seed in ((1, 73), (2, 74)):
            request = {
                "hook": "patient-view",
                "hookInstance": f"d1577c69-dfbe-44ad-ba6d-3e05e953b2e{i}",
                **example(f"patient-view__0{i}__context.json"),
            }
            response = post(client, auth, with_prefetch(request, patient_view, world, seed))
            assert response.status_code == 200, response.text
            assert unknown_attributes(response.json()) == []
            found += response.json()["cards"]
    assert found
    return found


def test_cards_are_shaped_as_the_specifications_example_cards(cards: list[dict[str, Any]]) -> None:
    response = {"cards": cards}
    for name in (
        "index__21__example.json",
        "index__22__example.json",
        "index__19__reasons-for-rejecting-a-card.json",
    ):
        spec = example(name)
        assert shape_errors(response, spec if "cards" in spec else {"cards": [spec]}) == []
    actions = [a for c in cards for s in c["suggestions"] for a in s["actions"]]
    assert actions and all(shape_errors(a, example("index__16__action.json")) == [] for a in actions)


# --- responses: the examples themselves -------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["index__14__http-response.json", "index__20__system-action.json", "index__21__example.json"]
)
def test_the_specifications_responses_keep_the_invariants(name: str) -> None:
    assert response_violations(example(name)) == []


def test_the_specifications_autolaunch_example_lacks_only_its_required_indicator() -> None:
    """Example 22 omits `indicator` (1..1 in CDSHooksResponse): the checks find that, and only that."""
    (violation,) = response_violations(example("index__22__example.json"))
    assert violation.rule == "CDSHooksResponse.cards.indicator 1..1"


def test_the_models_hold_the_specifications_system_actions_links_and_actions() -> None:
    system = example("index__20__system-action.json")
    assert CDSResponse.model_validate(system).model_dump(exclude_none=True) == system
    for name in ("index__21__example.json", "index__22__example.json"):
        for link in (lk for card in example(name)["cards"] for lk in card.get("links", [])):
            assert Link.model_validate(link).model_dump(exclude_none=True) == link
    for name in ("index__16__action.json", "index__17__action.json", "index__18__action.json"):
        action = example(name)
        assert Action.model_validate(action).model_dump(exclude_none=True) == action
    fragments = [example(f"index__1{n}__action.json") for n in (6, 7, 8)]
    card = {"summary": "s", "indicator": "info", "source": {"label": "l"}, "selectionBehavior": "any"}
    card |= {"suggestions": [{"label": "x", "actions": fragments}]}
    card |= example("index__19__reasons-for-rejecting-a-card.json")
    assert response_violations({"cards": [card]}) == []


# --- feedback ---------------------------------------------------------------------------------


def stored(settings: Settings) -> int:
    with deployment_store(settings)() as session:
        return counts(session)["feedback"]


def test_the_specifications_feedback_is_stored(
    client: httpx.Client, auth, cards: list[dict[str, Any]], api_settings: Settings
) -> None:
    card = cards[0]
    accepted = example("index__23__example-suggestion-accepted.json")
    accepted["feedback"][0]["card"] = card["uuid"]
    accepted["feedback"][0]["acceptedSuggestions"][0]["id"] = card["suggestions"][0]["uuid"]
    without = example("index__24__example-overridden-guidance-without-overridereason.json")
    without["feedback"][0]["card"] = card["uuid"]
    # Example 25's reason is the client's own (another system): the override counts, the reason
    # is not stored (tests/services/test_override_reasons.py).
    with_reason = example("index__25__example-overridden-guidance-with-overridereason.json")
    with_reason["feedback"][0]["card"] = cards[-1]["uuid"]
    before = stored(api_settings)
    url = f"{SERVICE}/feedback"
    for body in (accepted, without, with_reason):
        response = client.post(url, json=body, headers=auth("cds-client"))
        assert response.status_code == 200, response.text
        assert response.json() == {"stored": 1, "duplicates": 0}
    assert stored(api_settings) == before + 3

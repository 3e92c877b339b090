"""CDS Hooks 3.0 feedback, held to its logical model (CDSHooksFeedback): a body that breaks one of
its invariants cds-fb-1..3, or leaves out a required element, is refused with 400 and an
OperationOutcome naming the rule, and nothing of the request is stored.

The invariants, as `fsh/invariants/cds-fb-*.fsh` of the specification state them:
cds-fb-1 outcome is 'accepted' or 'overridden'; cds-fb-2 an 'accepted' outcome provides
acceptedSuggestions; cds-fb-3 an overrideReason holds a reason, a userComment, or both. The
logical model also makes `outcomeTimestamp` 1..1, and the text gives acceptedSuggestions to
accepted outcomes and overrideReason to overridden ones (this service's rules clinrlhf-fb-4, -5).
"""

from __future__ import annotations

import httpx
import pytest

from clinrlhf.settings import Settings
from clinrlhf.store import counts, deployment_store
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World

SERVICE = "/cds-services/clinrlhf-treatment"
WHEN = "2026-06-01T08:00:00Z"


@pytest.fixture(scope="module")
def card(server, auth, patient_view, world: World) -> dict:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for patient in generate_patients(world, 20, seed=241):
            response = client.post(SERVICE, json=patient_view(patient.bundle), headers=auth("cds-client"))
            if cards := response.json()["cards"]:
                return dict(cards[0])
    raise AssertionError("no card in 20 patients")


def stored(settings: Settings) -> int:
    with deployment_store(settings)() as session:
        return counts(session)["feedback"]


def accepted(card: dict) -> dict:
    return {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
        "outcomeTimestamp": WHEN,
    }


def overridden(card: dict) -> dict:
    return {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": WHEN}


BROKEN = {
    "cds-fb-1": lambda c: {**overridden(c), "outcome": "rejected"},
    "cds-fb-2": lambda c: {k: v for k, v in accepted(c).items() if k != "acceptedSuggestions"},
    "cds-fb-2 (empty)": lambda c: {**accepted(c), "acceptedSuggestions": []},
    "cds-fb-3": lambda c: {**overridden(c), "overrideReason": {}},
    "outcomeTimestamp": lambda c: {k: v for k, v in overridden(c).items() if k != "outcomeTimestamp"},
    "clinrlhf-fb-4": lambda c: {**overridden(c), "acceptedSuggestions": accepted(c)["acceptedSuggestions"]},
    "clinrlhf-fb-5": lambda c: {**accepted(c), "overrideReason": {"userComment": "no"}},
}


@pytest.mark.parametrize("rule", BROKEN)
def test_a_broken_rule_is_a_400_naming_it_and_nothing_is_stored(
    client: httpx.Client, auth, card: dict, api_settings: Settings, rule: str
) -> None:
    before = stored(api_settings)
    # A valid entry beside the broken one: the request stands or falls as a whole.
    body = {"feedback": [overridden(card), BROKEN[rule](card)]}
    response = client.post(f"{SERVICE}/feedback", json=body, headers=auth("cds-client"))
    assert response.status_code == 400, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    (issue,) = outcome["issue"]
    assert issue["severity"] == "error"
    assert issue["code"] == ("required" if rule == "outcomeTimestamp" else "invariant")
    assert rule.split(" ")[0] in issue["diagnostics"] and "feedback[1]" in issue["diagnostics"]
    assert stored(api_settings) == before


def test_every_broken_rule_of_a_request_is_named(client: httpx.Client, auth, card: dict) -> None:
    body = {"feedback": [BROKEN["cds-fb-1"](card), BROKEN["cds-fb-3"](card)]}
    response = client.post(f"{SERVICE}/feedback", json=body, headers=auth("cds-client"))
    assert response.status_code == 400
    text = response.json()["issue"][0]["diagnostics"]
    assert "feedback[0]: cds-fb-1" in text and "feedback[1].overrideReason: cds-fb-3" in text


def test_the_rules_never_quote_the_request(client: httpx.Client, auth, card: dict) -> None:
    body = {"feedback": [{**overridden(card), "outcome": "Jane Doe 555-0100"}]}
    response = client.post(f"{SERVICE}/feedback", json=body, headers=auth("cds-client"))
    assert response.status_code == 400 and "Jane" not in response.text and "555" not in response.text


@pytest.mark.parametrize("entry", [accepted, overridden], ids=["accepted", "overridden"])
def test_feedback_that_keeps_the_rules_is_stored(client: httpx.Client, auth, card: dict, entry) -> None:
    body = {"feedback": [{**entry(card), "outcomeTimestamp": "2026-06-02T09:30:00.52Z"}]}
    response = client.post(f"{SERVICE}/feedback", json=body, headers=auth("cds-client"))
    assert response.status_code == 200, response.text

"""The checks of CDS Hooks 3.0's invariants catch each rule broken, and only that rule: a valid
response (the specification's example 21, plus a suggestion) is broken one rule at a time."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from services.cds.invariants import feedback_violations, request_violations, response_violations

EXAMPLES = Path(__file__).parent / "spec_examples"


def valid() -> dict[str, Any]:
    response = json.loads((EXAMPLES / "index__21__example.json").read_text())
    response["cards"][0] |= {
        "selectionBehavior": "at-most-one",
        "suggestions": [
            {"label": "a", "isRecommended": True, "actions": [{"type": "create", "description": "d"}]},
            {
                "label": "b",
                "isRecommended": False,
                "actions": [{"type": "delete", "description": "d", "resourceId": "X/1"}],
            },
        ],
    }
    return response


def suggestion(r: dict[str, Any]) -> dict[str, Any]:
    return r["cards"][0]["suggestions"][1]


BREAKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "cds-resp-1": lambda r: suggestion(r).update(isRecommended=True),
    "cds-resp-2": lambda r: suggestion(r)["actions"][0].update(resource={"resourceType": "X"}),
    "cds-resp-3": lambda r: r["cards"][0]["links"][0].update(appContext="{}"),
    "cds-resp-4": lambda r: r["cards"][1]["overrideReasons"][0].pop("display"),
    "cds-resp-5": lambda r: suggestion(r)["actions"][0].pop("description"),
    "cds-resp-6": lambda r: r["cards"][0].pop("selectionBehavior"),
    "cds-resp-7": lambda r: suggestion(r).update(actionSelectionBehavior="some"),
    "CDSHooksResponse.cards.summary 1..1": lambda r: r["cards"][1].update(summary="x" * 140),
}


def test_the_valid_response_breaks_nothing() -> None:
    assert response_violations(valid()) == []


@pytest.mark.parametrize("rule", BREAKS)
def test_each_broken_rule_is_found_and_named(rule: str) -> None:
    response = copy.deepcopy(valid())
    BREAKS[rule](response)
    assert [v.rule for v in response_violations(response)] == [rule]


def test_a_delete_with_a_resource_is_only_a_warning() -> None:
    response = valid()
    BREAKS["cds-resp-2"](response)
    assert [v.severity for v in response_violations(response)] == ["warning"]


def test_a_body_that_is_no_response_is_named_as_such() -> None:
    assert [v.rule for v in response_violations({"card": []})] == ["CDSHooksResponse.cards"]


@pytest.mark.parametrize("body", [None, [], "x", {"feedback": "x"}, {"feedback": [1, None, []]}])
def test_feedback_not_shaped_as_feedback_is_left_to_the_schema(body: Any) -> None:
    assert feedback_violations(body) == [] and request_violations(body) == []

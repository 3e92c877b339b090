"""The invariants of CDS Hooks 3.0's logical models, as checks over JSON bodies.

The rules are the specification's own (`fsh/invariants/*.fsh`, https://cds-hooks.hl7.org): each
check names its invariant, so a refusal says which rule a body broke. Requests and feedback are
checked as they arrive; responses are checked by the tests, over every response the service gives.
A violation never quotes the body: it names the rule and a location made of element names and list
indexes only.

Besides the invariants, two rules follow from the elements' definitions and are this service's
own: acceptedSuggestions belong to an accepted outcome (clinrlhf-fb-4), and an overrideReason to an
overridden one (clinrlhf-fb-5). Cardinalities the models require (`outcomeTimestamp 1..1`) are
named by their element.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Violation:
    rule: str  # "cds-fb-2", or the element whose cardinality is broken
    where: str  # e.g. "feedback[1].acceptedSuggestions": element names and indexes only
    text: str  # fixed text of the rule
    severity: Literal["error", "warning"] = "error"
    kind: Literal["invariant", "required"] = "invariant"

    def __str__(self) -> str:
        return f"{self.where}: {self.rule}: {self.text}"


def _exists(value: Any) -> bool:
    """FHIRPath `exists()` over JSON: null, an empty list and an empty string do not exist."""
    return value is not None and value != [] and value != ""


def _items(body: Mapping[str, Any], key: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    value = body.get(key)
    for i, item in enumerate(value if isinstance(value, list) else []):
        if isinstance(item, Mapping):
            yield i, item


# --- feedback (CDSHooksFeedback) ---------------------------------------------------------------


def feedback_violations(body: Any) -> list[Violation]:
    """The rules each entry of a feedback body breaks. A body that is not even shaped as one (no
    `feedback` list, an entry that is not an object) is left to schema validation."""
    if not isinstance(body, Mapping):
        return []
    found = []
    for i, entry in _items(body, "feedback"):
        at = f"feedback[{i}]"
        outcome = entry.get("outcome")
        if outcome not in ("accepted", "overridden"):
            found.append(Violation("cds-fb-1", at, "outcome must be 'accepted' or 'overridden'"))
        if outcome == "accepted" and not _exists(entry.get("acceptedSuggestions")):
            found.append(
                Violation("cds-fb-2", at, "if outcome is 'accepted', acceptedSuggestions SHALL be provided")
            )
        reason = entry.get("overrideReason")
        if isinstance(reason, Mapping) and not (
            _exists(reason.get("reason")) or _exists(reason.get("userComment"))
        ):
            found.append(
                Violation(
                    "cds-fb-3",
                    f"{at}.overrideReason",
                    "an overrideReason must contain a reason, a userComment, or both",
                )
            )
        if outcome == "overridden" and _exists(entry.get("acceptedSuggestions")):
            found.append(
                Violation("clinrlhf-fb-4", at, "acceptedSuggestions are only for an 'accepted' outcome")
            )
        if outcome == "accepted" and _exists(reason):
            found.append(
                Violation("clinrlhf-fb-5", at, "an overrideReason is only for an 'overridden' outcome")
            )
        if not _exists(entry.get("outcomeTimestamp")):
            found.append(
                Violation(
                    "CDSHooksFeedback.feedback.outcomeTimestamp 1..1",
                    f"{at}.outcomeTimestamp",
                    "required: when the user acted on the card, in UTC",
                    kind="required",
                )
            )
    return found


# --- requests (CDSHooksRequest) ----------------------------------------------------------------


def request_violations(body: Any) -> list[Violation]:
    """cds-r-1 (an error) and cds-r-2 (a warning) of a hook request."""
    if not isinstance(body, Mapping):
        return []
    found = []
    auth = body.get("fhirAuthorization")
    if _exists(auth) and not _exists(body.get("fhirServer")):
        found.append(
            Violation(
                "cds-r-1",
                "fhirServer",
                "if fhirAuthorization details are provided, a fhirServer SHALL be specified",
            )
        )
    if (
        isinstance(auth, Mapping)
        and "patient/" in str(auth.get("scope", ""))
        and not _exists(auth.get("patient"))
    ):
        found.append(
            Violation(
                "cds-r-2",
                "fhirAuthorization.patient",
                "with patient scopes, the patient field SHOULD identify the patient",
                severity="warning",
            )
        )
    return found


# --- responses (CDSHooksResponse) --------------------------------------------------------------

_INDICATORS = ("info", "warning", "critical")
_SELECTION = ("at-most-one", "any")
_ACTION_SELECTION = ("all", "any", "at-most-one")
_ACTION_TYPES = ("create", "update", "delete")
_LINK_TYPES = ("absolute", "smart")


def _action_violations(action: Mapping[str, Any], at: str) -> Iterator[Violation]:
    if action.get("type") not in _ACTION_TYPES:
        yield Violation(
            "CDSHooksResponse.cards.suggestions.actions.type 1..1", at, "create | update | delete"
        )
    if action.get("type") == "delete" and not (
        _exists(action.get("resourceId")) and not _exists(action.get("resource"))
    ):
        yield Violation(
            "cds-resp-2",
            at,
            "a resourceId, not a resource, must be provided when type = delete",
            severity="warning",
        )


def _card_violations(card: Mapping[str, Any], at: str) -> Iterator[Violation]:
    summary = card.get("summary")
    if not isinstance(summary, str) or not summary or len(summary) >= 140:
        yield Violation("CDSHooksResponse.cards.summary 1..1", at, "a summary of fewer than 140 characters")
    if card.get("indicator") not in _INDICATORS:
        yield Violation("CDSHooksResponse.cards.indicator 1..1", at, "info | warning | critical")
    source = card.get("source")
    if not isinstance(source, Mapping) or not _exists(source.get("label")):
        yield Violation("CDSHooksResponse.cards.source.label 1..1", at, "a source with a label")
    behavior = card.get("selectionBehavior")
    if behavior is not None and behavior not in _SELECTION:
        yield Violation("CDSHooksResponse.cards.selectionBehavior", at, "at-most-one | any")
    suggestions = list(_items(card, "suggestions"))
    if behavior == "at-most-one" and sum(s.get("isRecommended") is True for _, s in suggestions) > 1:
        yield Violation(
            "cds-resp-1", at, "only one action can be suggested if selectionBehavior = at-most-one"
        )
    if _exists(card.get("suggestions")) and not _exists(behavior):
        yield Violation(
            "cds-resp-6", at, "if suggestions are present, selectionBehavior MUST also be provided"
        )
    for j, suggestion in suggestions:
        s_at = f"{at}.suggestions[{j}]"
        if not _exists(suggestion.get("label")):
            yield Violation("CDSHooksResponse.cards.suggestions.label 1..1", s_at, "a label")
        actions = list(_items(suggestion, "actions"))
        if not all(_exists(a.get("description")) for _, a in actions):
            yield Violation("cds-resp-5", s_at, "all suggestion actions must have a description")
        choice = suggestion.get("actionSelectionBehavior")
        if choice is not None and choice not in _ACTION_SELECTION:
            yield Violation(
                "cds-resp-7", s_at, "actionSelectionBehavior must be 'all', 'any', or 'at-most-one'"
            )
        for k, action in actions:
            yield from _action_violations(action, f"{s_at}.actions[{k}]")
    if not all(_exists(r.get("display")) for _, r in _items(card, "overrideReasons")):
        yield Violation(
            "cds-resp-4",
            f"{at}.overrideReasons",
            "the CDS Service MUST populate a display value for each reason's Coding",
        )
    for j, link in _items(card, "links"):
        l_at = f"{at}.links[{j}]"
        if not (_exists(link.get("label")) and _exists(link.get("url")) and link.get("type") in _LINK_TYPES):
            yield Violation(
                "CDSHooksResponse.cards.links 1..1", l_at, "a label, a url and a type (absolute | smart)"
            )
        if link.get("type") != "smart" and _exists(link.get("appContext")):
            yield Violation("cds-resp-3", l_at, "appContext only for smart apps")


def response_violations(body: Any) -> list[Violation]:
    """Every rule of CDSHooksResponse (cds-resp-1..7 and the required elements) a body breaks."""
    if not isinstance(body, Mapping) or not isinstance(body.get("cards"), list):
        return [
            Violation(
                "CDSHooksResponse.cards", "cards", "a response SHALL hold a cards array", kind="required"
            )
        ]
    found: list[Violation] = []
    for i, card in _items(body, "cards"):
        found += _card_violations(card, f"cards[{i}]")
    if "systemActions" in body and not isinstance(body["systemActions"], list):
        found.append(Violation("CDSHooksResponse.systemActions", "systemActions", "an array of actions"))
    for i, action in _items(body, "systemActions"):
        found += _action_violations(action, f"systemActions[{i}]")  # description is optional here
    return found

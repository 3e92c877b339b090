"""Input is untrusted: an identifier planted in *any* element, in any shape, never survives, and a
malformed element is dropped or refused with a fixed message, never an unexpected exception."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from clinrlhf.world import load_world
from clinrlhf.world.patients import generate_patients
from privacy.deid import deidentify_bundle
from privacy.deid.bundle import deidentify_with_report

TODAY = date(2026, 3, 1)
BASE = generate_patients(load_world(), 1, seed=11, today=TODAY)[0].bundle
FAMILY = BASE["entry"][0]["resource"]["name"][0]["family"]
PLANTS: list[Any] = [
    "Okafor",
    FAMILY,
    FAMILY.lower(),
    ["Okafor"],
    {"text": "Okafor"},
    [{"value": FAMILY}],
    5,
    None,
]


def _paths(node: Any, prefix: tuple = ()) -> Iterator[tuple]:
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield (*prefix, key)
        yield from _paths(value, (*prefix, key))


PATHS = [(i, p) for i, e in enumerate(BASE["entry"]) for p in _paths(e["resource"]) if p != ("resourceType",)]


@pytest.mark.parametrize(("entry", "path"), PATHS, ids=[f"{i}:{'.'.join(map(str, p))}" for i, p in PATHS])
def test_a_planted_identifier_never_survives_in_any_element(entry: int, path: tuple) -> None:
    for plant in PLANTS:
        bundle = copy.deepcopy(BASE)
        node = bundle["entry"][entry]["resource"]
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = copy.deepcopy(plant)
        try:
            out = json.dumps(deidentify_bundle(bundle, key=b"k" * 32, today=TODAY).bundle).lower()
        except ValueError as err:  # refused: the message must not quote the record
            assert "okafor" not in str(err).lower() and FAMILY.lower() not in str(err).lower()
            continue
        assert "okafor" not in out and FAMILY.lower() not in out


@pytest.mark.parametrize("plant", ["Okafor", FAMILY, {"family": "Okafor"}, ["Condition", "Okafor"]])
def test_a_planted_resource_type_reaches_neither_the_output_nor_the_report(plant: Any) -> None:
    """A resource of a type the rules do not list is dropped and counted by type; the count's key is
    FHIR's name for the type or "unknown", never the sender's text (the report is shared, logged to
    MLflow and written beside ingestion)."""
    bundle = copy.deepcopy(BASE)
    patient = BASE["entry"][0]["resource"]
    bundle["entry"].append(
        {"resource": {"resourceType": plant, "subject": {"reference": f"Patient/{patient['id']}"}}}
    )
    result, report = deidentify_with_report(bundle, key=b"k" * 32, today=TODAY)
    shown = (json.dumps(result.bundle) + json.dumps(report.to_dict())).lower()
    assert "okafor" not in shown and FAMILY.lower() not in shown
    assert report.dropped_resources["unknown"] == 1

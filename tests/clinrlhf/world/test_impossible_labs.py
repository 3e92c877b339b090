"""Facts are never read from a lab value no patient can have, and never written as non-standard
JSON: the ingest path and the CDS path share these (issue 20, finding 6)."""

from __future__ import annotations

import copy
import math

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import StatementError

from clinrlhf.store import init_db, make_engine
from clinrlhf.store.models import Case
from clinrlhf.world.facts import LOINC, ImpossibleLabValueError, PatientFacts, facts_from_bundle
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World


def with_egfr(bundle: dict, value: object) -> dict:
    changed = copy.deepcopy(bundle)
    for entry in changed["entry"]:
        r = entry["resource"]
        if r["resourceType"] == "Observation" and any(
            c.get("system") == LOINC and c.get("code") == "33914-3" for c in r["code"]["coding"]
        ):
            r["valueQuantity"]["value"] = value
    return changed


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -5.0, 1e308, "NaN", "-Infinity"])
def test_an_impossible_egfr_is_refused_when_facts_are_read(world: World, value: object) -> None:
    bundle = generate_patients(world, 1, seed=601)[0].bundle
    with pytest.raises(ImpossibleLabValueError):
        facts_from_bundle(with_egfr(bundle, value))


@pytest.mark.parametrize("value", [0, 12.5, 300])
def test_possible_values_are_read_as_given(world: World, value: float) -> None:
    bundle = generate_patients(world, 1, seed=601)[0].bundle
    assert facts_from_bundle(with_egfr(bundle, value)).labs["33914-3"] == value


def test_facts_never_serialise_to_nan() -> None:
    with pytest.raises(ValueError):
        PatientFacts(age=50, sex="female", labs={"33914-3": math.nan}).to_json()


def test_the_stores_json_columns_refuse_nan(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    init_db(engine)
    row = {"id": "c", "patient": "p", "facts": "{}", "source": "cds", "deid_counts": {"x": math.inf}}
    with pytest.raises(StatementError, match="not JSON compliant"), engine.begin() as connection:
        connection.execute(insert(Case), [row])

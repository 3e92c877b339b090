"""Real-shaped Synthea bundles parse into facts without surprises."""

import json
from pathlib import Path

import pytest

from clinrlhf.world import facts_from_bundle, load_world, targets_of

SYNTHEA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "synthea-r4"
BUNDLES = sorted(p for p in SYNTHEA.glob("*_*.json"))


@pytest.mark.skipif(not BUNDLES, reason="../shared/data/synthea-r4 is not beside the checkout")
def test_every_synthea_patient_yields_facts():
    world = load_world()
    with_targets = 0
    for path in BUNDLES:
        facts = facts_from_bundle(json.loads(path.read_text()))
        assert 0 <= facts.age <= 90 and facts.sex in {"male", "female"}
        assert facts.labs, "Synthea records always have some LOINC observations"
        with_targets += bool(targets_of(world, facts))
    assert len(BUNDLES) == 11 and with_targets >= 5

"""The simulated EHR's CDS Hooks request: a hookInstance derived from (panel seed, patient), so one
seed gives the service the same sampling seeds, hence the same suggestions, run after run."""

from __future__ import annotations

import uuid

from clinrlhf.panel.ehr import hook_instance, patient_view_request
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World


def test_hook_instance_is_a_name_based_uuid_of_seed_and_patient() -> None:
    first = hook_instance(0, 7)
    assert first == hook_instance(0, 7)
    assert uuid.UUID(first).version == 5
    assert len({first, hook_instance(0, 8), hook_instance(1, 7)}) == 3


def test_request_carries_the_given_instance_or_a_fresh_random_one(world: World) -> None:
    bundle = generate_patients(world, 1, seed=3)[0].bundle
    given = patient_view_request(bundle, user="Practitioner/dr-1", instance=hook_instance(0, 0))
    assert given["hookInstance"] == hook_instance(0, 0)
    assert given["context"] == {
        "userId": "Practitioner/dr-1",
        "patientId": given["prefetch"]["patient"]["id"],
    }
    fresh = [patient_view_request(bundle)["hookInstance"] for _ in range(2)]
    assert fresh[0] != fresh[1] and uuid.UUID(fresh[0]).version == 4

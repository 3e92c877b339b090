"""The panel's optional steering: off by default (every patient, in order), on when configured."""

from __future__ import annotations

from collections import Counter
from datetime import date

from clinrlhf.feedback.steering import SteeringConfig
from clinrlhf.panel.clinicians import default_panel
from clinrlhf.panel.session import PanelConfig, PanelRun
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import load_world


def _run(config: PanelConfig) -> PanelRun:
    return PanelRun("http://unused", load_world(), default_panel(), {}, config)


def test_default_sends_every_patient_in_order():
    patients = generate_patients(load_world(), 40, 0, date(2025, 6, 1))
    assert _run(PanelConfig()).selection(patients) == list(range(40))


def test_steering_by_ethnicity_oversamples_the_minority():
    patients = generate_patients(load_world(), 400, 0, date(2025, 6, 1))
    steering = {"attribute": "ethnicity", "patients": 60}  # as a JSON config would give it
    chosen = _run(PanelConfig(steering=steering)).selection(patients)  # type: ignore[arg-type]
    share = Counter(patients[i].facts.ethnicity for i in chosen)["hispanic"] / len(chosen)
    base = Counter(p.facts.ethnicity for p in patients)["hispanic"] / len(patients)
    assert len(chosen) == 60 and share > base + 0.1
    assert chosen == _run(PanelConfig(steering=SteeringConfig(**steering))).selection(patients)

"""The panel's optional steering: off by default (every patient, in order), on when configured."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from clinrlhf.feedback.steering import SteeringConfig
from clinrlhf.panel.clinicians import default_panel
from clinrlhf.panel.session import PanelConfig, PanelRun
from clinrlhf.pipeline.config import load_pipeline_config
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import load_world


def _run(config: PanelConfig) -> PanelRun:
    return PanelRun("http://unused", load_world(), default_panel(), {}, config)


def test_default_sends_every_patient_in_order():
    patients = generate_patients(load_world(), 40, 0, date(2025, 6, 1))
    assert _run(PanelConfig()).selection(patients) == list(range(40))


def _panel_config(tmp_path: Path, steering: dict) -> PanelConfig:
    """The panel section as a pipeline config file gives it."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"panel": {"steering": steering}}))
    return load_pipeline_config(path).panel


def test_steering_by_ethnicity_oversamples_the_minority(tmp_path):
    patients = generate_patients(load_world(), 400, 0, date(2025, 6, 1))
    config = _panel_config(tmp_path, {"attribute": "ethnicity", "patients": 60})
    assert config.steering == SteeringConfig(attribute="ethnicity", patients=60)  # the rest defaults
    chosen = _run(config).selection(patients)
    share = Counter(patients[i].facts.ethnicity for i in chosen)["hispanic"] / len(chosen)
    base = Counter(p.facts.ethnicity for p in patients)["hispanic"] / len(patients)
    assert len(chosen) == 60 and share > base + 0.1


def test_a_misspelt_steering_key_is_refused_when_the_config_loads(tmp_path):
    with pytest.raises(ValueError, match=r"unknown setting panel\.steering\.patientz; known: .*patients"):
        _panel_config(tmp_path, {"attribute": "age_band", "patientz": 750})

"""The RLAIF rubric: guideline-exact labels from the prompt alone, tagged as AI, and refused when
mixed with clinicians' feedback unless asked for."""

from __future__ import annotations

import random
from datetime import date

import pytest

from clinrlhf.feedback.judgment import Judgment
from clinrlhf.feedback.screening import MixedSourcesError, ScreeningConfig
from clinrlhf.pipeline.screening import screen_snapshot
from clinrlhf.rlaif.rubric import RUBRIC, SOURCE, RubricConfig, facts_from_prompt, grade, label, preferred
from clinrlhf.store import open_store
from clinrlhf.text.prompt import render_prompt, render_response
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.scoring import findings_of, score, utility


def test_the_prompt_carries_every_finding_the_rules_use(world):
    for p in generate_patients(world, 300, 4, date(2025, 6, 1)):
        for target in p.targets:
            rebuilt = facts_from_prompt(world, render_prompt(world, p.facts, target))
            assert findings_of(world, rebuilt) == findings_of(world, p.facts)


def test_grades_and_preferences_match_the_world(world):
    rng = random.Random(0)
    drugs = sorted(world.drugs)
    checked = 0
    for p in generate_patients(world, 200, 9, date(2025, 6, 1)):
        for target in p.targets:
            prompt = render_prompt(world, p.facts, target)
            a, b = rng.sample(drugs, 2)
            ua, ub = (utility(score(world, p.facts, target, d)) for d in (a, b))
            assert grade(world, prompt, render_response(world, a)) == ua
            expected = None if ua == ub else 0 if ua > ub else 1
            assert preferred(world, prompt, render_response(world, a), render_response(world, b)) == expected
            checked += 1
    assert checked > 200


def _clinician_judgments(world) -> list[Judgment]:
    out = []
    for i, p in enumerate(generate_patients(world, 30, 1, date(2025, 6, 1))):
        target = p.targets[0]
        good = sorted(world.targets[target].drugs)
        responses = (render_response(world, good[0]), render_response(world, good[-1]))
        if responses[0] == responses[1]:
            continue
        prompt = render_prompt(world, p.facts, target)
        out += [Judgment("pairwise", f"card{i}", f"p{i}", c, prompt, responses, 0) for c in ("c1", "c2")]
    return out


def test_label_makes_one_ai_judgment_per_card(world):
    clinicians = _clinician_judgments(world)
    ai = label(world, clinicians)
    assert len(ai) == len({j.card for j in clinicians})
    assert {(j.source, j.clinician, j.kind) for j in ai} == {(SOURCE, RUBRIC, "pairwise")}
    flipped = label(world, clinicians, RubricConfig(error_rate=1.0))
    assert all(
        f.preferred == (None if a.preferred is None else 1 - a.preferred)
        for a, f in zip(ai, flipped, strict=True)
    )


def test_mixing_ai_and_clinician_feedback_is_refused_unless_asked(world, tmp_path):
    clinicians = _clinician_judgments(world)
    mixed = clinicians + label(world, clinicians)
    sessions = open_store(f"sqlite:///{tmp_path / 's.db'}")
    with pytest.raises(MixedSourcesError):
        screen_snapshot(sessions, mixed, actor="test")
    kept, quality = screen_snapshot(
        sessions, mixed, actor="test", config=ScreeningConfig(allow_mixed_sources=True)
    )
    assert quality["sources"] == {"ai": len(mixed) - len(clinicians), "clinician": len(clinicians)}
    assert kept == mixed
    # AI labels alone are one source: accepted, and never rated as a clinician.
    kept, quality = screen_snapshot(sessions, label(world, clinicians), actor="test")
    assert quality["sources"] == {"ai": len(kept)} and quality["raters"] == []

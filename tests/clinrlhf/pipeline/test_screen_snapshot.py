"""Screening a snapshot against the store: flagged clinicians are quarantined (an audit event each,
the reason written down) and every quarantined clinician's judgments are left out; a second
screening finds them already quarantined. Real parts: a SQLite store and the simulated panel."""

from __future__ import annotations

import random
from functools import partial

from clinrlhf.feedback.judgment import Judgment
from clinrlhf.feedback.safety import SafetyCheckConfig
from clinrlhf.panel.clinicians import panel_of
from clinrlhf.panel.offline import practice_pair_reviews
from clinrlhf.pipeline.screening import screen_snapshot
from clinrlhf.rlaif.rubric import grade
from clinrlhf.store import consistent_read, open_store
from clinrlhf.store.quarantine import quarantined
from clinrlhf.world.world import World


def _panel_judgments(seed: int = 0) -> list[Judgment]:
    """Four careful raters (accuracy 0.9) and one adversary (0.1), two or three per card."""
    rng = random.Random(seed)
    accuracy = {"good-1": 0.9, "good-2": 0.9, "good-3": 0.85, "good-4": 0.9, "adversary": 0.1}
    judgments = []
    for card in range(150):
        truth = rng.randrange(2)
        for rater in rng.sample(sorted(accuracy), rng.choice([2, 3])):
            preferred = truth if rng.random() < accuracy[rater] else 1 - truth
            judgments.append(
                Judgment(
                    kind="pairwise",
                    card=f"card{card}",
                    patient=f"p-card{card}",
                    clinician=rater,
                    prompt="sex female age 50-54 ; treat hypertension ->",
                    responses=("amlodipine 5 mg", "lisinopril 10 mg"),
                    preferred=preferred,
                )
            )
    return judgments


def test_screening_quarantines_the_adversary_and_leaves_out_their_judgments(tmp_path):
    sessions = open_store(f"sqlite:///{tmp_path / 's.db'}")
    judgments = _panel_judgments()
    kept, quality = screen_snapshot(sessions, judgments, actor="test", reasons=tmp_path / "r.ndjson")
    assert quality["quarantined"] == ["adversary"]
    assert {j.clinician for j in kept} == {"good-1", "good-2", "good-3", "good-4"}
    assert quality["excluded_judgments"] == sum(j.clinician == "adversary" for j in judgments)
    rows = {r["clinician"]: r for r in quality["raters"]}
    assert rows["adversary"]["accuracy"] < 0.25 and rows["adversary"]["flagged"]
    assert rows["adversary"]["kappa_vs_others"] < 0 < rows["good-1"]["kappa_vs_others"]
    assert all(rows[f"good-{i}"]["accuracy"] > 0.75 for i in range(1, 5))
    assert set(quality["case_types"]) == {"hypertension"}
    with consistent_read(sessions) as session:
        assert list(quarantined(session)) == ["adversary"]
    # A second screening finds them already quarantined: no second audit event, same exclusion.
    kept_again, _ = screen_snapshot(sessions, judgments, actor="test")
    assert kept_again == kept


def test_screening_quarantines_them_with_the_reason_and_reports_the_check(world: World, tmp_path) -> None:
    sessions = open_store(f"sqlite:///{tmp_path / 's.db'}")
    raters = panel_of(20, 2, "contraindication-blind")
    blind = sorted(c.id for c in raters if c.blind_to_contraindications)
    judgments = practice_pair_reviews(world, raters, 1500, 0)
    reasons = tmp_path / "reasons.ndjson"
    kept, quality = screen_snapshot(
        sessions, judgments, actor="test", reasons=reasons, grade=partial(grade, world)
    )
    assert quality["quarantined"] == blind
    assert not {j.clinician for j in kept} & set(blind)
    assert "guideline check" in reasons.read_text()
    section = quality["safety_check"]
    assert section["rule"]["alpha"] == SafetyCheckConfig().alpha
    assert sorted(r["clinician"] for r in section["clinicians"] if r["flagged"]) == blind
    with consistent_read(sessions) as session:
        assert sorted(quarantined(session)) == blind
    # Without the guideline the check does not run, and the report says so.
    other = open_store(f"sqlite:///{tmp_path / 'other.db'}")
    _, without = screen_snapshot(other, judgments, actor="test")
    assert without["safety_check"] is None and without["quarantined"] == []

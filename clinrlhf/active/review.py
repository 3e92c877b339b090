"""The simulated panel's judgments of a round's cards, and what the round asked about (report only)."""

from __future__ import annotations

import hashlib
import random
from dataclasses import replace

from clinrlhf.active.pool import Pool
from clinrlhf.active.selection import Assignment
from clinrlhf.feedback.judgment import Judgment
from clinrlhf.panel.clinicians import Clinician, review_pair
from clinrlhf.text.prompt import render_response
from clinrlhf.world.scoring import score, utility
from clinrlhf.world.world import World

PREFERRED = {"a": 0, "b": 1, "tie": None}
Drugs = dict[str, tuple[str | None, str | None]]


def review(
    world: World,
    panel: dict[str, Clinician],
    pool: Pool,
    chosen: list[Assignment],
    seed: int,
    shown: Drugs | None = None,
) -> list[Judgment]:
    """The panel's judgments of the chosen cards, as the review page stores them. `shown`: the drugs
    of cards whose pair was chosen anew ("thompson"); other cards show the pool's pair."""
    out = []
    for a in chosen:
        s, (drug_a, drug_b) = pool.facts[a.case.id], (shown or {}).get(a.case.id, pool.drugs[a.case.id])
        patient = pool.patients[a.case.id]
        for clinician in a.clinicians:
            digest = hashlib.sha256(f"{seed}\x00{a.case.id}\x00{clinician}".encode()).digest()
            rng = random.Random(int.from_bytes(digest[:8], "big"))
            r = review_pair(world, panel[clinician], s.facts, s.target, drug_a, drug_b, rng)
            base = Judgment("pairwise", a.case.id, patient, clinician, a.case.prompt, a.case.responses)
            out.append(replace(base, preferred=PREFERRED[r.choice]))
            out.append(replace(base, kind="rating", ratings=(r.rating_a, r.rating_b)))
            if r.correction is not None:
                out.append(replace(base, kind="correction", correction=render_response(world, r.correction)))
    return out


def composition(world: World, pool: Pool, chosen: list[Assignment], shown: Drugs | None = None) -> dict:
    """What a round asked about, for the report only (selection never sees the world): the share of
    its cards whose two suggestions differ in the world's utility, the share whose two suggestions
    are both valid prescriptions, and its cards per target."""
    differ = valid = 0
    by_target = dict.fromkeys(sorted(world.targets), 0)
    for a in chosen:
        s, drugs = pool.facts[a.case.id], (shown or {}).get(a.case.id, pool.drugs[a.case.id])
        differ += len({utility(score(world, s.facts, s.target, d)) for d in drugs}) > 1
        valid += a.case.id in (shown or {}) or pool.valid[a.case.id]
        by_target[s.target] += 1
    n = max(len(chosen), 1)
    return {
        "added_cards": len(chosen),
        "added_utility_differs_share": differ / n,
        "added_valid_pair_share": valid / n,
        "added_cards_by_target": by_target,
    }

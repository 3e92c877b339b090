"""The panel without a server: clinicians' pairwise judgments of historical-practice suggestions.

The live panel (clinrlhf.panel.session) posts to the service and judges the policy's suggestions.
Screening and reliability questions (who is flagged, how many pairs are mislabelled) do not need the
service or a policy: pairs of what historical practice prescribed for synthetic patients have the
same mix of right, off-target and unsafe drugs. Each card goes to two raters, as on the review page.
Used by benchmarks/poisoning.py and the screening tests.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date

from clinrlhf.feedback.judgment import Judgment
from clinrlhf.panel.clinicians import Clinician, review_pair
from clinrlhf.text.prompt import render_prompt, render_response
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.practice import historical_choice
from clinrlhf.world.world import World

_PREFERRED = {"a": 0, "b": 1, "tie": None}


def practice_pair_reviews(
    world: World,
    raters: Sequence[Clinician],
    patients: int,
    seed: int,
    today: date | None = None,
    reviewers_per_card: int = 2,
) -> list[Judgment]:
    """One card per (patient, target) whose two historical-practice draws differ, each judged by
    `reviewers_per_card` raters drawn at random; everything random comes from `seed`."""
    rng, out = random.Random(seed), []
    for n, p in enumerate(generate_patients(world, patients, seed, today)):
        for t in p.targets:
            a, b = historical_choice(world, p.facts, t, rng), historical_choice(world, p.facts, t, rng)
            if a == b:
                continue
            shown = (render_response(world, a), render_response(world, b))
            prompt = render_prompt(world, p.facts, t)
            for c in rng.sample(list(raters), reviewers_per_card):
                preferred = _PREFERRED[review_pair(world, c, p.facts, t, a, b, rng).choice]
                out.append(Judgment("pairwise", f"card{n}-{t}", f"p{n}", c.id, prompt, shown, preferred))
    return out

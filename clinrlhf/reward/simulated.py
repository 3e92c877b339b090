"""Judgments from the simulated panel without the service: for benchmarks and tests of the reward model.

The pipeline's panel (clinrlhf.panel.session) posts over HTTP to a live server, which renders the
policy's suggestions and stores the feedback. Reward benchmarks need the same kind of data at
scale without a server or a trained policy, so this makes the same decisions directly:

- each (patient, target) is a card with two distinct suggestions drawn from historical practice
  (what the supervised policy imitates), the first one "recommended";
- the clinician at the point of care accepts or overrides it (clinrlhf.panel.clinicians.cds_outcome);
- k reviewers compare the two suggestions (review_pair): a pairwise choice, two ratings and, when
  both are wrong, sometimes a correction, exactly as store.snapshot exports them.

Prompts are rendered from the true facts (the service renders them from the de-identified record,
which differs only in what de-identification generalises). Pseudonyms are plain ids.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import replace

from clinrlhf.feedback.judgment import Judgment
from clinrlhf.panel.clinicians import Clinician, PanelReview, cds_outcome, default_panel, review_pair
from clinrlhf.text.prompt import render_prompt, render_response
from clinrlhf.world.patients import SyntheticPatient
from clinrlhf.world.practice import historical_choice
from clinrlhf.world.world import World

_PREFERRED = {"a": 0, "b": 1, "tie": None}


def scaled_panel(n: int) -> list[Clinician]:
    """n clinicians in the default panel's proportions (seven careful in ten, two biased, one
    adversarial), each a copy of its default counterpart under a new id: a hospital-sized panel, for
    measuring per-clinician privacy, which needs far more than ten clinicians to learn anything."""
    base = default_panel()
    return [replace(base[i % len(base)], id=f"{base[i % len(base)].id}-{i // len(base)}") for i in range(n)]


def simulated_judgments(
    world: World,
    patients: Sequence[SyntheticPatient],
    *,
    reviewers_per_card: int = 3,
    panel: Sequence[Clinician] | None = None,
    seed: int = 0,
) -> list[Judgment]:
    """Every judgment the panel would give on the patients' cards (reproducible for a seed)."""
    panel = list(panel or default_panel())
    judgments: list[Judgment] = []
    for index, patient in enumerate(patients):
        rng = random.Random(seed * 1_000_003 + index)
        for target in patient.targets:
            judgments.extend(_card(world, panel, patient, index, target, reviewers_per_card, rng))
    return judgments


def _suggestions(world: World, patient: SyntheticPatient, target: str, rng: random.Random) -> list[str]:
    """Two distinct drugs, as a policy imitating practice would propose them."""
    first = historical_choice(world, patient.facts, target, rng)
    for _ in range(20):
        second = historical_choice(world, patient.facts, target, rng)
        if second != first:
            return [first, second]
    return [first, rng.choice(sorted(set(world.drugs) - {first}))]


def _card(
    world: World,
    panel: list[Clinician],
    patient: SyntheticPatient,
    index: int,
    target: str,
    reviewers: int,
    rng: random.Random,
) -> Iterator[Judgment]:
    drugs = _suggestions(world, patient, target, rng)
    card = Judgment(
        kind="cds",
        card=f"card-{index}-{target}",
        patient=f"patient-{index}",
        clinician="",
        prompt=render_prompt(world, patient.facts, target),
        responses=tuple(render_response(world, d) for d in drugs),
    )
    doctor = rng.choice(panel)
    accepted, _ = cds_outcome(world, doctor, patient.facts, target, list(drugs), rng)
    yield Judgment(**{**card.to_dict(), "clinician": doctor.id, "accepted": accepted})
    for clinician in rng.sample(panel, k=min(reviewers, len(panel))):
        review = review_pair(world, clinician, patient.facts, target, drugs[0], drugs[1], rng)
        yield from _review_judgments(world, card, clinician.id, review)


def _review_judgments(
    world: World, card: Judgment, clinician: str, review: PanelReview
) -> Iterator[Judgment]:
    """As clinrlhf.store.snapshot.review_judgments: pairwise, rating and (maybe) correction."""
    shown = {**card.to_dict(), "kind": "pairwise", "clinician": clinician, "accepted": None}
    yield Judgment(**{**shown, "preferred": _PREFERRED[review.choice]})
    yield Judgment(**{**shown, "kind": "rating", "ratings": (review.rating_a, review.rating_b)})
    if review.correction is not None:
        yield Judgment(
            **{**shown, "kind": "correction", "correction": render_response(world, review.correction)}
        )

"""How the study's strategies score cards: double Thompson sampling of a card's pair, and the oracle
reference that asks first about the pairs the reward model orders wrongly."""

from __future__ import annotations

import pytest
import torch

from clinrlhf.active import card_scores
from clinrlhf.active.card_scores import oracle_scores, thompson_cases
from clinrlhf.active.pool import Pool
from clinrlhf.active.selection import ReviewCandidate
from clinrlhf.active.study_settings import TODAY
from clinrlhf.eval.evaluate import Scenario
from clinrlhf.pipeline.cohorts import make_cohorts
from clinrlhf.policy import PolicyConfig, build_policy, build_tokenizer
from clinrlhf.reward.model import ScalarHeadModel
from clinrlhf.text.prompt import parse_drug, render_prompt, render_response, vocabulary_corpus
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.scoring import score as outcome
from clinrlhf.world.scoring import utility
from clinrlhf.world.world import World, load_world


def test_thompson_cases_pair_two_valid_candidates_and_rank_by_doubt() -> None:
    """The "thompson" strategy's round on hand-made cards and a two-member ensemble of tiny reward
    models: each card with two or more valid candidates shows two distinct ones of them, with their
    drugs; a card with fewer keeps its pair and is ranked last."""
    world = load_world()
    tokenizer = build_tokenizer(vocabulary_corpus(world))
    members = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        config = PolicyConfig(n_layer=1, n_embd=32, n_head=2, n_positions=64)
        members.append(ScalarHeadModel(build_policy(config, tokenizer).transformer).eval())
    pool = Pool([])
    for n, patient in enumerate(generate_patients(world, 6, seed=3)):
        target = patient.targets[0]
        prompt = render_prompt(world, patient.facts, target)
        treats = [render_response(world, d) for d in world.targets[target].drugs]
        case = ReviewCandidate(f"card{n}", prompt, (treats[0], treats[-1]), group=target)
        pool.cases.append(case)
        pool.options[case.id] = treats if n % 2 == 0 else treats[:1]  # odd cards: one candidate
    cases, scores, shown = thompson_cases(world, members, tokenizer, pool, pool.cases, seed=0)
    pairable = {c.id for c in pool.cases if len(pool.options[c.id]) >= 2}
    assert set(shown) == pairable and len(pairable) >= 2
    for case, original, score in zip(cases, pool.cases, scores, strict=True):
        options = pool.options[case.id]
        if len(options) < 2:
            assert case == original and score == -1.0 and case.id not in shown
            continue
        a, b = case.responses
        assert a != b and a in options and b in options and 0.0 <= score < 1.0
        assert shown[case.id] == tuple(parse_drug(world, r) for r in (a, b))
    again = thompson_cases(world, members, tokenizer, pool, pool.cases, seed=0)
    assert again == (cases, scores, shown)


def test_oracle_asks_first_about_the_pairs_the_model_orders_wrongly(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    patient = make_cohorts(world, (1, 1, 1), 0, TODAY).feedback[0]
    target = patient.targets[0]
    utilities = {d: utility(outcome(world, patient.facts, target, d)) for d in sorted(world.drugs)}
    best, worst = max(utilities, key=utilities.__getitem__), min(utilities, key=utilities.__getitem__)
    assert utilities[best] > utilities[worst]
    # Stands in for a trained reward model, so that which pair it orders wrongly is known: it
    # prefers the response text "preferred" by a margin of 1.
    monkeypatch.setattr(
        card_scores,
        "score_texts",
        lambda model, tokenizer, prompts, responses: torch.tensor(
            [float(r == "preferred") for r in responses]
        ),
    )
    pool, cases = Pool([]), []
    shown_pairs = [
        (best, worst, ("x", "preferred")),
        (best, worst, ("preferred", "x")),
        (best, best, ("x", "y")),
    ]
    for i, (a, b, texts) in enumerate(shown_pairs):
        cases.append(ReviewCandidate(f"c{i}", "prompt", texts))
        pool.facts[f"c{i}"] = Scenario(patient.facts, target)
        pool.drugs[f"c{i}"] = (a, b)
    wrong, right, equal = oracle_scores(world, pool, None, None, cases)
    assert 1.5 < wrong < 2 and 1 < right < 1.5 and equal == 0.5

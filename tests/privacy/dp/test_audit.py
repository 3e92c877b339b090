"""The one-run audit (Steinke, Nasr & Jagielski, 2023): the ε lower bound from a guessing game, checked
against closed forms, then run for real on a tiny reward model: a DP run's bound stays at or below its
reported ε, and a non-private control's is clearly positive, so the audit has power."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest
import torch
from scipy import stats
from scipy.optimize import brentq
from transformers import GPT2Model, PreTrainedTokenizerFast

from clinrlhf.policy import PolicyConfig, build_policy
from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.evaluate import score_texts
from clinrlhf.reward.pairs import PreferencePair
from clinrlhf.reward.result import RewardResult
from clinrlhf.reward.trainer import train_reward
from clinrlhf.text.prompt import render_response
from clinrlhf.world.world import World
from privacy.dp.audit import AuditOutcome, epsilon_lower_bound, guess_from_scores, p_value

torch.set_num_threads(1)


def _q(epsilon: float) -> float:
    return math.exp(epsilon) / (1 + math.exp(epsilon))


def test_with_delta_zero_the_p_value_is_the_binomial_tail_of_randomized_response() -> None:
    for eps in (0.0, 0.5, 2.0):
        assert p_value(100, 40, 30, eps, 0.0) == pytest.approx(1 - stats.binom.cdf(29, 40, _q(eps)))


def test_the_delta_term_matches_a_direct_reading_of_the_theorem() -> None:
    m, r, v, eps, delta = 200, 50, 40, 1.0, 1e-4
    q = _q(eps)
    worst = max(sum(stats.binom.pmf(v - j, r, q) for j in range(1, i + 1)) / i for i in range(1, v + 1))
    expected = (1 - stats.binom.cdf(v - 1, r, q)) + 2 * m * delta * worst
    assert p_value(m, r, v, eps, delta) == pytest.approx(expected)


def test_all_guesses_right_with_delta_zero_gives_the_closed_form_bound() -> None:
    # P[Bin(r, q) >= r] = q^r = 0.05  =>  ε = logit(0.05^(1/r))
    q = 0.05 ** (1 / 100)
    assert epsilon_lower_bound(100, 100, 100, 0.0) == pytest.approx(math.log(q / (1 - q)), abs=1e-6)


def test_the_bound_is_where_the_p_value_crosses_one_minus_the_confidence() -> None:
    m, r, v, delta = 500, 100, 80, 1e-5
    root = brentq(lambda e: p_value(m, r, v, e, delta) - 0.05, 0.0, 20.0)
    assert epsilon_lower_bound(m, r, v, delta) == pytest.approx(root, abs=1e-6)


def test_chance_level_guessing_bounds_nothing() -> None:
    assert epsilon_lower_bound(200, 100, 50, 1e-5) == 0.0
    assert epsilon_lower_bound(200, 100, 20, 1e-5) == 0.0


def test_more_correct_guesses_prove_more_and_more_slack_proves_less() -> None:
    assert epsilon_lower_bound(200, 100, 90, 1e-5) > epsilon_lower_bound(200, 100, 80, 1e-5)
    assert epsilon_lower_bound(200, 100, 90, 1e-3) < epsilon_lower_bound(200, 100, 90, 0.0)
    assert epsilon_lower_bound(200, 100, 90, 1e-5, 0.99) < epsilon_lower_bound(200, 100, 90, 1e-5, 0.9)


def test_guesses_take_the_highest_scores_as_included_and_the_lowest_as_excluded() -> None:
    scores = [0.9, -0.5, 0.1, 0.7, -0.9, 0.0]
    included = [True, False, False, False, True, True]
    # highest two: 0.9 (in, right), 0.7 (out, wrong); lowest two: -0.9 (in, wrong), -0.5 (out, right)
    assert guess_from_scores(scores, included, 2, 2) == AuditOutcome(m=6, guesses=4, correct=2)


@pytest.mark.parametrize(("m", "r", "v"), [(10, 5, 6), (10, 11, 5), (10, 5, -1)])
def test_impossible_outcomes_are_refused(m: int, r: int, v: int) -> None:
    with pytest.raises(ValueError):
        p_value(m, r, v, 1.0, 1e-5)


# The audit, end to end. Canaries: a random prompt of 10 vocabulary words, and a random order of two
# fixed responses. An included canary teaches its order; an excluded one's margin is chance.
M, K, DELTA, EPSILON = 200, 50, 1e-4, 4.0  # guess K included + K excluded: r = 100, fixed in advance
AUDIT = RewardConfig(
    epochs=40,
    batch_size=16,
    learning_rate=1e-2,
    target_epsilon=EPSILON,
    target_delta=DELTA,  # fixed, so δ does not depend on how many canaries were included
    rater_buckets=None,
    center_rewards_coef=0.0,
)


TINY = PolicyConfig(n_layer=1, n_embd=32, n_head=2, n_positions=64)  # as tests/clinrlhf/reward/conftest.py


@pytest.fixture(scope="module")
def backbone(tokenizer: PreTrainedTokenizerFast) -> Callable[[], GPT2Model]:
    def make() -> GPT2Model:
        torch.manual_seed(0)
        return build_policy(TINY, tokenizer).transformer

    return make


@pytest.fixture(scope="module")
def canaries(world: World, tokenizer: PreTrainedTokenizerFast) -> tuple[list[PreferencePair], list[bool]]:
    rng = random.Random(0)
    words = sorted(t for t in tokenizer.get_vocab() if t.isalpha() and len(t) > 2)
    a, b = render_response(world, "warfarin"), render_response(world, "sertraline")
    pairs = []
    for i in range(M):
        prompt = " ".join(rng.choice(words) for _ in range(10)) + " ->"
        chosen, rejected = (a, b) if rng.random() < 0.5 else (b, a)
        pairs.append(PreferencePair(prompt, chosen, rejected, f"canary-{i}", f"canary-{i}", "canary"))
    return pairs, [rng.random() < 0.5 for _ in range(M)]


def _audit(
    config: RewardConfig,
    canaries: tuple[list[PreferencePair], list[bool]],
    tokenizer: PreTrainedTokenizerFast,
    backbone: Callable[[], GPT2Model],
) -> tuple[RewardResult, AuditOutcome, float]:
    pairs, included = canaries
    result = train_reward(
        [p for p, x in zip(pairs, included, strict=True) if x], backbone(), tokenizer, config
    )
    prompts = [p.prompt for p in pairs]
    margins = score_texts(result.model, tokenizer, prompts, [p.chosen for p in pairs]) - score_texts(
        result.model, tokenizer, prompts, [p.rejected for p in pairs]
    )
    outcome = guess_from_scores(margins.tolist(), included, K, K)
    return result, outcome, epsilon_lower_bound(outcome.m, outcome.guesses, outcome.correct, DELTA)


def test_a_dp_run_is_not_caught_spending_more_than_it_reports(
    canaries: tuple[list[PreferencePair], list[bool]],
    tokenizer: PreTrainedTokenizerFast,
    backbone: Callable[[], GPT2Model],
) -> None:
    result, _, bound = _audit(AUDIT, canaries, tokenizer, backbone)
    assert result.delta == DELTA and result.epsilon <= EPSILON
    assert bound <= result.epsilon


def test_a_non_private_control_is_caught_so_the_audit_has_power(
    canaries: tuple[list[PreferencePair], list[bool]],
    tokenizer: PreTrainedTokenizerFast,
    backbone: Callable[[], GPT2Model],
) -> None:
    result, outcome, bound = _audit(
        RewardConfig(**{**vars(AUDIT), "dp": False}), canaries, tokenizer, backbone
    )
    assert result.guarantee is None
    assert outcome.correct >= 75  # of 100 guesses; chance is 50
    assert bound > 0.5

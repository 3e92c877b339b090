"""Rates on the evaluation scenarios whose exact prompt no trainer read."""

from __future__ import annotations

import pytest

from clinrlhf.eval.unseen import unseen_metrics, unseen_rates
from clinrlhf.world.scoring import Outcome

C, U, OFF = Outcome.CONCORDANT, Outcome.UNSAFE, Outcome.OFF_TARGET


def test_only_scenarios_whose_prompt_was_never_trained_on_count() -> None:
    prompts = ["a", "b", "c", "d", "a"]
    outcomes = [C, C, U, OFF, C]
    rates = unseen_rates(prompts, outcomes, seen={"a", "b"})  # c (unsafe) and d (off-target) remain
    assert rates == {"concordance": 0.0, "unsafe_rate": 0.5, "n": 2.0}
    assert unseen_rates(prompts, outcomes, seen=set())["concordance"] == pytest.approx(3 / 5)
    assert unseen_rates(prompts, outcomes, seen=set(prompts))["n"] == 0.0


def test_the_match_is_exact_prompt_text_and_lengths_must_agree() -> None:
    assert unseen_rates(["a "], [C], seen={"a"})["n"] == 1.0  # not normalised: the policy sees bytes
    with pytest.raises(ValueError, match="2 prompts but 1 outcomes"):
        unseen_rates(["a", "b"], [C], seen=set())


def test_metric_names_have_two_parts_so_no_reader_takes_them_for_a_subgroup() -> None:
    names = unseen_metrics({"concordance": 0.5, "n": 2.0}, "eval.before.")
    assert names == {"eval.before.unseen_prompts.concordance": 0.5, "eval.before.unseen_prompts.n": 2.0}

"""Tiny real components for reward-model tests: the world, its tokenizer, a small GPT-2 backbone, and
an easy preference (the clinician prefers a concordant drug to the habit or a contraindicated one)."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
import torch
from transformers import GPT2Model, PreTrainedTokenizerFast

from clinrlhf.policy import PolicyConfig, build_policy
from clinrlhf.reward.pairs import PreferencePair
from clinrlhf.text.prompt import render_prompt, render_response
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.practice import HABITS
from clinrlhf.world.scoring import acceptable, contraindicated
from clinrlhf.world.world import World

TINY = PolicyConfig(n_layer=1, n_embd=32, n_head=2, n_positions=64)


@pytest.fixture(scope="session")
def backbone(tokenizer: PreTrainedTokenizerFast) -> Callable[..., GPT2Model]:
    """A fresh tiny GPT-2 trunk, as the pipeline passes policy.transformer."""

    def make(seed: int = 0, **attn: str) -> GPT2Model:
        torch.manual_seed(seed)
        policy = build_policy(TINY, tokenizer)
        if attn:
            policy.config._attn_implementation = attn["attn_implementation"]
        return policy.transformer

    return make


def concordance_pairs(world: World, n: int, seed: int) -> list[PreferencePair]:
    """Pairs where the chosen drug is concordant and the rejected one is the habit (when it is wrong
    for this patient) or else a contraindicated or other drug."""
    rng = random.Random(seed)
    pairs = []
    for i, patient in enumerate(generate_patients(world, n, seed)):
        target = patient.targets[0]
        good = sorted(acceptable(world, patient.facts, target))
        if not good:
            continue
        bad = HABITS[target] if HABITS[target] not in good else None
        if bad is None:
            bad = rng.choice(
                sorted(contraindicated(world, patient.facts)) or sorted(set(world.drugs) - set(good))
            )
        pairs.append(
            PreferencePair(
                render_prompt(world, patient.facts, target),
                render_response(world, rng.choice(good)),
                render_response(world, bad),
                clinician=f"clin-{i % 5}",
                patient=f"pt-{i}",
                source="clinician",
            )
        )
    return pairs


@pytest.fixture(scope="session")
def train_pairs(world: World) -> list[PreferencePair]:
    return concordance_pairs(world, 1000, seed=1)


@pytest.fixture(scope="session")
def heldout_pairs(world: World) -> list[PreferencePair]:
    return concordance_pairs(world, 300, seed=2)


@pytest.fixture(scope="session")
def make_pairs(world: World) -> Callable[[int, int], list[PreferencePair]]:
    """concordance_pairs(world, n, seed), for tests that need more (or other) pairs than the fixtures."""
    return lambda n, seed: concordance_pairs(world, n, seed)

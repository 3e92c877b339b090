"""Tiny real parts for the active-learning tests: the world's tokenizer, a 1-block GPT-2 reward
model (its dropout layers present but off, as the pipeline builds them), and a few rendered cases."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from transformers import PreTrainedTokenizerFast

from clinrlhf.policy import PolicyConfig, build_policy
from clinrlhf.reward.model import ScalarHeadModel
from clinrlhf.text.prompt import render_prompt, render_response
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World

TINY = PolicyConfig(n_layer=1, n_embd=32, n_head=2, n_positions=64)


@pytest.fixture(scope="session")
def reward_model(tokenizer: PreTrainedTokenizerFast) -> Callable[[int], ScalarHeadModel]:
    """A freshly initialised reward model for a seed (eval mode)."""

    def make(seed: int = 0) -> ScalarHeadModel:
        torch.manual_seed(seed)
        return ScalarHeadModel(build_policy(TINY, tokenizer).transformer).eval()

    return make


@pytest.fixture(scope="session")
def triples(world: World) -> tuple[list[str], list[str], list[str]]:
    """(prompts, responses a, responses b) of 12 patients: their target's two first formulary drugs."""
    prompts, a, b = [], [], []
    for patient in generate_patients(world, 12, seed=5):
        target = patient.targets[0]
        drugs = sorted(world.drugs)
        prompts.append(render_prompt(world, patient.facts, target))
        a.append(render_response(world, drugs[0]))
        b.append(render_response(world, drugs[len(prompts) % (len(drugs) - 1) + 1]))
    return prompts, a, b

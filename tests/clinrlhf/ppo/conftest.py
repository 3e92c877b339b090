"""A tiny policy that already speaks the prescription language, and a known reward to align it to."""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import torch
from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

from clinrlhf.policy import PolicyConfig, build_policy, build_tokenizer
from clinrlhf.reward.model import ScalarHeadModel
from clinrlhf.text.prompt import parse_drug, render_prompt, render_response, vocabulary_corpus
from clinrlhf.world import PatientFacts, World, load_world, score, utility
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.practice import historical_choice

TINY = PolicyConfig(n_layer=1, n_embd=32, n_head=2, n_positions=64)


@dataclass
class Task:
    world: World
    tokenizer: PreTrainedTokenizerFast
    prompts: list[str]
    scenario: dict[str, tuple[PatientFacts, str]]  # prompt -> the patient and target it was rendered from
    habit: dict[str, str]  # prompt -> what a historical clinician prescribed, errors included
    warm: dict[str, torch.Tensor]  # state of a policy that imitates those prescriptions

    def reward(self, prompts: list[str], responses: list[str]) -> torch.Tensor:
        """The world's utility of the named drug for the prompt's patient: +1 concordant, 0 off-target
        or none, -2 unsafe."""
        scores = []
        for prompt, response in zip(prompts, responses, strict=True):
            facts, target = self.scenario[prompt]
            scores.append(utility(score(self.world, facts, target, parse_drug(self.world, response))))
        return torch.tensor(scores)

    def models(self, seed: int = 0) -> tuple[GPT2LMHeadModel, GPT2LMHeadModel, ScalarHeadModel]:
        """Fresh policy, frozen reference and value model, identical for a given seed."""
        torch.manual_seed(seed)
        policy = build_policy(TINY, self.tokenizer)
        policy.load_state_dict(self.warm)
        ref = copy.deepcopy(policy)
        value = ScalarHeadModel(copy.deepcopy(policy.transformer))
        return policy, ref, value


def _warm_start(
    world: World, tokenizer: PreTrainedTokenizerFast, habit: dict[str, str]
) -> dict[str, torch.Tensor]:
    """A few hundred teacher-forced steps on `prompt -> historical prescription <eos>`: a policy that
    speaks the language and inherits the habits, so PPO has something to improve."""
    torch.manual_seed(0)
    rng = random.Random(0)
    model = build_policy(TINY, tokenizer)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    prompts = sorted(habit)
    for _ in range(250):
        rows = []
        for prompt in rng.sample(prompts, 32):
            response = render_response(world, habit[prompt])
            q, r = tokenizer(prompt)["input_ids"], tokenizer(response)["input_ids"] + [tokenizer.eos_token_id]
            rows.append((q, r))
        width = max(len(q) + len(r) for q, r in rows)
        ids = torch.tensor([q + r + [tokenizer.pad_token_id] * (width - len(q) - len(r)) for q, r in rows])
        labels = torch.tensor([[-100] * len(q) + r + [-100] * (width - len(q) - len(r)) for q, r in rows])
        mask = torch.arange(width)[None, :] < torch.tensor([len(q) + len(r) for q, r in rows])[:, None]
        logits = model(input_ids=ids, attention_mask=mask.long()).logits  # (B, T, V)
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def make_task() -> Task:
    world = load_world()
    tokenizer = build_tokenizer(vocabulary_corpus(world))
    scenario: dict[str, tuple[PatientFacts, str]] = {}
    habit: dict[str, str] = {}
    rng = random.Random(7)
    for patient in generate_patients(world, 300, seed=7):
        for target in patient.targets:
            prompt = render_prompt(world, patient.facts, target)
            scenario.setdefault(prompt, (patient.facts, target))
            habit.setdefault(prompt, historical_choice(world, patient.facts, target, rng))
    warm = _warm_start(world, tokenizer, habit)
    return Task(world, tokenizer, sorted(scenario), scenario, habit, warm)


@pytest.fixture(scope="session")
def task() -> Task:
    with _one_thread():
        return make_task()


@contextmanager
def _one_thread() -> Iterator[None]:
    """Tiny tensors gain nothing from threads, and on a shared 2-core machine oversubscribed intra-op
    threads slow these runs down by an order of magnitude."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    with _one_thread():
        yield

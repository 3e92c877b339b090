"""A tiny policy that already speaks the prescription language, and a known reward to align it to."""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass

import pytest
import torch
from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

from clinrlhf.policy import PolicyConfig, build_policy, build_tokenizer
from clinrlhf.reward.model import ScalarHeadModel
from clinrlhf.text.prompt import parse_drug, render_prompt, render_response, vocabulary_corpus
from clinrlhf.world import World, acceptable, load_world
from clinrlhf.world.patients import generate_patients

TINY = PolicyConfig(n_layer=1, n_embd=32, n_head=2, n_positions=64)


@dataclass
class Task:
    world: World
    tokenizer: PreTrainedTokenizerFast
    prompts: list[str]
    good: dict[str, frozenset[str]]  # prompt -> acceptable drugs
    warm: dict[str, torch.Tensor]  # state of a policy that names a uniformly random drug, then stops

    def reward(self, prompts: list[str], responses: list[str]) -> torch.Tensor:
        """+1 when the named drug is acceptable for the prompt's patient, else 0."""
        return torch.tensor(
            [
                float(parse_drug(self.world, r) in self.good[p])
                for p, r in zip(prompts, responses, strict=True)
            ]
        )

    def models(self, seed: int = 0) -> tuple[GPT2LMHeadModel, GPT2LMHeadModel, ScalarHeadModel]:
        """Fresh policy, frozen reference and value model, identical for a given seed."""
        torch.manual_seed(seed)
        policy = build_policy(TINY, self.tokenizer)
        policy.load_state_dict(self.warm)
        ref = copy.deepcopy(policy)
        value = ScalarHeadModel(copy.deepcopy(policy.transformer))
        return policy, ref, value


def _warm_start(
    world: World, tokenizer: PreTrainedTokenizerFast, prompts: list[str]
) -> dict[str, torch.Tensor]:
    """A few hundred teacher-forced steps on `prompt -> random drug <eos>`: a policy with a well-formed,
    uninformed prior, so PPO has something to improve and every response ends with EOS."""
    torch.manual_seed(0)
    rng = random.Random(0)
    model = build_policy(TINY, tokenizer)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    drugs = sorted(world.drugs)
    for _ in range(250):
        rows = []
        for prompt in rng.sample(prompts, 32):
            response = render_response(world, rng.choice(drugs))
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
    good: dict[str, frozenset[str]] = {}
    for patient in generate_patients(world, 200, seed=7):
        for target in patient.targets:
            good.setdefault(
                render_prompt(world, patient.facts, target), acceptable(world, patient.facts, target)
            )
    prompts = sorted(good)
    return Task(world, tokenizer, prompts, good, _warm_start(world, tokenizer, prompts))


@pytest.fixture(scope="session")
def task() -> Task:
    return make_task()

"""What is fixed once per seed: the supervised policy, the pool of cards it made (two suggestions each),
and the held-out scenarios with the policy's best-of-n candidates."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from clinrlhf.active.selection import ReviewCandidate
from clinrlhf.active.study_settings import DEID_KEY, TODAY, StudySettings
from clinrlhf.eval.evaluate import Scenario
from clinrlhf.pipeline.cohorts import practice_examples, scenarios
from clinrlhf.policy import PolicyConfig, build_policy, build_tokenizer, load_policy
from clinrlhf.policy.generate import sample, suggest
from clinrlhf.sft.config import SFTConfig
from clinrlhf.sft.trainer import train_sft
from clinrlhf.text.prompt import parse_drug, parse_prescription, render_prompt, vocabulary_corpus
from clinrlhf.world.world import World


@dataclass
class Pool:
    cases: list[ReviewCandidate]
    facts: dict[str, Scenario] = field(default_factory=dict)  # case id -> (facts, target)
    drugs: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    patients: dict[str, str] = field(default_factory=dict)  # case id -> patient pseudonym
    valid: dict[str, bool] = field(default_factory=dict)  # case id -> both suggestions valid prescriptions
    options: dict[str, list[str]] = field(default_factory=dict)
    """ReviewCandidate id -> the policy's distinct valid prescriptions for it, one per drug (for "thompson")."""


@dataclass
class Heldout:
    scenarios: list[Scenario]
    prompts: list[str]
    candidates: list[list[str]]


def supervised_policy(
    world: World, history: list, settings: StudySettings, seed: int, policy_dir: Path | None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The policy in `policy_dir`, or one trained as the pipeline's SFT stage trains it."""
    if policy_dir is not None:
        return load_policy(policy_dir)
    tokenizer = build_tokenizer(vocabulary_corpus(world))
    torch.manual_seed(seed)
    config = PolicyConfig(
        n_layer=settings.policy_layers,
        n_embd=settings.policy_width,
        n_head=max(1, settings.policy_width // 16),
    )
    model = build_policy(config, tokenizer)
    examples = practice_examples(world, history, DEID_KEY, TODAY, seed)
    train_sft(model, tokenizer, examples, SFTConfig(epochs=settings.sft_epochs, seed=seed))
    return model.eval(), tokenizer


def build_pool(
    world: World, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, patients: list, seed: int
) -> Pool:
    """One card per (patient, target) on which the policy suggests two distinct drugs."""
    generator, pool = torch.Generator().manual_seed(seed), Pool([])
    for n, patient in enumerate(patients):
        for target in patient.targets:
            prompt = render_prompt(world, patient.facts, target)
            shown = suggest(model, tokenizer, world, prompt, n=2, generator=generator)
            if len(shown) < 2:
                continue
            case = ReviewCandidate(f"card{n}-{target}", prompt, (shown[0].text, shown[1].text), group=target)
            pool.cases.append(case)
            pool.facts[case.id] = Scenario(patient.facts, target)
            pool.drugs[case.id] = (shown[0].drug, shown[1].drug)
            pool.patients[case.id] = f"patient{n}"
            pool.valid[case.id] = all(
                parse_prescription(world, prompt, r) is not None for r in case.responses
            )
    return pool


def heldout_candidates(
    world: World,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    patients: list,
    n: int,
    seed: int,
) -> Heldout:
    held = scenarios(patients)
    prompts = [render_prompt(world, s.facts, s.target) for s in held]
    generator, candidates = torch.Generator().manual_seed(seed), []
    for start in range(0, len(prompts), 64):
        chunk = prompts[start : start + 64]
        texts = sample(model, tokenizer, [p for p in chunk for _ in range(n)], generator=generator).texts
        candidates += [texts[i * n : (i + 1) * n] for i in range(len(chunk))]
    return Heldout(held, prompts, candidates)


def pool_options(
    world: World, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, pool: Pool, n: int, seed: int
) -> None:
    """For each card, the candidates "thompson" may pair: the card's two suggestions and `n` more
    samples of the policy, kept if they are valid prescriptions for the problem (the only kind the
    service would show), one text per drug (two sigs of one drug are the same question)."""
    generator = torch.Generator().manual_seed(seed + 1)
    for start in range(0, len(pool.cases), 64):
        chunk = pool.cases[start : start + 64]
        prompts = [c.prompt for c in chunk for _ in range(n)]
        texts = sample(model, tokenizer, prompts, generator=generator).texts
        for i, case in enumerate(chunk):
            by_drug: dict[str, str] = {}
            for text in [*case.responses, *texts[i * n : (i + 1) * n]]:
                drug = parse_drug(world, text)
                if drug and drug not in by_drug and parse_prescription(world, case.prompt, text) is not None:
                    by_drug[drug] = text
            pool.options[case.id] = list(by_drug.values())

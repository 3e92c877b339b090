import random

import torch

from clinrlhf.lineage.tracker import RecordingTracker
from clinrlhf.policy import PolicyConfig, build_policy, build_tokenizer
from clinrlhf.sft import SFTConfig, encode_examples, train_sft
from clinrlhf.text.prompt import render_prompt, render_response, vocabulary_corpus
from clinrlhf.world import load_world
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.practice import historical_choice

W = load_world()


def _examples(n: int) -> list[tuple[str, str]]:
    rng = random.Random(0)
    return [
        (render_prompt(W, p.facts, t), render_response(W, historical_choice(W, p.facts, t, rng)))
        for p in generate_patients(W, n, seed=5)
        for t in p.targets
    ]


def test_prompt_tokens_are_masked_out_of_the_loss():
    tokenizer = build_tokenizer(vocabulary_corpus(W))
    prompt, response = _examples(1)[0]
    batch = encode_examples(tokenizer, [(prompt, response)])
    n_prompt = len(tokenizer(prompt)["input_ids"])
    assert (batch["labels"][0, :n_prompt] == -100).all()
    assert batch["labels"][0, -1].item() == tokenizer.eos_token_id


def test_training_changes_parameters_and_lowers_the_loss():
    tokenizer = build_tokenizer(vocabulary_corpus(W))
    torch.manual_seed(0)
    model = build_policy(PolicyConfig(n_layer=1, n_embd=32), tokenizer)
    before = [p.detach().clone() for p in model.parameters()]
    tracker = RecordingTracker()
    result = train_sft(model, tokenizer, _examples(150), SFTConfig(epochs=8, batch_size=16), tracker)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    losses = tracker.series("sft.loss")
    assert losses[-1] < 0.5 * losses[0]
    assert result.metrics["sft.final_loss"] == result.history[-1]["loss"]

"""PPO's reward: the reward model's score, less a fixed penalty where no valid prescription was written."""

import torch
from transformers import GPT2Config, GPT2Model

from clinrlhf.pipeline.policy_reward import prescription_reward
from clinrlhf.policy import build_tokenizer
from clinrlhf.reward.evaluate import score_texts
from clinrlhf.reward.model import ScalarHeadModel
from clinrlhf.text.prompt import render_response, vocabulary_corpus
from clinrlhf.world import load_world

W = load_world()
PROMPT = "sex male age 60-64 ; problems diabetes ; allergies none ; labs egfr normal potassium normal ; treat diabetes ->"


def test_invalid_responses_lose_exactly_the_penalty_and_valid_ones_keep_their_score():
    tokenizer = build_tokenizer(vocabulary_corpus(W))
    torch.manual_seed(0)
    backbone = GPT2Model(
        GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2, n_positions=64)
    )
    model = ScalarHeadModel(backbone).eval()
    responses = [
        render_response(W, "metformin"),  # valid
        "metformin mg by mouth twice daily",  # malformed sig
        render_response(W, "nitrofurantoin"),  # does not treat diabetes
        "unknown words",
    ]
    prompts = [PROMPT] * len(responses)
    raw = score_texts(model, tokenizer, prompts, responses)
    shaped = prescription_reward(W, model, tokenizer, invalid_penalty=2.5)(prompts, responses)
    assert torch.allclose(raw - shaped, torch.tensor([0.0, 2.5, 2.5, 2.5]), atol=1e-5)


def test_lora_is_off_by_default_and_a_json_object_switches_it_on(tmp_path):
    from clinrlhf.pipeline.config import load_pipeline_config
    from clinrlhf.policy.lora_config import LoRAConfig

    assert load_pipeline_config(None).lora is None
    path = tmp_path / "c.json"
    path.write_text('{"lora": {"rank": 16}}')
    assert load_pipeline_config(path).lora == LoRAConfig(rank=16)

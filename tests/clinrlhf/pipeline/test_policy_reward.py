"""PPO's reward: the reward model's score, less a fixed penalty where no valid prescription was written."""

import json
from pathlib import Path

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


HYPERTENSION = "sex male age 60-64 ; problems hypertension ; allergies none ; labs egfr normal potassium normal ; treat hypertension ->"


def _tiny_reward_model():
    tokenizer = build_tokenizer(vocabulary_corpus(W))
    torch.manual_seed(0)
    backbone = GPT2Model(
        GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2, n_positions=64)
    )
    return ScalarHeadModel(backbone).eval(), tokenizer


def test_the_penalty_follows_the_formulary_file_not_the_guideline(tmp_path):
    from clinrlhf.formulary import load_formulary

    model, tokenizer = _tiny_reward_model()
    # Metoprolol may treat hypertension (MED-RT) though no tier of the guideline prescribes it for it.
    prompts, responses = (
        [HYPERTENSION] * 2,
        [render_response(W, "metoprolol"), render_response(W, "lisinopril")],
    )
    raw = score_texts(model, tokenizer, prompts, responses)
    packaged = prescription_reward(W, model, tokenizer, invalid_penalty=2.5)(prompts, responses)
    assert torch.allclose(raw - packaged, torch.tensor([0.0, 0.0]), atol=1e-5)
    # The hospital's own file drops that relation and lisinopril's sig changes: both become invalid.
    doc = json.loads((Path(__file__).parents[3] / "clinrlhf" / "formulary" / "formulary.json").read_text())
    for drug in doc["drugs"]:
        if drug["name"] == "metoprolol":
            drug["indications"] = [i for i in drug["indications"] if i["display"] != "Hypertension"]
        if drug["name"] == "lisinopril":
            drug["sigs"] = ["20 mg by mouth once daily"]
    path = tmp_path / "formulary.json"
    path.write_text(json.dumps(doc))
    edited = prescription_reward(W, model, tokenizer, invalid_penalty=2.5, formulary=load_formulary(path))
    assert torch.allclose(raw - edited(prompts, responses), torch.tensor([2.5, 2.5]), atol=1e-5)


def test_validity_penalty_zero_in_the_pipeline_config_turns_the_penalty_off(tmp_path):
    from clinrlhf.formulary import load_formulary
    from clinrlhf.pipeline.config import load_pipeline_config

    assert load_pipeline_config(None).validity_penalty > 0  # on by default
    path = tmp_path / "c.json"
    path.write_text('{"validity_penalty": 0}')
    config = load_pipeline_config(path)
    model, tokenizer = _tiny_reward_model()
    prompts, responses = [PROMPT] * 2, [render_response(W, "nitrofurantoin"), "unknown words"]
    shaped = prescription_reward(
        W,
        model,
        tokenizer,
        invalid_penalty=config.validity_penalty,
        formulary=load_formulary(config.formulary),
    )(prompts, responses)
    assert torch.allclose(shaped, score_texts(model, tokenizer, prompts, responses), atol=1e-6)


def test_a_malformed_formulary_in_the_pipeline_config_is_refused_at_load_in_one_line(tmp_path):
    import pytest

    from clinrlhf.pipeline.config import load_pipeline_config

    bad = tmp_path / "formulary.json"
    bad.write_text('{"format": "clinrlhf-formulary", "version": "1.0.0", "drugs": []}')
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"formulary": str(bad)}))
    with pytest.raises(ValueError, match="drugs must be a non-empty list") as err:
        load_pipeline_config(path)
    assert "\n" not in str(err.value)

"""Saving a trained reward model to a local folder, and loading it back (never from a hub).

The folder holds the backbone's config, the tokenizer, and the whole ScalarHeadModel's weights in
safetensors, in their trained layout (GPT-2's Conv1D already swapped for nn.Linear), so loading
rebuilds that layout before reading the weights.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_model, save_model
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerBase

from clinrlhf.reward.model import ScalarHeadModel
from privacy.dp import conv1d_to_linear

WEIGHTS, METADATA = "reward.safetensors", "reward.json"


def save_reward_model(
    model: ScalarHeadModel,
    tokenizer: PreTrainedTokenizerBase,
    path: Path,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write the model, its tokenizer and (e.g. the run's dp.* params) metadata under `path`."""
    path.mkdir(parents=True, exist_ok=True)
    model.backbone.config.save_pretrained(path)
    tokenizer.save_pretrained(path)
    save_model(model, str(path / WEIGHTS))
    (path / METADATA).write_text(json.dumps(metadata or {}, indent=2, sort_keys=True))
    return path


def load_reward_model(path: Path | str) -> tuple[ScalarHeadModel, PreTrainedTokenizerBase, dict[str, str]]:
    """The model (eval mode), its tokenizer and the metadata saved with it."""
    path = Path(path)
    backbone = AutoModel.from_config(AutoConfig.from_pretrained(path, local_files_only=True))
    conv1d_to_linear(backbone)
    model = ScalarHeadModel(backbone)
    load_model(model, str(path / WEIGHTS))
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    metadata = json.loads((path / METADATA).read_text()) if (path / METADATA).exists() else {}
    return model.eval(), tokenizer, metadata

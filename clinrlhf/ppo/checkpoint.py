"""Resumable PPO state on disk: written atomically, read back with `weights_only=True` (no pickled code).

A checkpoint holds the policy, the value model, the optimizer, the KL controller, the step, the
history so far and every random state that drives sampling, so a resumed run continues exactly.
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINT_FILE = "ppo_state.pt"


def save_checkpoint(directory: Path, state: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CHECKPOINT_FILE
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: a crash leaves the previous checkpoint or this one, never half of one
    return path


def load_checkpoint(directory: Path) -> dict[str, Any] | None:
    path = directory / CHECKPOINT_FILE
    return torch.load(path, map_location="cpu", weights_only=True) if path.exists() else None


def fingerprint(ref_policy: torch.nn.Module, prompts: list[str]) -> str:
    """SHA-256 of the reference weights and the prompts: which run a checkpoint belongs to, so a
    checkpoint left by another run (another SFT policy, other data) is never resumed by mistake."""
    digest = hashlib.sha256()
    for name, tensor in sorted(ref_policy.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    for prompt in prompts:
        digest.update(prompt.encode() + b"\0")
    return digest.hexdigest()


def prompts_sha256(prompts: list[str]) -> str:
    """SHA-256 of the prompt list, in order: what two runs (or two ranks) must share to draw alike."""
    return hashlib.sha256(b"".join(prompt.encode() + b"\0" for prompt in prompts)).hexdigest()


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Every random state a step can consume: the sampling generator, torch's global RNG, and Python's
    and NumPy's in case the caller's reward function draws from them."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)  # legacy=True: always a tuple
    keys = np.asarray(keys)
    return {
        "generator": generator.get_state(),
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
    }


def set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["kind"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["gauss"],
        )
    )

"""A policy's model version as cards, logs and `clinrlhf serve` name it."""

from __future__ import annotations

import hashlib
from pathlib import Path


def model_version(policy_dir: Path) -> str:
    """Folder name plus a short digest of the weights, so a card names exactly the model behind it."""
    weights = policy_dir / "model.safetensors"
    if not weights.is_file():
        return policy_dir.name
    digest = hashlib.sha256()
    with weights.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return f"{policy_dir.name}@{digest.hexdigest()[:12]}"

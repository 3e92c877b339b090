"""A policy's model version as cards, logs and `clinrlhf serve` name it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
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


@dataclass(frozen=True)
class ModelIdentity:
    """What names the model behind a card: its weights (`model_version`, folder@digest), and the
    MLflow registered model version and the run that trained it, where the served policy is a
    registered version (clinrlhf.policy.served.served_identity)."""

    model_version: str
    registry_name: str | None = None
    registry_version: str | None = None
    run_id: str | None = None

    @property
    def registered(self) -> bool:
        return bool(self.registry_name and self.registry_version)

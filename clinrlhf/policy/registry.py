"""Where aligned policies live under CLINRLHF_HOME, and which one serving uses by default."""

from __future__ import annotations

from pathlib import Path

_POINTER = "LATEST_ALIGNED"


def models_dir(home: Path) -> Path:
    path = home / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def set_latest_aligned(home: Path, policy_dir: Path) -> None:
    pointer = models_dir(home) / _POINTER
    tmp = pointer.with_suffix(".tmp")
    tmp.write_text(str(policy_dir.resolve()))
    tmp.replace(pointer)  # atomic: a concurrent reader sees the old or the new path, never half


def latest_aligned(home: Path) -> Path | None:
    pointer = models_dir(home) / _POINTER
    return Path(pointer.read_text().strip()) if pointer.exists() else None

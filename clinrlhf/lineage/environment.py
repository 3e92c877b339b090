"""The software environment a run used, frozen as `name==version` lines (what `pip freeze` prints
for non-editable installs), logged as an artifact so a model can be rebuilt with the same stack."""

from __future__ import annotations

import hashlib
import platform
import sys
from importlib import metadata

import mlflow

REQUIREMENTS = "environment/requirements.txt"
PYTHON = "environment/python.json"
SHA256_TAG = "clinrlhf.environment_sha256"


def _normalise(name: str) -> str:
    # PEP 503: runs of -, _ and . are equivalent, and case does not matter.
    return "-".join(name.replace("_", "-").replace(".", "-").lower().split("-"))


def frozen_requirements() -> list[str]:
    """Every installed distribution as `name==version`, sorted, one per distinct name."""
    pins: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            pins.setdefault(_normalise(name), f"{name}=={dist.version}")
    return [pins[k] for k in sorted(pins)]


def requirements_text() -> str:
    return "".join(f"{line}\n" for line in frozen_requirements())


def log_environment() -> str:
    """Log the frozen requirements and the interpreter to the active run; tag and return the
    requirements' SHA-256, so runs with the same stack are easy to find."""
    text = requirements_text()
    sha = hashlib.sha256(text.encode()).hexdigest()
    mlflow.log_text(text, REQUIREMENTS)
    mlflow.log_dict(
        {
            "python": sys.version,
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
        },
        PYTHON,
    )
    mlflow.set_tag(SHA256_TAG, sha)
    return sha

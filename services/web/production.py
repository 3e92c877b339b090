"""Which model version is in production, spelt as cards spell theirs (services.recommend.model_version),
so the review page can say whether the suggestions it shows come from the approved version."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from clinrlhf.policy.pointers import production_policy
from clinrlhf.policy.version import model_version


@lru_cache(maxsize=8)
def _version(path: str, _mtime_ns: int) -> str:
    return model_version(Path(path))  # hashes the weights: once per promoted file, not per page


def production_model(home: Path) -> tuple[str, str] | None:
    """(model version, "<registered model> v<n>") of the policy the `production` alias names, read
    from the local pointer that `clinrlhf promote` writes; None when nothing is in production."""
    production = production_policy(home)
    if production is None:
        return None
    weights = Path(production.path) / "model.safetensors"
    mtime = weights.stat().st_mtime_ns if weights.is_file() else 0
    return _version(production.path, mtime), f"{production.name} v{production.version}"

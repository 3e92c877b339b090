"""The model card that every CDS card's `source.url` points to."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.errors import APIError
from services.recommend import PolicyUnavailableError
from services.state import CurrentPrincipal, StateDep

router = APIRouter(tags=["model"])


@router.get("/model-card", summary="What model makes the suggestions, and on what terms")
def model_card(state: StateDep, _principal: CurrentPrincipal) -> dict[str, Any]:
    try:
        recommender = state.policies.get()
    except PolicyUnavailableError:
        raise APIError(503, "no policy is being served yet") from None
    world = state.world
    return {
        "model_version": recommender.version,
        "architecture": type(recommender.model).__name__,
        "parameters": sum(p.numel() for p in recommender.model.parameters()),
        "world": {"name": world.name, "version": world.version, "sha256": world.sha256},
        "intended_use": "Research and evaluation of feedback-driven alignment on a synthetic prescribing world. "
        "Suggestions are drafts for a clinician to accept or override; they are not clinical guidance.",
        "training": "Supervised on historical practice, then aligned by KL-constrained PPO against a reward model "
        "trained with differential privacy (DP-SGD) on de-identified clinician feedback. Lineage is in MLflow.",
        "privacy": "Requests are de-identified on arrival; only de-identified cases, coded feedback and "
        "pseudonyms are stored.",
    }

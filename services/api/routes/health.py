"""Liveness: the only route that needs no token."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness probe (no token needed)")
def healthz() -> dict[str, str]:
    return {"status": "ok"}

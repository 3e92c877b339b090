"""The models that drafted cards are recorded once each, whoever records them first and however many
writers record the same model at once (SQLite, and PostgreSQL where configured)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from clinrlhf.store import transaction
from clinrlhf.store.devices import record_device
from clinrlhf.store.models import ModelDevice

DEVICE = {
    "device_id": "5f0c6a1e-0000-5000-8000-000000000001",
    "model_version": "policy@0123456789ab",
    "registry_name": "clinrlhf-policy",
    "registry_version": "3",
    "run_id": "a" * 32,
    "model_card_id": "5f0c6a1e-0000-5000-8000-000000000002",
}


def _count(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(ModelDevice)) or 0


def test_recording_a_model_twice_keeps_one_row_as_first_written(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        first = record_device(session, **DEVICE).id
    with transaction(sessions) as session:
        again = record_device(session, **DEVICE)
        assert again.id == first and again.registry_version == "3" and again.model_card_id
    assert _count(sessions) == 1


def test_concurrent_writers_recording_one_model_all_succeed(sessions: sessionmaker[Session]) -> None:
    def record(_: int) -> str:
        with transaction(sessions) as session:
            return record_device(session, **DEVICE).id

    with ThreadPoolExecutor(4) as pool:
        ids = set(pool.map(record, range(8)))
    assert ids == {DEVICE["device_id"]}
    assert _count(sessions) == 1

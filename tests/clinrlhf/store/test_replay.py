"""Token ids used once, across every worker: the database-backed replay cache."""

from __future__ import annotations

import time

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from clinrlhf.store import make_session_factory
from clinrlhf.store.models import UsedTokenId
from clinrlhf.store.replay import DatabaseJtiCache


def test_a_token_id_is_accepted_once_per_issuer(sessions: sessionmaker[Session]) -> None:
    cache, exp = DatabaseJtiCache(sessions), time.time() + 300
    assert cache.first_use("https://ehr.example", "j1", exp)
    assert not cache.first_use("https://ehr.example", "j1", exp)
    assert cache.first_use("https://other.example", "j1", exp)  # ids are scoped by issuer
    assert cache.first_use("https://ehr.example", "j2", exp)


def test_a_replay_is_caught_by_another_worker(engine: Engine) -> None:
    """Two caches on separate session factories stand for two `serve --workers` processes."""
    first, second = (
        DatabaseJtiCache(make_session_factory(engine)),
        DatabaseJtiCache(make_session_factory(engine)),
    )
    exp = time.time() + 300
    assert first.first_use("iss", "shared", exp)
    assert not second.first_use("iss", "shared", exp)


def test_expired_ids_are_purged_and_live_ones_kept(sessions: sessionmaker[Session]) -> None:
    cache = DatabaseJtiCache(sessions, purge_every=3)
    assert cache.first_use("iss", "old-1", time.time() - 10)
    assert cache.first_use("iss", "old-2", time.time() - 10)
    assert cache.first_use("iss", "live", time.time() + 300)  # third call purges
    with sessions() as session:
        left = session.scalars(select(UsedTokenId.jti)).all()
        assert left == ["live"]
        assert session.scalar(select(func.count()).select_from(UsedTokenId)) == 1

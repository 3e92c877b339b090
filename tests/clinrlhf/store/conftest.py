"""Store fixtures: a real SQLite file by default, and PostgreSQL when CLINRLHF_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import date

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from clinrlhf.store import (
    add_card,
    add_case,
    deidentify_case,
    init_db,
    make_engine,
    make_session_factory,
    record_audit,
    transaction,
)
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World

POSTGRES_URL = os.environ.get("CLINRLHF_TEST_POSTGRES_URL")
TODAY = date(2026, 3, 1)


def _postgres_schema_engine(url: str) -> tuple[Engine, str]:
    """An engine whose connections use a fresh schema, so tests never see each other's rows."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    admin.dispose()
    return make_engine(f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"), schema


# The PostgreSQL variant runs where a server is configured (it is marked, so `-m "not postgres"` skips it).
BACKENDS = ["sqlite"] + ([pytest.param("postgresql", marks=pytest.mark.postgres)] if POSTGRES_URL else [])


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
        init_db(engine)
        yield engine
        engine.dispose()
        return
    assert POSTGRES_URL
    engine, schema = _postgres_schema_engine(POSTGRES_URL)
    init_db(engine)
    yield engine
    engine.dispose()
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def cards(sessions: sessionmaker[Session], world: World) -> Callable[..., tuple[str, list[str]]]:
    """`cards(clinician=None)` stores a case with one two-suggestion card: (card id, suggestion ids)."""
    patients = iter(generate_patients(world, 8, seed=3, today=TODAY))

    def make(clinician: str | None = None) -> tuple[str, list[str]]:
        case = deidentify_case(next(patients).bundle, key=b"k" * 32, today=TODAY)
        with transaction(sessions) as session:
            row, _ = add_case(session, case, source="cds")
            record_audit(session, actor="test", action="C", entity_type="Case", entity_id=row.id)
            card = add_card(
                session,
                case_id=row.id,
                target="hypertension",
                prompt="treat hypertension ->",
                model_version="m@1",
                clinician=clinician,
                suggestions=[("lisinopril", "lisinopril 10 mg"), ("amlodipine", "amlodipine 5 mg")],
            )
            record_audit(session, actor="test", action="C", entity_type="Card", entity_id=card.id)
            return card.id, [s.id for s in card.suggestions]

    return make

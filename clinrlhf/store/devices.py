"""The models that drafted cards, recorded once each (AI transparency: a card's Provenance names one)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clinrlhf.store.models import ModelDevice


def record_device(
    session: Session,
    *,
    device_id: str,
    model_version: str,
    registry_name: str | None = None,
    registry_version: str | None = None,
    run_id: str | None = None,
    model_card_id: str | None = None,
) -> ModelDevice:
    """The device `device_id`, added on first use. Its id is derived from what it names, so a row
    that exists already says the same and is kept as written."""
    found = session.get(ModelDevice, device_id)
    if found is not None:
        return found
    row = ModelDevice(
        id=device_id,
        model_version=model_version,
        registry_name=registry_name,
        registry_version=registry_version,
        run_id=run_id,
        model_card_id=model_card_id,
    )
    if session.get_bind().dialect.name == "sqlite":
        # Our SQLite transactions begin IMMEDIATE: nobody can insert between the lookup and here.
        session.add(row)
        session.flush()
        return row
    try:
        with session.begin_nested():  # another replica may record the same model at the same moment
            session.add(row)
    except IntegrityError:
        found = session.get(ModelDevice, device_id)
        if found is None:
            raise
        return found
    return row

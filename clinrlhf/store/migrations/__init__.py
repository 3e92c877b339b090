"""Alembic migrations of the store. `clinrlhf.store.init_db` runs them; nothing else creates tables."""

"""Alembic revisions, oldest first: each file upgrades the schema one step."""

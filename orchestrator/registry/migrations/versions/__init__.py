"""Revisions of the registry's schema, oldest first (Alembic skips this file)."""

"""Alembic migrations of the tool registry; run by ``ToolRegistry.open`` (upgrade head)."""

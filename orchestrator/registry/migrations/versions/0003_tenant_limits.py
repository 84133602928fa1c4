"""Per-tenant limits on what a tenant keeps and sends, and each card's stored size.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Quota overrides; None means the deployment's default.
LIMITS = (
    "max_tools",
    "max_versions",
    "max_stored_mb",
    "max_card_kb",
    "max_demos",
    "max_cases",
    "max_make_examples",
    "max_make_kb",
    "max_question_chars",
    "max_prompt_tokens",
)


def upgrade() -> None:
    with op.batch_alter_table("tenants") as tenants:
        for name in LIMITS:
            tenants.add_column(sa.Column(name, sa.Integer(), nullable=True))
    with op.batch_alter_table("tools") as tools:
        # None for versions stored before: the stored-bytes sum falls back to their length.
        tools.add_column(sa.Column("card_bytes", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tools") as tools:
        tools.drop_column("card_bytes")
    with op.batch_alter_table("tenants") as tenants:
        for name in reversed(LIMITS):
            tenants.drop_column(name)

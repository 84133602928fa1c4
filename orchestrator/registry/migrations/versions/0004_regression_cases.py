"""Each tool's regression suite, and the requests tools served (to map a reported outcome).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "regression_cases",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("tool", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("input", sa.Text(), nullable=False),
        sa.Column("expected", sa.Text(), nullable=True),
        sa.Column("wrong", sa.Text(), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "source IN ('verification', 'reported', 'failure')", name="ck_regression_cases_source"
        ),
        sa.CheckConstraint("kind IN ('question', 'arguments')", name="ck_regression_cases_kind"),
    )
    op.create_index("ix_regression_cases_tenant_tool", "regression_cases", ["tenant", "tool"])
    op.create_table(
        "tool_requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("tool", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("input", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('question', 'arguments')", name="ck_tool_requests_kind"),
    )
    op.create_index("ix_tool_requests_tenant_request_id", "tool_requests", ["tenant", "request_id"])
    op.create_index("ix_tool_requests_tenant_created_at", "tool_requests", ["tenant", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_tool_requests_tenant_created_at", table_name="tool_requests")
    op.drop_index("ix_tool_requests_tenant_request_id", table_name="tool_requests")
    op.drop_table("tool_requests")
    op.drop_index("ix_regression_cases_tenant_tool", table_name="regression_cases")
    op.drop_table("regression_cases")

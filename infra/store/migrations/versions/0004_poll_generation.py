"""poll generation counters (the API's poll caches are invalidated by them)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "poll_generation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployments", sa.BigInteger(), nullable=False),
        sa.Column("credentials", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(table, [{"id": 1, "deployments": 0, "credentials": 0}])


def downgrade() -> None:
    op.drop_table("poll_generation")

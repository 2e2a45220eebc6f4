"""a model records the largest reduction its floors allow, per metric and channel multiple

The inspection computes them when a checkpoint is uploaded; the API refuses a job whose
target is past them at submission instead of queueing one the worker would refuse. NULL for
models inspected before this revision: their jobs are checked by the worker only.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("limits", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_column("limits")

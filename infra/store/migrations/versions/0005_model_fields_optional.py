"""a model's arch, num_classes and input_shape may be left to its inspection

An upload may leave them out: the inspect worker fills them from the checkpoint's own
structure record (or the architecture's usual input) when it marks the model ready. A
pending or invalid model may therefore hold NULLs there.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-12 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    ("arch", sa.String(length=64)),
    ("num_classes", sa.Integer()),
    ("input_shape", sa.JSON()),
)


def upgrade() -> None:
    # Batch mode: SQLite cannot ALTER a column's nullability (the table is copied there);
    # PostgreSQL gets plain ALTER COLUMN ... DROP NOT NULL.
    with op.batch_alter_table("models") as batch:
        for name, type_ in _COLUMNS:
            batch.alter_column(name, existing_type=type_, nullable=True)


def downgrade() -> None:
    # Rows that never got their fields (pending or invalid uploads) cannot keep NOT NULL.
    op.execute(
        "DELETE FROM models WHERE (arch IS NULL OR num_classes IS NULL OR input_shape IS NULL)"
        " AND id NOT IN (SELECT model_id FROM jobs)"
    )
    with op.batch_alter_table("models") as batch:
        for name, type_ in _COLUMNS:
            batch.alter_column(name, existing_type=type_, nullable=False)

"""staged rollouts, device revocation and install failures

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = sa.text("revoked_at IS NULL")


def _revoke_duplicate_names() -> None:
    """Before the one-live-device-per-name index: of several devices sharing a name, keep the
    newest live and revoke the others, with their tokens (what a forced re-registration
    does from now on)."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, name FROM devices ORDER BY name, created_at DESC, id DESC")
    ).all()
    seen: set[str] = set()
    stale: list[str] = []
    for device_id, name in rows:
        if name in seen:
            stale.append(device_id)
        seen.add(name)
    now = datetime.now(UTC)
    for device_id in stale:
        params = {"id": device_id, "now": now}
        bind.execute(sa.text("UPDATE devices SET revoked_at = :now WHERE id = :id"), params)
        bind.execute(
            sa.text(
                "UPDATE tokens SET revoked_at = :now WHERE device_id = :id AND revoked_at IS NULL"
            ),
            params,
        )


def upgrade() -> None:
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rollout_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("rollout_percent", sa.Integer(), nullable=True))
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("install_failure", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("device_reports", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=32), nullable=False, server_default="ok")
        )
    _revoke_duplicate_names()
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index(
            "uq_devices_live_name",
            ["name"],
            unique=True,
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        )


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index("uq_devices_live_name")
        batch_op.drop_column("revoked_at")
        batch_op.drop_column("install_failure")
    with op.batch_alter_table("device_reports", schema=None) as batch_op:
        batch_op.drop_column("status")
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_column("rollout_percent")
        batch_op.drop_column("rollout_version")

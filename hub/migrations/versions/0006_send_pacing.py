"""send pacing

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 16:10:00

Issue 11, part B: scheduled messages (``messages.send_at``), a message's own quiet hours
(``messages.quiet_hours``) and why it waits (``waiting_reason``, ``next_attempt_at``);
a channel's ``timezone`` and default ``quiet_hours``; per-SIM pacing in ``sim_pacing``
(rate, daily cap and their counters), which replaces the per-device counter of 0002.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.columns

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, hub.columns.UTCDateTime(timezone=True), nullable=True)


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(_utc("send_at"))
        batch_op.add_column(sa.Column("quiet_hours", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("waiting_reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
        batch_op.add_column(_utc("next_attempt_at"))
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("timezone", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(sa.Column("quiet_hours", sa.JSON(), nullable=True))
    op.create_table(
        "sim_pacing",
        sa.Column("device_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("rate_per_min", sa.Integer(), nullable=True),
        sa.Column("daily_cap", sa.Integer(), nullable=True),
        sa.Column("recent", sa.JSON(), nullable=False),
        _utc("next_at"),
        sa.Column("day", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
        sa.Column("day_parts", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"]),
        sa.PrimaryKeyConstraint("device_id", "slot"),
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("rate_previous")
        batch_op.drop_column("rate_current")
        batch_op.drop_column("rate_window_start")


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(_utc("rate_window_start"))
        batch_op.add_column(
            sa.Column("rate_current", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("rate_previous", sa.Integer(), server_default="0", nullable=False)
        )
    op.drop_table("sim_pacing")
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.drop_column("quiet_hours")
        batch_op.drop_column("timezone")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("waiting_reason")
        batch_op.drop_column("quiet_hours")
        batch_op.drop_column("send_at")

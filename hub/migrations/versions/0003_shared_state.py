"""shared state

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 15:24:28

State several processes must share instead of each keeping its own: failed sign-ins
(the throttle without Redis), the flow editor's test runs, and ``hub_meta`` with the
secret key's check value (a process with another key refuses to start).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.columns

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hub_meta",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("value", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("updated_at", hub.columns.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("at", hub.columns.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_login_failures_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_login_failures_key"), ["key"], unique=False)

    op.create_table(
        "ui_test_runs",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.Column("used_at", hub.columns.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ui_test_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ui_test_runs_used_at"), ["used_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ui_test_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ui_test_runs_used_at"))

    op.drop_table("ui_test_runs")
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_failures_key"))
        batch_op.drop_index(batch_op.f("ix_login_failures_at"))

    op.drop_table("login_failures")
    op.drop_table("hub_meta")

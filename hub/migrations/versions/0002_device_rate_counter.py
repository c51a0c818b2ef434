"""device rate counter

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 11:10:00

The per-device send rate is checked against a two-window counter on the device row
instead of summing the messages of the last minute (a scan that grew with the load).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.columns

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("rate_window_start", hub.columns.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("rate_current", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("rate_previous", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("rate_previous")
        batch_op.drop_column("rate_current")
        batch_op.drop_column("rate_window_start")

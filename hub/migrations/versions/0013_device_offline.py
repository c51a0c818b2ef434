"""device offline

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 19:30:00

Issue 13, item 1: ``devices.offline_at``. Set when the hub announced ``device.offline``
(no ping or other event from the phone for ``SMSHUB_DEVICE_OFFLINE_AFTER_S``), cleared
when it announced ``device.online`` again; so each of the two is raised once per change.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.columns

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("offline_at", hub.columns.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("offline_at")

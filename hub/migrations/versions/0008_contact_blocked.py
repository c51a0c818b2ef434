"""contact blocked

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 16:50:00

Issue 11 follow-up: ``contacts.blocked`` and ``contacts.blocked_at``. Nothing is sent to a
blocked contact, its inbound SMS start no flow, broadcasts skip it (``skipped_blocked``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.columns

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("blocked", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("blocked_at", hub.columns.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("blocked_at")
        batch_op.drop_column("blocked")

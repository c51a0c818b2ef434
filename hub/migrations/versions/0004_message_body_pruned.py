"""message body pruned

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 15:50:00

Data retention (hub.services.retention) clears the text of old messages and marks when:
``messages.body_pruned_at`` (NULL while the text is kept), which the API shows as
``body_pruned``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.columns

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("body_pruned_at", hub.columns.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("body_pruned_at")

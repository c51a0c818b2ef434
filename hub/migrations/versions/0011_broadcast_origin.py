"""broadcast origin

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 19:00:00

Issue 12, part 3: ``broadcasts.origin`` (JSON, null). A broadcast a flow's ``flow.start``
node made for a group records the parent run there (``parent_run_id``, ``parent_flow_id``,
``node_id``, ``depth``, ``params``); every run it starts gets a ``flow.started`` trigger
carrying it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("origin", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_column("origin")

"""concat parts

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 19:10:00

Issue 12, part 4: the parts of a long inbound SMS until they are joined into one message.
``concat_groups`` holds one row per message being assembled (unique on channel, sender and
the gateway's reference, so concurrent writers agree on one); ``concat_parts`` its parts,
one per part number. Both rows go once the message is created (hub.services.concat).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.columns

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "concat_groups",
        sa.Column("id", _ID(length=40), nullable=False),
        sa.Column("channel_id", _ID(length=40), nullable=False),
        sa.Column("sender", _ID(length=32), nullable=False),
        sa.Column("ref", _ID(length=64), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("first_at", hub.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", hub.columns.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel_id", "sender", "ref", name="uq_concat_groups_ref"),
    )
    op.create_table(
        "concat_parts",
        sa.Column("id", _ID(length=40), nullable=False),
        sa.Column("group_id", _ID(length=40), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("event", sa.JSON(), nullable=False),
        sa.Column("created_at", hub.columns.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["concat_groups.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("group_id", "number", name="uq_concat_parts_number"),
    )


def downgrade() -> None:
    op.drop_table("concat_parts")
    op.drop_table("concat_groups")

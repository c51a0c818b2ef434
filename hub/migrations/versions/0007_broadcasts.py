"""broadcasts

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 16:20:00

Issue 11, part C: ``broadcasts`` (one text template or flow sent to groups and contacts,
its state and schedule) and ``broadcast_recipients`` (the contacts resolved once when it
starts: what each got — a message, a run, or why nothing — and when it replied).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.columns

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "broadcasts",
        sa.Column("id", _ID(length=40), nullable=False),
        sa.Column("name", _ID(length=200), nullable=False),
        sa.Column("text", _ID(), nullable=True),
        sa.Column("flow_id", _ID(length=40), nullable=True),
        sa.Column("flow_version", sa.Integer(), nullable=True),
        sa.Column("channel_id", _ID(length=40), nullable=True),
        sa.Column("group_ids", sa.JSON(), nullable=False),
        sa.Column("contact_ids", sa.JSON(), nullable=False),
        sa.Column("send_at", hub.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("quiet_hours", sa.JSON(), nullable=True),
        sa.Column("status", _ID(length=16), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("started_at", hub.columns.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", hub.columns.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", hub.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hub.columns.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.create_index("ix_broadcasts_status", ["status"], unique=False)
    op.create_table(
        "broadcast_recipients",
        sa.Column("broadcast_id", _ID(length=40), nullable=False),
        sa.Column("contact_id", _ID(length=40), nullable=False),
        sa.Column("status", _ID(length=16), nullable=False),
        sa.Column("skipped_reason", _ID(length=300), nullable=True),
        sa.Column("message_id", _ID(length=40), nullable=True),
        sa.Column("run_id", _ID(length=80), nullable=True),
        sa.Column("channel_id", _ID(length=40), nullable=True),
        sa.Column("queued_at", hub.columns.UTCDateTime(timezone=True), nullable=True),
        sa.Column("replied_at", hub.columns.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["broadcast_id"], ["broadcasts.id"]),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"]),
        sa.PrimaryKeyConstraint("broadcast_id", "contact_id"),
    )
    with op.batch_alter_table("broadcast_recipients", schema=None) as batch_op:
        batch_op.create_index(
            "ix_broadcast_recipients_contact", ["contact_id", "queued_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("broadcast_recipients", schema=None) as batch_op:
        batch_op.drop_index("ix_broadcast_recipients_contact")
    op.drop_table("broadcast_recipients")
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_index("ix_broadcasts_status")
    op.drop_table("broadcasts")

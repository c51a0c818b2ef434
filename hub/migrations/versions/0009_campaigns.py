"""campaigns

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 19:00:00

Issue 12, part 1: ``campaigns`` (events relative to a contact date field, for the members
of a group), ``campaign_events`` and ``campaign_fires`` (one row per event and contact:
its fire time and whether it is scheduled, fired, skipped or cancelled).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.columns

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sqlmodel.sql.sqltypes.AutoString


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, hub.columns.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", _ID(length=40), nullable=False),
        sa.Column("name", _ID(length=200), nullable=False),
        sa.Column("group_id", _ID(length=40), nullable=False),
        sa.Column("channel_id", _ID(length=40), nullable=True),
        sa.Column("status", _ID(length=16), nullable=False),
        _ts("ended_at", nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_index("ix_campaigns_group_id", ["group_id"], unique=False)
        batch_op.create_index("ix_campaigns_status", ["status"], unique=False)
    op.create_table(
        "campaign_events",
        sa.Column("id", _ID(length=40), nullable=False),
        sa.Column("campaign_id", _ID(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("field", _ID(length=100), nullable=False),
        sa.Column("offset_parts", sa.JSON(), nullable=False),
        sa.Column("offset_minutes", sa.Integer(), nullable=False),
        sa.Column("at_time", _ID(length=5), nullable=True),
        sa.Column("text", _ID(), nullable=True),
        sa.Column("flow_id", _ID(length=40), nullable=True),
        _ts("deleted_at", nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("campaign_events", schema=None) as batch_op:
        batch_op.create_index("ix_campaign_events_campaign_id", ["campaign_id"], unique=False)
    op.create_table(
        "campaign_fires",
        sa.Column("id", _ID(length=40), nullable=False),
        sa.Column("campaign_id", _ID(length=40), nullable=False),
        sa.Column("event_id", _ID(length=40), nullable=False),
        sa.Column("contact_id", _ID(length=40), nullable=False),
        _ts("fire_at", nullable=True),
        sa.Column("status", _ID(length=16), nullable=False),
        sa.Column("reason", _ID(length=300), nullable=True),
        sa.Column("message_id", _ID(length=40), nullable=True),
        sa.Column("run_id", _ID(length=80), nullable=True),
        _ts("fired_at", nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"]),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"]),
        sa.ForeignKeyConstraint(["event_id"], ["campaign_events.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("campaign_fires", schema=None) as batch_op:
        batch_op.create_index(
            "ix_campaign_fires_event_contact", ["event_id", "contact_id"], unique=True
        )
        batch_op.create_index("ix_campaign_fires_campaign", ["campaign_id", "status"], unique=False)
        batch_op.create_index("ix_campaign_fires_contact", ["contact_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("campaign_fires", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_fires_contact")
        batch_op.drop_index("ix_campaign_fires_campaign")
        batch_op.drop_index("ix_campaign_fires_event_contact")
    op.drop_table("campaign_fires")
    with op.batch_alter_table("campaign_events", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_events_campaign_id")
    op.drop_table("campaign_events")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index("ix_campaigns_status")
        batch_op.drop_index("ix_campaigns_group_id")
    op.drop_table("campaigns")

"""contacts and groups

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 16:00:00

Issue 11, part A: contacts get ``language``, ``timezone`` and ``deleted_at`` (a deleted
contact keeps an anonymised row); ``groups`` and ``group_members`` (one row per contact
in a group); ``contact_imports`` (a CSV import's progress and report).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.columns

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=35), nullable=True)
        )
        batch_op.add_column(
            sa.Column("timezone", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(
            sa.Column("deleted_at", hub.columns.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "groups",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("created_at", hub.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hub.columns.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "group_members",
        sa.Column("group_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("contact_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("added_at", hub.columns.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"]),
        sa.ForeignKeyConstraint(["group_id"], ["groups.id"]),
        sa.PrimaryKeyConstraint("group_id", "contact_id"),
    )
    with op.batch_alter_table("group_members", schema=None) as batch_op:
        batch_op.create_index("ix_group_members_contact", ["contact_id"], unique=False)
    op.create_table(
        "contact_imports",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("filename", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("total_rows", sa.Integer(), nullable=False),
        sa.Column("processed_rows", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("refused", sa.JSON(), nullable=False),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", hub.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", hub.columns.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("contact_imports")
    with op.batch_alter_table("group_members", schema=None) as batch_op:
        batch_op.drop_index("ix_group_members_contact")
    op.drop_table("group_members")
    op.drop_table("groups")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("deleted_at")
        batch_op.drop_column("timezone")
        batch_op.drop_column("language")

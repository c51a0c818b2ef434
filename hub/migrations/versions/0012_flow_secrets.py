"""flow secrets

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 19:20:00

Issue 13, item 4: ``secrets``, the credentials store flows reference as
``{{ secrets.NAME }}`` in ``http.request``. One row per name (unique); the value is
encrypted with the hub's key (``value_enc``, like gateway secrets) and never leaves the
hub except inside the request a flow step makes (hub.services.secrets).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.columns

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "secrets",
        sa.Column("id", _ID(length=40), nullable=False),
        sa.Column("name", _ID(length=64), nullable=False),
        sa.Column("value_enc", _ID(), nullable=False),
        sa.Column("created_at", hub.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hub.columns.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", name="uq_secrets_name"),
    )


def downgrade() -> None:
    op.drop_table("secrets")

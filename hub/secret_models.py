"""The table of flow secrets (issue 13, item 4): names flows use as ``{{ secrets.NAME }}``.

Apart from ``hub.models`` (which imports it, so ``metadata`` holds the table) to keep that
module short. The value is encrypted with the hub's key (``hub.crypto.SecretBox``) and
leaves the hub only inside the request a flow step sends (hub.services.secrets).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hub.columns import ts_field


class FlowSecret(SQLModel, table=True):
    """One named secret; the API and the UI show its name and dates, never its value."""

    __tablename__ = "secrets"
    # Unique: two creates of one name at once (two processes) end in one row and a 409.
    __table_args__ = (sa.UniqueConstraint("name", name="uq_secrets_name"),)

    id: str = Field(primary_key=True, max_length=40)
    #: ``[A-Z][A-Z0-9_]*`` (flows.SECRET_NAME), at most 64 characters.
    name: str = Field(max_length=64)
    #: The value, encrypted (Fernet, the hub's key).
    value_enc: str
    created_at: datetime = ts_field()
    #: When the value was last replaced (the next step that uses it sends the new one).
    updated_at: datetime = ts_field()

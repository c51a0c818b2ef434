"""REST API ``/api/v1/secrets``: the credentials flows use as ``{{ secrets.NAME }}``.

Create, list, read, replace the value, delete. No answer ever holds a value: ``value`` is
always ``********``. The work is :mod:`hub.services.secrets`; this module parses and
shapes."""

from __future__ import annotations

from datetime import datetime

from litestar import delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from pydantic import BaseModel, Field

from flows import SECRET_NAME_RULE
from hub.api.deps import ApiController
from hub.context import Hub
from hub.models import FlowSecret
from hub.schemas import In, Page
from hub.services import secrets as service


class SecretIn(In):
    name: str = Field(
        min_length=1,
        max_length=64,
        description=f"The name flows use, `{{{{ secrets.NAME }}}}`: {SECRET_NAME_RULE}.",
    )
    value: str = Field(
        min_length=1,
        max_length=service.MAX_VALUE,
        description="The value (write-only: no answer shows it again; leading and trailing "
        "spaces are removed).",
    )


class SecretValueIn(In):
    value: str = Field(
        min_length=1,
        max_length=service.MAX_VALUE,
        description="The new value: the next request of a flow that uses the secret sends it.",
    )


class SecretOut(BaseModel):
    name: str
    #: Always the mask: a value is never shown.
    value: str = Field(default=service.MASK, description="Always `********`.")
    usage: str = Field(description="What to write in an http.request URL, header or body.")
    created_at: datetime
    updated_at: datetime = Field(description="When the value was last set.")


def secret_out(row: FlowSecret) -> SecretOut:
    """API view of a secret: its name and dates, the value masked."""
    return SecretOut(
        name=row.name,
        usage=f"{{{{ secrets.{row.name} }}}}",
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SecretController(ApiController):
    path = "/secrets"
    tags = ["flows"]

    @post("/", status_code=201, summary="Store a secret for flows")
    async def create(self, hub: NamedDependency[Hub], data: JSONBody[SecretIn]) -> SecretOut:
        """201 with the name (value masked); 409 ``secret_exists`` if the name is taken."""
        return secret_out(await service.create_secret(hub, data.name, data.value))

    @get("/", summary="List secrets by name (values masked)")
    async def list_secrets(self, hub: NamedDependency[Hub]) -> Page[SecretOut]:
        return Page[SecretOut](items=[secret_out(r) for r in await service.list_secrets(hub)])

    @get("/{name:str}", summary="One secret (value masked)")
    async def get_secret(self, hub: NamedDependency[Hub], name: FromPath[str]) -> SecretOut:
        return secret_out(await service.get_secret(hub, name))

    @put("/{name:str}", summary="Replace a secret's value")
    async def replace(
        self, hub: NamedDependency[Hub], name: FromPath[str], data: JSONBody[SecretValueIn]
    ) -> SecretOut:
        """The next request that uses it (a retry of a running step too) sends the new one."""
        return secret_out(await service.replace_secret(hub, name, data.value))

    @patch("/{name:str}", summary="Replace a secret's value (same as PUT)")
    async def update(
        self, hub: NamedDependency[Hub], name: FromPath[str], data: JSONBody[SecretValueIn]
    ) -> SecretOut:
        return secret_out(await service.replace_secret(hub, name, data.value))

    @delete("/{name:str}", status_code=204, summary="Delete a secret")
    async def remove(self, hub: NamedDependency[Hub], name: FromPath[str]) -> None:
        """A flow step that names it from now on fails (its error port, naming the secret)."""
        await service.delete_secret(hub, name)


route_handlers = [SecretController]

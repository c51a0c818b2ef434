"""The hub's runtime: everything a service or job needs, built once per process."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from hub.crypto import SecretBox
from hub.db import Database
from hub.http_client import AiohttpClient
from hub.settings import Settings

if TYPE_CHECKING:
    from hub.queue.base import JobQueue
    from hub.services.channels import ChannelCache
    from hub.services.ingest import IngestWriter


class Hub:
    """Shared runtime objects of one process (the composition root fills it).

    A plain class, not a dataclass: Litestar would otherwise try to validate it as data
    when it is injected into handlers.
    """

    queue: JobQueue
    channels: ChannelCache
    ingest: IngestWriter

    def __init__(
        self, *, settings: Settings, db: Database, box: SecretBox, http: AiohttpClient
    ) -> None:
        self.settings = settings
        self.db = db
        self.box = box
        self.http = http
        #: The wall clock; tests freeze it to check signature windows.
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)

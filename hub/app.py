"""The composition root: builds the hub's runtime and the Litestar app."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.plugins.pydantic import PydanticPlugin
from redis.asyncio import Redis

from hub.api import broadcasts, campaigns, contacts, endpoints, flows, health, ingress, secrets, v1
from hub.api.deps import provide_hub, reject_nul
from hub.api.errors import exception_handlers
from hub.api.openapi import declare_auth_and_errors, openapi_config
from hub.context import Hub, Wiring
from hub.crypto import SecretBox, new_secret_key, read_secret_key
from hub.db import Database
from hub.delivery.gate import EndpointGate
from hub.http_client import AiohttpClient
from hub.queue.arq_queue import ArqQueue
from hub.queue.inline import InlineQueue
from hub.services.bootstrap import bootstrap
from hub.services.channels import ChannelCache
from hub.services.flow_runtime import FlowsRuntime
from hub.services.ingest import IngestWriter
from hub.services.meta import confirm_secret_key
from hub.settings import Settings, get_settings
from hub.store import open_store
from hub.throttle import login_throttle
from hub.wiring import default_wiring

log = logging.getLogger("smshub")


def build_hub(settings: Settings, *, wiring: Wiring | None = None) -> Hub:
    """Wire the runtime objects of one process (nothing is started yet).

    ``wiring`` (default: :func:`hub.wiring.default_wiring`) says which jobs and event
    sinks exist in this process."""
    hub = Hub(
        settings=settings,
        db=Database(
            settings.effective_database_url,
            sqlite_synchronous=settings.sqlite_synchronous,
            pool_size=settings.database_pool_size,
        ),
        box=_secret_box(settings),
        http=AiohttpClient(),
    )
    if settings.redis_url:
        hub.redis = Redis.from_url(settings.redis_url)
    hub.login_throttle = login_throttle(settings, hub.db, hub.redis)
    hub.wiring = wiring or default_wiring()
    hub.store = open_store(
        settings.effective_database_url, sqlite_synchronous=settings.sqlite_synchronous
    )
    hub.channels = ChannelCache(hub)
    hub.ingest = IngestWriter(hub)
    hub.flows = FlowsRuntime(hub)
    hub.gates = EndpointGate.for_settings(settings, hub.redis)
    # With Redis, `smshub worker` processes run the jobs; this process only pushes them.
    hub.queue = ArqQueue(hub) if settings.redis_url else InlineQueue(hub)
    return hub


def _secret_box(settings: Settings) -> SecretBox:
    """The key from the settings or the key file; else a new one, saved only once the
    database is known to hold no other key's secrets (``confirm_secret_key``)."""
    key = settings.secret_key or read_secret_key(settings.var_dir)
    if key:
        return SecretBox(key)
    return SecretBox(new_secret_key(), generated_for=settings.var_dir)


def create_app(
    settings: Settings | None = None,
    *,
    hub: Hub | None = None,
    workers: bool = True,
    first_start: bool = True,
) -> Litestar:
    """The ASGI app; ``workers=False`` serves HTTP only (jobs run elsewhere);
    ``first_start=False`` leaves the first-start setup (simulator channel, example flow)
    to whoever started this process."""
    import ui.app  # the browser UI: composed here, it depends on hub, never the reverse

    settings = settings or (hub.settings if hub else get_settings())
    runtime = hub or build_hub(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await confirm_secret_key(runtime)
        if first_start:
            await bootstrap(runtime)
        # The arq engine's pusher always runs; inline workers only when asked for.
        run_queue = workers or bool(runtime.settings.redis_url)
        if run_queue:
            await runtime.queue.start()
        try:
            yield
        finally:
            if hub is None:
                await runtime.close()
            else:  # the caller owns the hub and closes it
                if run_queue:
                    await runtime.queue.stop()
                await runtime.http.close()

    app = Litestar(
        route_handlers=[
            *health.route_handlers,
            *ingress.route_handlers,
            *flows.public_handlers,
            _api_router(),
            *ui.app.route_handlers(),
        ],
        state=State({"hub": runtime}),
        dependencies={"hub": Provide(provide_hub, sync_to_thread=False)},
        exception_handlers=exception_handlers,
        lifespan=[lifespan],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=openapi_config(),
        plugins=[PydanticPlugin(prefer_alias=True)],
        template_config=ui.app.template_config(),
        # The hub configures logging once per process (hub.cli); Litestar's own config
        # would add a queue-listener thread per app and a second log format.
        logging_config=None,
        debug=False,
    )
    declare_auth_and_errors(app)  # the API key scheme and the error shape on every route
    return app


def worker_process_app() -> Litestar:
    """The app of one of ``smshub serve --processes N``'s processes (uvicorn's factory):
    settings from the environment, the first-start setup already done by the parent."""
    app = create_app(get_settings(), first_start=False)
    tune_gc()
    return app


#: Allocations between young-generation collections in a server process (Python: 700).
GC_GEN0_THRESHOLD = 20_000


def tune_gc() -> None:
    """Garbage collection for a long-running server process, once it is built.

    Everything made at start (modules, the app, the routes) moves to the permanent
    generation, so full collections no longer walk it, and young collections run after
    20,000 allocations instead of 700. With Python's defaults a collection every few
    requests walked the whole heap and stalled every request in flight: ingest's ack p99
    fell from ~75 ms to ~20 ms with this (bench/README.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 20)


def _api_router() -> Router:
    return Router(
        path="/api/v1",
        before_request=reject_nul,
        route_handlers=[
            *v1.route_handlers,
            *contacts.route_handlers,
            *broadcasts.route_handlers,
            *campaigns.route_handlers,
            *flows.api_handlers,
            *secrets.route_handlers,
            *endpoints.route_handlers,
        ],
    )

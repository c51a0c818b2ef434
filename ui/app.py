"""Browser UI wiring: page routers, static files and the template engine.

``hub.app.create_app`` calls :func:`route_handlers` and :func:`template_config`; nothing
in ``hub`` imports anything else from ``ui``.
"""

from __future__ import annotations

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ControllerRouterHandler

from ui.controllers.apikeys import ApiKeysController
from ui.controllers.auth import AuthController
from ui.controllers.broadcasts import BroadcastsController
from ui.controllers.campaigns import CampaignsController
from ui.controllers.channels import ChannelsController
from ui.controllers.contact_imports import ContactImportsController
from ui.controllers.contacts import ContactsController
from ui.controllers.conversations import ConversationsController
from ui.controllers.dashboard import DashboardController
from ui.controllers.flows import FlowsController
from ui.controllers.groups import GroupsController
from ui.controllers.mysmsgate import MySmsGateController
from ui.controllers.optouts import OptOutsController
from ui.controllers.runs import RunsController
from ui.controllers.secrets import SecretsController
from ui.controllers.webhooks import WebhooksController
from ui.pages import (
    STATIC_DIR,
    environment,
    exception_handlers,
    reject_odd_input,
)


def route_handlers() -> list[ControllerRouterHandler]:
    """The UI's routers: pages under ``/``, assets under ``/static``."""
    pages = Router(
        path="/",
        route_handlers=[
            AuthController,
            DashboardController,
            FlowsController,
            RunsController,
            ConversationsController,
            ContactImportsController,
            ContactsController,
            GroupsController,
            BroadcastsController,
            CampaignsController,
            ChannelsController,
            ApiKeysController,
            SecretsController,
            OptOutsController,
            MySmsGateController,
            WebhooksController,
        ],
        exception_handlers=exception_handlers,
        before_request=reject_odd_input,
        include_in_schema=False,
    )
    static = create_static_files_router(
        path="/static",
        directories=[STATIC_DIR],
        # Every URL carries a content hash (ui.pages.static_url), so caching is safe.
        cache_control=CacheControlHeader(max_age=86_400, public=True),
        include_in_schema=False,
    )
    return [pages, static]


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """Jinja2 templates from ``ui/templates`` (autoescaped)."""
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment()))

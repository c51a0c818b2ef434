"""Opt-out words: what the hub answers itself, per language, read-only (they are settings)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template

from hub.settings import Settings
from ui.auth import hub_of, require_user
from ui.pages import render


class OptOutsController(Controller):
    path = "/settings/opt-outs"
    guards = [require_user]
    include_in_schema = False

    @get("/")
    async def index(self, request: Request[Any, Any, Any]) -> Template:
        settings = hub_of(request).settings
        return render(request, "settings/opt_outs.html", rows=_rows(settings), settings=settings)


def _rows(settings: Settings) -> list[dict[str, Any]]:
    """One row per language: its words of each kind and its configured texts (None: the
    default text answers, unless the contact's language has one)."""
    table = settings.keywords
    words = table.words()
    return [
        {
            "language": language,
            "stop": words["stop"].get(language, ()),
            "start": words["start"].get(language, ()),
            "help": words["help"].get(language, ()),
            "stop_text": settings.stop_texts.get(language),
            "start_text": settings.start_texts.get(language),
            "help_text": settings.help_texts.get(language),
        }
        for language in sorted(
            {*table.languages(), *settings.stop_texts, *settings.start_texts, *settings.help_texts},
            key=lambda language: (language != "en", language),
        )
    ]

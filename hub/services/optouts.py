"""STOP / START / HELP on an inbound SMS, in any configured language: the contact's opt-out
state and exactly one confirmation, in the ingest unit (so an acknowledged STOP is
honoured). A blocked contact's keyword still sets its opt-out state but is answered nothing.

The confirmation's language (docs/opt-outs.md): the contact's language if a text is
configured for it ("pt-BR", then "pt"), else the keyword's language if only one language
has that word (BAJA → "es") and a text is configured for it, else the default text
(``SMSHUB_STOP_TEXT`` …).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from hub.context import Hub
from hub.metrics import OPTOUTS
from hub.services.campaigns_schedule import reschedule_contact_fires
from hub.services.keywords import Keyword, KeywordMatch
from hub.services.messages import MessageRow
from hub.services.sending import queue_system_reply
from hub.settings import Settings
from hub.store import Unit, execute, fetch_one


def handle_keyword(hub: Hub, inbound: MessageRow, now: datetime) -> Unit[None]:
    """Unit: update the contact for a compliance keyword and queue its one confirmation."""
    keyword = hub.settings.keywords.match(inbound.body)
    if keyword is None:
        return
    found = yield from fetch_one(
        "SELECT opted_out, blocked, language FROM contacts WHERE id = ?", (inbound.contact_id,)
    )
    opted_out, blocked, language = (
        (bool(found[0]), bool(found[1]), found[2]) if found else (False, False, None)
    )
    text = confirmation_text(hub.settings, keyword, language)
    if keyword.kind == "help":
        if not blocked:  # a blocked contact gets no answer at all
            yield from queue_system_reply(hub, inbound, text)
        OPTOUTS.labels("help").inc()
        return
    if keyword.is_answer and not opted_out:
        return  # "yes" is an ordinary answer unless the contact is opted out
    stop = keyword.kind == "stop"
    yield from execute(
        "UPDATE contacts SET opted_out = ?, opted_out_at = ?, updated_at = ? WHERE id = ?",
        (stop, now if stop else None, now, inbound.contact_id),
    )
    # STOP cancels the contact's campaign fires, START schedules them again (ahead only).
    yield from reschedule_contact_fires(hub, inbound.contact_id, now)
    if not blocked:  # the opt-out state is kept; a blocked contact gets no confirmation
        yield from queue_system_reply(hub, inbound, text)
    OPTOUTS.labels(keyword.kind).inc()


def confirmation_text(
    settings: Settings, keyword: KeywordMatch, contact_language: str | None
) -> str:
    """The answer to a keyword: in the contact's language, else the keyword's, else the
    default text (a language counts only when a text is configured for it)."""
    texts, default = _texts(settings, keyword.kind)
    for language in (
        *language_candidates(contact_language),
        *language_candidates(keyword.language),
    ):
        if language in texts:
            return texts[language]
    return default


def language_candidates(tag: str | None) -> tuple[str, ...]:
    """A BCP 47 tag and the shorter tags it falls back to, lower case: "pt-BR" → ("pt-br",
    "pt"); "zh-Hant-TW" → ("zh-hant-tw", "zh-hant", "zh"); none → ()."""
    if not tag or not tag.strip():
        return ()
    parts = tag.strip().lower().replace("_", "-").split("-")
    return tuple("-".join(parts[:end]) for end in range(len(parts), 0, -1))


def _texts(settings: Settings, kind: Keyword) -> tuple[Mapping[str, str], str]:
    if kind == "stop":
        return settings.stop_texts, settings.stop_text
    if kind == "start":
        return settings.start_texts, settings.start_text
    return settings.help_texts, settings.help_text

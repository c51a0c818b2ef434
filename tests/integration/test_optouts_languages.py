"""Opt-out words in other languages, through the whole hub: a signed simulator webhook, the
ingest unit, the contact's state, the one confirmation (in which language) and the flows
that must not see the keyword."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col

from hub.context import Hub
from hub.models import Contact, Message
from tests.conftest import ChannelFactory, drain
from tests.e2e.helpers import Web
from tests.helpers import SimPhone

SECRET = "simulator-secret-123"
SIM_NUMBER = "+15550100000"
ALICE = "+15550001234"

ES_STOP = "Te has dado de baja. Responde ALTA para volver."
ES_START = "Te has dado de alta de nuevo."
PT_STOP = "Você foi descadastrado."


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Spanish and Portuguese confirmations, no French or German ones; Spanish opt-out
    words replaced by a list with a custom word (BASTA) and without ANULAR."""
    return {
        "stop_texts": {"es": ES_STOP, "PT": PT_STOP},  # language tags in any case
        "start_texts": {"es": ES_START},
        "opt_out_words": {"es": ["BAJA", "ALTO", "PARAR", "CANCELAR", "DETENER", "BASTA"]},
    }


@pytest.fixture
async def phone(client: httpx.AsyncClient, make_channel: ChannelFactory) -> SimPhone:
    channel = await make_channel(
        "simulator",
        webhook_secret=SECRET,
        config={"phone_number": SIM_NUMBER, "delivery_delay_s": 0},
    )
    return SimPhone(client, channel.id, SECRET, SIM_NUMBER)


async def texts_to(hub: Hub, number: str = ALICE) -> list[str]:
    async with hub.db.read() as session:
        rows = await session.execute(
            sa.select(Message.body)
            .where(col(Message.to_number) == number, col(Message.direction) == "outbound")
            .order_by(col(Message.id))
        )
        return list(rows.scalars())


async def opted_out(hub: Hub, number: str = ALICE) -> bool:
    async with hub.db.read() as session:
        found = await session.scalar(sa.select(Contact.opted_out).where(Contact.phone == number))
    return bool(found)


async def says(hub: Hub, phone: SimPhone, text: str, sender: str = ALICE) -> None:
    await phone.says(sender, text)
    await drain(hub)


async def make_contact(
    client: httpx.AsyncClient, headers: dict[str, str], number: str, language: str
) -> None:
    resp = await client.post(
        "/api/v1/contacts", json={"phone": number, "language": language}, headers=headers
    )
    assert resp.status_code == 201, resp.text


async def test_baja_opts_out_and_is_confirmed_in_spanish(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], phone: SimPhone
) -> None:
    for _ in range(2):  # the gateway retries the same SMS: one confirmation
        await phone.says(ALICE, "Baja.", event_id="in-baja")
    await drain(hub)
    assert await opted_out(hub)
    assert await texts_to(hub) == [ES_STOP]  # an unknown contact: BAJA is Spanish
    refused = await client.post(
        "/api/v1/send", json={"to": ALICE, "message": "offer"}, headers=api_headers
    )
    assert refused.status_code == 409
    await says(hub, phone, "alta")
    assert not await opted_out(hub)
    assert await texts_to(hub) == [ES_STOP, ES_START]


async def test_contact_language_chooses_the_confirmation(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], phone: SimPhone
) -> None:
    await make_contact(client, api_headers, ALICE, "es")
    await says(hub, phone, "STOP")  # English (and French); the contact reads Spanish
    assert await texts_to(hub) == [ES_STOP]

    bruno = "+15550002222"
    await make_contact(client, api_headers, bruno, "pt-BR")  # no pt-BR text: pt's
    await says(hub, phone, "PARAR", sender=bruno)  # Spanish and Portuguese: no guess
    assert await opted_out(hub, bruno)
    assert await texts_to(hub, bruno) == [PT_STOP]

    chloe = "+15550003333"
    await make_contact(client, api_headers, chloe, "fr")  # no French text: the keyword's
    await says(hub, phone, "BAJA", sender=chloe)
    assert await texts_to(hub, chloe) == [ES_STOP]


@pytest.mark.parametrize(
    "word",
    [
        "ARRÊT",  # French, with its accent
        "arret",  # without it, lower case
        "Arre\u0302t",  # a combining circumflex (what some keyboards send)
        "STOPP",  # German
        "Kündigen!",  # German with an umlaut and a trailing mark
        "opt out",  # the English two-word form still works
    ],
)
async def test_other_languages_opt_out_with_the_default_text_when_none_is_configured(
    hub: Hub, phone: SimPhone, word: str
) -> None:
    await says(hub, phone, word)
    assert await opted_out(hub)
    assert await texts_to(hub) == [hub.settings.stop_text]  # no French / German text


async def test_a_configured_word_opts_out_and_a_replaced_list_drops_the_others(
    hub: Hub, phone: SimPhone
) -> None:
    await says(hub, phone, "ANULAR")  # a default Spanish word the configured list left out
    assert not await opted_out(hub)
    assert await texts_to(hub) == []
    await says(hub, phone, "basta")  # the configured one
    assert await opted_out(hub)
    assert await texts_to(hub) == [ES_STOP]


async def test_flows_never_see_keywords_of_any_language(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], phone: SimPhone
) -> None:
    echo = {
        "name": "echo",
        "nodes": [
            {"id": "start", "type": "trigger.sms_received", "config": {"match": "any"}},
            {"id": "r", "type": "sms.reply", "config": {"text": "got {{ trigger.data.body }}"}},
        ],
        "edges": [{"from": "start", "to": "r"}],
    }
    resp = await client.post("/api/v1/flows/import?publish=true", json=echo, headers=api_headers)
    assert resp.status_code == 201, resp.text
    for text in ("Sí", "AYUDA", "HILFE", "ARRÊT", "Hola"):
        await says(hub, phone, text)
    # "Sí" is an ordinary answer (not an opt-in word); AYUDA / HILFE get the help text;
    # ARRÊT opts out: the flow sees "Hola", but its reply is refused.
    help_text, stop_text = hub.settings.help_text, hub.settings.stop_text
    assert await texts_to(hub) == ["got Sí", help_text, help_text, stop_text, "got Hola"]
    async with hub.db.read() as session:
        last = await session.scalar(sa.select(Message).where(Message.body == "got Hola"))
    assert last is not None and last.status == "suppressed" and "opted_out" in (last.error or "")


async def test_the_ui_shows_the_words_and_texts_read_only(
    client: httpx.AsyncClient, web: Web
) -> None:
    page = await web.get("/settings/opt-outs")
    assert page.status_code == 200, page.text
    spanish = _row(page.text, "data-optout-words", "es")
    assert "BASTA" in spanish and "BAJA" in spanish and "ANULAR" not in spanish  # as set
    assert "ARRÊT" in _row(page.text, "data-optout-words", "fr")  # spelled as listed
    assert "AYUDA" in spanish
    assert html.escape(ES_STOP) in _row(page.text, "data-optout-texts", "es")
    assert html.escape(PT_STOP) in _row(page.text, "data-optout-texts", "pt")
    assert 'href="/settings/opt-outs"' in page.text  # in the navigation
    assert (await web.post("/settings/opt-outs")).status_code == 405  # nothing to change
    web.client.cookies.clear()
    assert (await client.get("/settings/opt-outs")).status_code in (302, 303)  # signed in only


def _row(page: str, table: str, language: str) -> str:
    """The HTML of one language's row in one of the page's tables."""
    section = page.split(table, 1)[1].split("</table>", 1)[0]
    found = re.search(rf'<tr data-language="{language}">(.*?)</tr>', section, re.S)
    assert found is not None, f"no row for {language} in {table}"
    return found.group(1)

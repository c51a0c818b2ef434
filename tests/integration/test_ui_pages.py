"""The pages, signed in, over HTTP: what each shows, what each form does, and the message
next to the field when the input is bad."""

from __future__ import annotations

import json
import re

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col

from hub.context import Hub
from hub.models import ApiKey, Channel, Contact, Flow, FlowRun, Message
from hub.services import channels as channel_service
from hub.services.bootstrap import join_example
from hub.services.flows import import_flow
from hub.services.runs import list_runs
from tests.conftest import ChannelFactory, drain
from tests.e2e.helpers import Web, error_next_to, text_of
from tests.helpers import SimPhone, count, fast_forward
from ui.qr import qr_svg

SECRET = "simulator-secret-123"
SIM_NUMBER = "+15550100000"
ANN = "+15550001234"


@pytest.fixture
async def phone(client: httpx.AsyncClient, make_channel: ChannelFactory) -> SimPhone:
    channel = await make_channel(
        "simulator",
        name="Simulator",
        webhook_secret=SECRET,
        config={"phone_number": SIM_NUMBER, "delivery_delay_s": 0},
    )
    return SimPhone(client, channel.id, SECRET, SIM_NUMBER)


async def join_flow(hub: Hub, channel_id: str) -> Flow:
    view, _ = await import_flow(hub, join_example(channel_id), publish_it=True)
    return view.flow


# --- dashboard --------------------------------------------------------------------------------


async def test_dashboard_counts_today_and_shows_channel_health_and_failed_runs(
    hub: Hub, web: Web, phone: SimPhone
) -> None:
    await join_flow(hub, phone.channel_id)
    await phone.says(ANN, "JOIN news")
    await phone.says("+15550002222", "hello")
    await drain(hub)
    page = await web.get("/")
    assert page.status_code == 200
    stats = dict(re.findall(r'data-stat="(\w+)">(\d+)<', page.text))
    assert stats["received"] == "2"
    assert stats["sent"] == "1" and stats["delivered"] == "1" and stats["failed"] == "0"
    text = text_of(page.text)
    assert "Simulator" in text and "no events yet" not in text
    assert "All good" in text  # no failed run yet


# --- flows ------------------------------------------------------------------------------------


async def test_new_flow_opens_the_editor_with_its_draft(hub: Hub, web: Web) -> None:
    resp = await web.post("/flows", {"name": "JOIN auto-reply", "example": ""})
    assert resp.status_code == 303
    flow_id = resp.headers["location"].rsplit("/", 1)[1]
    editor = await web.get(resp.headers["location"])
    assert editor.status_code == 200
    data = json.loads(
        re.search(r'id="flow-data">(.*?)</script>', editor.text, re.S).group(1)  # type: ignore[union-attr]
    )
    assert data["id"] == flow_id and data["draft"] == {
        "nodes": [],
        "edges": [],
        "name": "JOIN auto-reply",
    }
    assert [p["message"] for p in data["problems"]] == ["the flow has no nodes"]
    assert "drawflow.min.js" in editor.text
    await _editor_modules_are_served(web, editor.text)


async def _editor_modules_are_served(web: Web, page: str) -> None:
    """The import map pins every editor module to a hashed URL that serves JavaScript."""
    found = re.search(r'<script type="importmap">(.*?)</script>', page, re.S)
    assert found is not None
    imports = json.loads(found.group(1))["imports"]
    assert "/static/editor/main.js" in imports and "/static/editor/graph.js" in imports
    assert 'from "/static/editor/main.js"' in page
    for path, url in imports.items():
        assert url.startswith(path + "?v=")
        served = await web.get(url)
        # Browsers refuse a module served as anything but JavaScript.
        assert served.status_code == 200 and "javascript" in served.headers["content-type"]
        for imported in re.findall(r'from "\./([\w-]+\.js)"', served.text):
            assert "/static/editor/" + imported in imports, f"{path} imports {imported}"


async def test_new_flow_from_an_example(hub: Hub, web: Web) -> None:
    resp = await web.post("/flows", {"name": "Survey", "example": "survey"})
    assert resp.status_code == 303
    async with hub.db.read() as session:
        flow = (await session.execute(sa.select(Flow))).scalar_one()
    assert flow.name == "Survey" and len(flow.draft["nodes"]) > 2


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"name": ""}, "name", "give the flow a name"),  # empty
        ({"name": "   "}, "name", "give the flow a name"),  # blank
        ({"name": "x" * 201}, "name", "at most 200"),  # too long
        ({"name": "ok", "example": "../../etc/passwd"}, "example", "listed examples"),
    ],
)
async def test_new_flow_rejects_bad_input(
    hub: Hub, web: Web, form: dict[str, str], field: str, message: str
) -> None:
    resp = await web.post("/flows", form)
    assert resp.status_code == 422
    assert message in error_next_to(resp.text, field)
    assert await count(hub, Flow) == 0


async def test_pause_resume_and_delete_a_flow(hub: Hub, web: Web, phone: SimPhone) -> None:
    flow = await join_flow(hub, phone.channel_id)
    assert (await web.post(f"/flows/{flow.id}/enabled", {"enabled": "false"})).status_code == 303
    listing = await web.get("/flows")
    assert "paused · v1" in listing.text
    assert (await web.post(f"/flows/{flow.id}/enabled", {"enabled": "true"})).status_code == 303
    assert "live · v1" in (await web.get("/flows")).text
    assert (await web.post(f"/flows/{flow.id}/delete")).status_code == 303
    assert (await web.get(f"/flows/{flow.id}")).status_code == 404
    assert (await web.post("/flows/flw_nope/delete")).status_code == 404


# --- the editor's test run --------------------------------------------------------------------


async def test_test_run_takes_the_path_with_each_steps_output_and_sends_nothing(
    hub: Hub, web: Web, phone: SimPhone
) -> None:
    flow = await join_flow(hub, phone.channel_id)
    resp = await web.post_json(
        f"/flows/{flow.id}/test-run",
        {
            "document": flow.draft,
            "mode": "sms",
            "text": "join news",
            "from": ANN,
            "channel_id": phone.channel_id,
        },
    )
    assert resp.status_code == 200, resp.text
    result = resp.json()
    (run,) = result["runs"]
    assert run["status"] == "completed"
    assert [s["node_id"] for s in run["steps"]] == ["start", "welcome", "tag"]
    assert run["steps"][0]["output"]["rest"] == "news"
    assert [s["port"] for s in run["steps"]] == ["next", "next", "next"]
    assert result["sms"][0]["text"] == "Welcome to news! Reply STOP to opt out."
    # Nothing real happened: no message, no contact, no run in the hub.
    assert await count(hub, Message) == 0
    assert await count(hub, FlowRun) == 0


async def test_test_run_reports_no_match_and_problems(hub: Hub, web: Web, phone: SimPhone) -> None:
    flow = await join_flow(hub, phone.channel_id)
    url = f"/flows/{flow.id}/test-run"
    body = {"document": flow.draft, "text": "hello", "channel_id": phone.channel_id}
    no_match = (await web.post_json(url, body)).json()
    assert no_match["runs"] == [] and no_match["matched"] is False
    broken = {**flow.draft, "edges": [{"from": "start", "to": "ghost"}]}
    problems = (await web.post_json(url, {**body, "document": broken})).json()
    assert problems["session"] is None
    assert any(p["code"] == "unknown_node" for p in problems["problems"])


async def test_test_run_waits_for_a_reply_and_times_out(hub: Hub, web: Web) -> None:
    document = {
        "name": "ask",
        "nodes": [
            {"id": "start", "type": "trigger.sms_received", "config": {"keywords": ["ASK"]}},
            {"id": "ask", "type": "sms.wait_for_reply", "config": {"text": "Y or N?"}},
            {
                "id": "thanks",
                "type": "sms.reply",
                "config": {"text": "Got {{ steps.ask.output.body }}"},
            },
            {"id": "late", "type": "sms.reply", "config": {"text": "Too late"}},
        ],
        "edges": [
            {"from": "start", "to": "ask"},
            {"from": "ask", "port": "reply", "to": "thanks"},
            {"from": "ask", "port": "timeout", "to": "late"},
        ],
    }
    view, _ = await import_flow(hub, document, publish_it=False)
    url = f"/flows/{view.flow.id}/test-run"
    first = (await web.post_json(url, {"document": document, "text": "ask"})).json()
    assert first["runs"][0]["status"] == "waiting"
    sid = first["session"]
    replied = (await web.post_json(f"/flows/test-runs/{sid}/reply", {"text": "Y"})).json()
    assert replied["runs"][0]["status"] == "completed"
    assert replied["sms"][-1]["text"] == "Got Y"
    again = (await web.post_json(url, {"document": document, "text": "ask"})).json()
    timed_out = (await web.post_json(f"/flows/test-runs/{again['session']}/advance", {})).json()
    assert timed_out["runs"][0]["steps"][-1]["node_id"] == "late"
    assert timed_out["sms"][-1]["text"] == "Too late"


async def test_test_run_of_an_http_triggered_flow(hub: Hub, web: Web) -> None:
    from flows.examples import load_example

    document = load_example("appointment_confirmation")
    view, _ = await import_flow(hub, document, publish_it=False)
    body = {"phone": "+15550001234", "name": "Ann", "when": "Tue 3 pm"}
    result = (
        await web.post_json(
            f"/flows/{view.flow.id}/test-run", {"document": document, "mode": "http", "body": body}
        )
    ).json()
    (run,) = result["runs"]
    assert run["status"] == "waiting"
    assert result["sms"][0]["to"] == "+15550001234" and "Ann" in result["sms"][0]["text"]
    answered = (
        await web.post_json(f"/flows/test-runs/{result['session']}/reply", {"text": "y"})
    ).json()
    assert answered["runs"][0]["status"] == "completed"
    assert "confirmed" in answered["sms"][-1]["text"]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/flows/{flow}/test-run", b"not json", 400),  # unreadable
        ("/flows/{flow}/test-run", b"[1, 2]", 400),  # not an object
        ("/flows/{flow}/test-run", b'{"document": 5}', 422),  # not a flow
        ("/flows/{flow}/test-run", b'{"document": {"name": "x"}, "body": 3}', 422),
        ("/flows/{flow}/test-run", b'{"document": {"name": "x", "nodes": []}, "mode": "x"}', 200),
        ("/flows/test-runs/nope/reply", b'{"text": "hi"}', 422),  # expired or unknown
        ("/flows/test-runs/nope/advance", b'{"seconds": "soon"}', 422),
        # Past any float: checked before it is converted (was an OverflowError, a 500).
        ("/flows/test-runs/nope/advance", b'{"seconds": 1' + b"0" * 400 + b"}", 422),
        ("/flows/test-runs/nope/advance", b'{"seconds": -5}', 422),
        ("/flows/flw_nope/test-run", b"{}", 404),
    ],
)
async def test_test_run_rejects_bad_input(
    hub: Hub, web: Web, phone: SimPhone, path: str, body: bytes, status: int
) -> None:
    flow = await join_flow(hub, phone.channel_id)
    resp = await web.client.post(
        path.format(flow=flow.id),
        content=body,
        headers={"X-CSRF-Token": web.csrf, "content-type": "application/json"},
    )
    assert resp.status_code == status, resp.text
    if status != 200:
        assert "error" in resp.json()


# --- runs -------------------------------------------------------------------------------------


async def test_runs_list_filters_and_detail(hub: Hub, web: Web, phone: SimPhone) -> None:
    flow = await join_flow(hub, phone.channel_id)
    await phone.says(ANN, "JOIN")
    await phone.says("+15550002222", "JOIN")
    await drain(hub)
    every = await web.get("/runs")
    assert every.text.count('data-href="/runs/run_') == 2
    mine = await web.get(f"/runs?flow={flow.id}&status=completed&contact=555-000-1234")
    assert mine.text.count('data-href="/runs/run_') == 1
    assert "+15550001234" in mine.text
    assert (await web.get("/runs?status=failed")).text.count('data-href="/runs/run_') == 0
    run_id = re.search(r'data-href="/runs/(run_\w+)"', mine.text).group(1)  # type: ignore[union-attr]
    detail = await web.get(f"/runs/{run_id}")
    assert detail.status_code == 200
    data = json.loads(re.search(r'id="run-data">(.*?)</script>', detail.text, re.S).group(1))  # type: ignore[union-attr]
    assert [s["node_id"] for s in data["steps"]] == ["start", "welcome", "tag"]
    assert data["definition"]["nodes"][0]["id"] == "start"
    assert "Replay from start" in detail.text


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("status=exploded", "status", "listed statuses"),
        ("contact=not-a-number", "contact", ""),
        ("cursor=yesterday", "cursor", "cursor"),
    ],
)
async def test_runs_filters_reject_bad_input(
    web: Web, query: str, field: str, message: str
) -> None:
    resp = await web.get(f"/runs?{query}")
    assert resp.status_code == 422
    assert "error-text" in resp.text
    assert message in resp.text


async def test_replay_and_cancel_from_the_run_page(hub: Hub, web: Web, phone: SimPhone) -> None:
    document = {
        "name": "ask",
        "nodes": [
            {"id": "start", "type": "trigger.sms_received", "config": {"keywords": ["ASK"]}},
            {"id": "ask", "type": "sms.wait_for_reply", "config": {"text": "Y or N?"}},
        ],
        "edges": [{"from": "start", "to": "ask"}],
    }
    await import_flow(hub, document, publish_it=True)
    await phone.says(ANN, "ask")
    await drain(hub)
    (run,), _ = await list_runs(hub, limit=5, cursor=None)
    assert run.status == "waiting"
    page = await web.get(f"/runs/{run.id}")
    assert 'data-action="cancel"' in page.text
    assert (await web.post(f"/runs/{run.id}/cancel")).status_code == 303
    async with hub.db.read() as session:
        assert (await session.get(FlowRun, run.id)).status == "cancelled"  # type: ignore[union-attr]
    replay = await web.post(f"/runs/{run.id}/replay", {"mode": "from_start"})
    assert replay.status_code == 303
    assert replay.headers["location"] != f"/runs/{run.id}"
    assert await count(hub, FlowRun) == 2
    # Replaying a cancelled run "from the failed step" is refused, with the reason shown.
    refused = await web.post(f"/runs/{run.id}/replay", {"mode": "from_failed"})
    assert refused.status_code == 409
    assert "alert" in refused.text or "Conflict" in refused.text


# --- conversations ----------------------------------------------------------------------------


async def test_simulated_inbound_goes_through_the_webhook_and_flows(
    hub: Hub, web: Web, phone: SimPhone
) -> None:
    await join_flow(hub, phone.channel_id)
    resp = await web.post(
        "/conversations/simulate",
        {"channel_id": phone.channel_id, "from": "(555) 000-9999", "text": "join"},
    )
    assert resp.status_code == 303
    async with hub.db.read() as session:
        contact = (
            await session.execute(sa.select(Contact).where(col(Contact.phone) == "+15550009999"))
        ).scalar_one()
    assert resp.headers["location"] == f"/conversations/{contact.id}/{phone.channel_id}"
    await drain(hub)
    thread = await web.get(resp.headers["location"])
    assert thread.status_code == 200
    bubbles = await web.get(f"/conversations/{contact.id}/{phone.channel_id}/messages")
    assert 'data-direction="inbound"' in bubbles.text and ">join<" in bubbles.text
    assert "Welcome! Reply STOP to opt out." in bubbles.text
    assert 'data-status="delivered"' in bubbles.text and "✓✓" in bubbles.text
    threads = await web.get("/conversations/threads")
    assert 'data-thread="+15550009999"' in threads.text


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"from": "abc", "text": "hi"}, "from", ""),  # not a number
        ({"from": "+15550009999", "text": "  "}, "text", "type the message"),
        ({"from": "+15550009999", "text": "x" * 1601}, "text", "at most 1600"),
        (
            {"from": "+15550009999", "text": "hi", "channel_id": "ch_nope"},
            "channel_id",
            "simulator",
        ),
    ],
)
async def test_simulate_rejects_bad_input(
    hub: Hub, web: Web, phone: SimPhone, form: dict[str, str], field: str, message: str
) -> None:
    resp = await web.post("/conversations/simulate", {"channel_id": phone.channel_id, **form})
    assert resp.status_code == 422
    assert error_next_to(resp.text, field) and message in error_next_to(resp.text, field)
    assert await count(hub, Message) == 0


async def test_send_from_the_thread_uses_the_send_pipeline(
    hub: Hub, web: Web, phone: SimPhone
) -> None:
    await phone.says(ANN, "hello")
    async with hub.db.read() as session:
        contact = (await session.execute(sa.select(Contact))).scalar_one()
    url = f"/conversations/{contact.id}/{phone.channel_id}/send"
    resp = await web.post(url, {"message": "Hi Ann!"}, headers={"HX-Request": "true"})
    assert resp.status_code == 200
    assert "smshub:sent" in resp.headers["hx-trigger"]
    async with hub.db.read() as session:
        sent = (
            await session.execute(sa.select(Message).where(col(Message.direction) == "outbound"))
        ).scalar_one()
    assert sent.source == "ui" and sent.body == "Hi Ann!" and sent.channel_id == phone.channel_id
    await drain(hub)
    bubbles = await web.get(f"/conversations/{contact.id}/{phone.channel_id}/messages")
    assert "Hi Ann!" in bubbles.text and ">UI<" in bubbles.text
    # Without htmx the form posts and redirects back to the thread.
    plain = await web.post(url, {"message": "Second"})
    assert plain.status_code == 303


async def test_opted_out_contact_shows_the_409_next_to_the_field(
    hub: Hub, web: Web, phone: SimPhone
) -> None:
    await phone.says(ANN, "STOP")
    await drain(hub)
    async with hub.db.read() as session:
        contact = (await session.execute(sa.select(Contact))).scalar_one()
    before = await count(hub, Message)
    thread = await web.get(f"/conversations/{contact.id}/{phone.channel_id}")
    assert "data-opted-out" in thread.text
    url = f"/conversations/{contact.id}/{phone.channel_id}/send"
    resp = await web.post(url, {"message": "Come back!"}, headers={"HX-Request": "true"})
    assert resp.status_code == 200  # htmx swaps the form with the message in it
    assert "opted out" in error_next_to(resp.text, "message")
    plain = await web.post(url, {"message": "Come back!"})
    assert plain.status_code == 409
    assert "opted out" in error_next_to(plain.text, "message")
    assert await count(hub, Message) == before


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"to": "not a number", "message": "hi"}, "to"),
        ({"to": ANN, "message": ""}, "message"),
        ({"to": ANN, "message": "x" * 1601}, "message"),
        ({"to": ANN, "message": "hi", "channel_id": "ch_nope"}, "channel_id"),
    ],
)
async def test_new_message_rejects_bad_input(
    hub: Hub, web: Web, phone: SimPhone, form: dict[str, str], field: str
) -> None:
    resp = await web.post("/conversations/new", form)
    assert resp.status_code == 422
    assert error_next_to(resp.text, field)
    assert await count(hub, Message) == 0


async def test_new_message_starts_a_thread(hub: Hub, web: Web, phone: SimPhone) -> None:
    resp = await web.post("/conversations/new", {"to": "555-000-1234", "message": "Hello"})
    assert resp.status_code == 303
    assert resp.headers["location"].endswith(f"/{phone.channel_id}")
    assert (await web.get(resp.headers["location"])).status_code == 200


async def test_nul_characters_never_reach_the_database(hub: Hub, web: Web) -> None:
    # PostgreSQL refuses NUL in text: ids with one cannot exist, forms drop them.
    assert (await web.get("/flows/%00")).status_code == 404
    assert (await web.get("/conversations/ct_%00/ch_x")).status_code == 404
    assert (await web.get("/runs?contact=%00")).status_code == 400
    resp = await web.post("/flows", {"name": "a\x00b"})
    assert resp.status_code == 303
    async with hub.db.read() as session:
        assert (await session.execute(sa.select(col(Flow.name)))).scalar_one() == "ab"


async def test_unknown_thread_is_a_404_page(web: Web) -> None:
    resp = await web.get("/conversations/ct_nope/ch_nope")
    assert resp.status_code == 404
    assert "Not found" in resp.text


# --- contacts ---------------------------------------------------------------------------------


async def test_contacts_search_and_opt_out_filter(hub: Hub, web: Web, phone: SimPhone) -> None:
    await phone.says(ANN, "STOP")
    await phone.says("+15550002222", "hello")
    await drain(hub)
    every = await web.get("/contacts")
    assert "+15550001234" in every.text and "+15550002222" in every.text
    assert every.text.count(f'/{phone.channel_id}">') == 2  # each links to its conversation
    out = await web.get("/contacts?status=opted_out")
    assert "+15550001234" in out.text and "+15550002222" not in out.text
    found = await web.get("/contacts?q=2222")
    assert "+15550002222" in found.text and "+15550001234" not in found.text
    bad = await web.get("/contacts?status=maybe")
    assert bad.status_code == 422 and "listed states" in bad.text


# --- channels ---------------------------------------------------------------------------------


async def test_add_a_channel_from_its_schema_form_then_see_urls_secret_and_qr(
    hub: Hub, web: Web
) -> None:
    form = await web.get("/channels/new/twilio")
    assert 'name="cfg.auth_token"' in form.text and 'type="password"' in form.text
    resp = await web.post(
        "/channels/new/twilio",
        {
            "name": "Twilio main",
            "cfg.account_sid": "AC" + "1" * 32,
            "cfg.auth_token": "secret-token",
            "cfg.from_number": "+15559876543",
            "cfg.timeout_s": "20",
        },
    )
    assert resp.status_code == 303, error_next_to(resp.text, "cfg.account_sid") or resp.text
    detail = await web.get(resp.headers["location"])
    assert detail.status_code == 200
    channel_id = resp.headers["location"].split("/")[2].split("?")[0]
    assert f"/webhooks/{channel_id}/incoming" in detail.text
    assert "<svg" in detail.text and "data-qr" in detail.text
    assert "secret-token" not in detail.text  # the stored secret is never echoed
    async with hub.db.read() as session:
        row = await session.get(Channel, channel_id)
    assert row is not None and row.config["timeout_s"] == 20.0
    # The QR code is the channel's webhook URL, nothing more (no secret in it).
    webhook_url = channel_service.webhook_urls(hub, row)["default"]
    assert str(qr_svg(webhook_url)) in detail.text
    assert "auth_token" not in row.config  # stored encrypted, apart


@pytest.mark.parametrize(
    ("connector", "form", "field", "message"),
    [
        ("twilio", {"name": "T"}, "cfg.account_sid", "required"),
        (
            "twilio",
            {"name": "T", "cfg.account_sid": "nope", "cfg.auth_token": "t"},
            "cfg.account_sid",
            "pattern",
        ),
        ("simulator", {"name": "S", "cfg.failure_rate": "lots"}, "cfg.failure_rate", "number"),
        ("simulator", {"name": "S", "cfg.failure_rate": "7"}, "cfg.failure_rate", "less than"),
        ("simulator", {"name": "S", "cfg.sim_slots": "1.5"}, "cfg.sim_slots", "whole number"),
        ("simulator", {"name": ""}, "name", "give the channel a name"),
        ("simulator", {"name": "S", "phone_number": "12"}, "phone_number", ""),
        (
            "smsgate",
            {"name": "G", "cfg.username": "u", "cfg.password": "p", "cfg.mode": "moon"},
            "cfg.mode",
            "listed values",
        ),
        ("simulator", {"name": "S", "auth_mode": "magic"}, "auth_mode", "listed modes"),
    ],
)
async def test_channel_form_rejects_bad_input_next_to_the_field(
    hub: Hub, web: Web, connector: str, form: dict[str, str], field: str, message: str
) -> None:
    resp = await web.post(f"/channels/new/{connector}", form)
    assert resp.status_code == 422
    shown = error_next_to(resp.text, field)
    assert shown and message in shown, resp.text
    assert await count(hub, Channel) == 0


async def test_unknown_connector_is_a_404(web: Web) -> None:
    assert (await web.get("/channels/new/pigeon")).status_code == 404
    assert (await web.post("/channels/new/pigeon", {"name": "x"})).status_code == 404


async def test_edit_simulate_and_delete_a_channel(hub: Hub, web: Web, phone: SimPhone) -> None:
    url = f"/channels/{phone.channel_id}"
    bad = await web.post(f"{url}/edit", {"name": "", "cfg.delivery_delay_s": "-1"})
    assert bad.status_code == 422
    assert error_next_to(bad.text, "name")
    ok = await web.post(
        f"{url}/edit",
        {"name": "Renamed", "enabled": "on", "cfg.delivery_delay_s": "0", "auth_mode": "signature"},
    )
    assert ok.status_code == 303
    async with hub.db.read() as session:
        row = await session.get(Channel, phone.channel_id)
    assert row is not None and row.name == "Renamed" and row.enabled
    sim = await web.post(f"{url}/simulate", {"from": ANN, "text": "hello"})
    assert sim.status_code == 303 and sim.headers["location"].startswith("/conversations/ct_")
    page = await web.get(url)
    assert "sim-device-1" in page.text  # the device appeared with the event
    assert (await web.post(f"{url}/simulate", {"from": "x", "text": "hello"})).status_code == 422
    assert (await web.post(f"{url}/delete")).status_code == 303
    assert (await web.get(url)).status_code == 404


# --- API keys ---------------------------------------------------------------------------------


async def test_api_key_shown_once_works_and_revokes(
    hub: Hub, web: Web, client: httpx.AsyncClient
) -> None:
    bad = await web.post("/settings/api-keys", {"name": " "})
    assert bad.status_code == 422 and error_next_to(bad.text, "name")
    created = await web.post("/settings/api-keys", {"name": "Zapier"})
    assert created.status_code == 200
    key = re.search(r'value="(shk_[^"]+)"', created.text).group(1)  # type: ignore[union-attr]
    listing = await web.get("/settings/api-keys")
    assert key not in listing.text and key[:12] in listing.text
    assert "never" in listing.text
    api = await client.get("/api/v1/messages", headers={"Authorization": f"Bearer {key}"})
    assert api.status_code == 200
    assert "never" not in text_of((await web.get("/settings/api-keys")).text).split("Zapier")[1]
    async with hub.db.read() as session:
        row = (await session.execute(sa.select(ApiKey))).scalar_one()
    assert (await web.post(f"/settings/api-keys/{row.id}/revoke")).status_code == 303
    from hub.services import apikeys

    apikeys._cache.clear()
    # (the client also holds the session cookie: a Bearer header wins over it)
    again = await client.get("/api/v1/messages", headers={"Authorization": f"Bearer {key}"})
    assert again.status_code == 401
    assert (await web.post("/settings/api-keys/key_nope/revoke")).status_code == 404


# --- every page renders -----------------------------------------------------------------------


async def test_every_page_renders_with_data(hub: Hub, web: Web, phone: SimPhone) -> None:
    flow = await join_flow(hub, phone.channel_id)
    await phone.says(ANN, "JOIN")
    await drain(hub)
    await fast_forward(hub)
    (run,), _ = await list_runs(hub, limit=1, cursor=None)
    async with hub.db.read() as session:
        contact = (await session.execute(sa.select(Contact))).scalar_one()
    for path in (
        "/",
        "/flows",
        f"/flows/{flow.id}",
        "/runs",
        f"/runs/{run.id}",
        "/conversations",
        f"/conversations/{contact.id}/{phone.channel_id}",
        "/contacts",
        "/channels",
        "/channels/new",
        f"/channels/{phone.channel_id}",
        "/settings/api-keys",
    ):
        resp = await web.get(path)
        assert resp.status_code == 200, path
        assert 'class="nav"' in resp.text


async def test_simulate_without_a_live_simulator_channel_still_says_why(
    hub: Hub, web: Web, phone: SimPhone
) -> None:
    from hub.services.channels import update_channel

    await update_channel(hub, phone.channel_id, {"enabled": False})  # no form to show it next to
    resp = await web.post("/conversations/simulate", {})
    assert resp.status_code == 422
    assert "alert-error" in resp.text
    assert await count(hub, Message) == 0

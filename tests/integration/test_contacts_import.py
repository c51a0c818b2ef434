"""CSV import and export: a 2,000-row file with 30 bad rows and 10 duplicates, the report
naming each refused row; a re-import changes nothing; opted-out contacts stay opted out."""

from __future__ import annotations

import csv
import io

import httpx

from hub.context import Hub
from hub.models import Contact, Group, GroupMember
from hub.services import contacts_import
from tests.helpers import count

CSV = {"content-type": "text/csv"}


def big_file() -> tuple[str, dict[int, str]]:
    """2,000 data rows: 30 bad (numbers, time zones, opted_out values), 10 duplicates.

    Returns the text and line number -> a word the refusal reason must contain.
    """
    lines = ["phone,name,language,timezone,field:city,group,opted_out"]
    bad: dict[int, str] = {}
    for i in range(1960):
        city = "Oslo" if i % 2 else "Bergen"
        groups = "clinic;vip" if i % 10 == 0 else "clinic"
        lines.append(f"+1555{i:07d},Person {i},en,Europe/Oslo,{city},{groups},")
    for j in range(10):  # bad numbers
        lines.append(f"12{j},Bad {j},,,,,")
        bad[len(lines)] = "phone"
    for j in range(10):  # bad time zones
        lines.append(f"+1556{j:07d},Tz {j},,Mars/Base{j},,,")
        bad[len(lines)] = "time zone"
    for j in range(10):  # bad opted_out values
        lines.append(f"+1557{j:07d},Opt {j},,,,,maybe")
        bad[len(lines)] = "opted_out"
    for j in range(10):  # duplicates of earlier rows, written another way
        lines.append(f"1555{j * 7:07d},Again {j},,,,,")
        bad[len(lines)] = "duplicate of row"
    assert len(lines) == 2001
    return "\n".join(lines) + "\n", bad


async def test_big_import_reports_every_refused_row_and_reimport_changes_nothing(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    text, bad = big_file()
    resp = await client.post(
        "/api/v1/contacts/import", content=text.encode(), headers={**api_headers, **CSV}
    )
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["status"] == "completed" and report["total_rows"] == 2000
    assert (report["created"], report["updated"], report["unchanged"]) == (1960, 0, 0)
    refused = {r["row"]: r for r in report["refused"]}
    assert sorted(refused) == sorted(bad)
    for line, word in bad.items():
        assert word in refused[line]["reason"], refused[line]
    assert refused[max(bad)]["phone"] == "15550000063"
    assert await count(hub, Contact) == 1960
    assert await count(hub, Group) == 2 and await count(hub, GroupMember) == 1960 + 196
    again = await client.post(
        "/api/v1/contacts/import", content=text.encode(), headers={**api_headers, **CSV}
    )
    assert (again.json()["created"], again.json()["updated"]) == (0, 0)
    assert again.json()["unchanged"] == 1960 and len(again.json()["refused"]) == 40
    assert await count(hub, GroupMember) == 1960 + 196
    progress = await client.get(f"/api/v1/contacts/imports/{report['id']}", headers=api_headers)
    assert progress.json()["processed_rows"] == 2000


async def test_opted_out_stays_opted_out(
    client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    made = (
        await client.post("/api/v1/contacts", json={"phone": "+15550001111"}, headers=api_headers)
    ).json()
    await client.patch(
        f"/api/v1/contacts/{made['id']}", json={"opted_out": True}, headers=api_headers
    )
    body = "phone,name,opted_out\n+15550001111,Ann,no\n+15550002222,Bo,yes\n+15550003333,Cy,\n"
    report = (
        await client.post(
            "/api/v1/contacts/import", content=body.encode(), headers={**api_headers, **CSV}
        )
    ).json()
    assert (report["created"], report["updated"], report["refused"]) == (2, 1, [])
    page = (await client.get("/api/v1/contacts", headers=api_headers)).json()["items"]
    state = {c["phone"]: (c["name"], c["opted_out"]) for c in page}
    assert state == {
        "+15550001111": ("Ann", True),  # an import never opts anyone back in
        "+15550002222": ("Bo", True),  # but may opt out
        "+15550003333": ("Cy", False),
    }


async def test_multipart_upload_and_export_round_trip(
    client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    body = (
        "Phone,Name,Timezone,field:plan,group,tags\n"
        '+15550001111,"Lee, Ann",America/New_York,gold,a|b,x;y\n'
        "+15550002222,Bo,,,,\n"
    )
    resp = await client.post(
        "/api/v1/contacts/import",
        files={"file": ("people.csv", body.encode(), "text/csv")},
        headers=api_headers,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["created"] == 2 and resp.json()["filename"] == "people.csv"
    export = await client.get("/api/v1/contacts/export", headers=api_headers)
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = {r["phone"]: r for r in csv.DictReader(io.StringIO(export.text))}
    assert rows["+15550001111"]["name"] == "Lee, Ann"
    assert rows["+15550001111"]["group"] == "a;b" and rows["+15550001111"]["tags"] == "x;y"
    assert rows["+15550001111"]["field:plan"] == "gold"
    back = await client.post(
        "/api/v1/contacts/import", content=export.content, headers={**api_headers, **CSV}
    )
    assert back.json()["unchanged"] == 2 and back.json()["created"] == 0, back.text
    assert back.json()["updated"] == 0


async def test_bad_files_are_4xx(client: httpx.AsyncClient, api_headers: dict[str, str]) -> None:
    async def post(content: bytes, **headers: str) -> httpx.Response:
        return await client.post(
            "/api/v1/contacts/import", content=content, headers={**api_headers, **headers}
        )

    no_phone = await post(b"name\nAnn\n", **CSV)
    assert no_phone.status_code == 422 and "phone" in no_phone.json()["error"]["message"]
    unknown = await post(b"phone,colour\n+15550001111,red\n", **CSV)
    assert unknown.status_code == 422 and "colour" in unknown.json()["error"]["message"]
    assert (await post(b"", **CSV)).status_code == 422
    assert (await post(b"phone\n\xff\xfe\n", **CSV)).status_code == 422
    assert (
        await post(b"phone\n+15550001111\n", **{"content-type": "image/png"})
    ).status_code == 415
    huge = b"phone\n" + b"+15550001111\n" * (contacts_import.MAX_IMPORT_BYTES // 13 + 10_000)
    too_big = await post(huge, **CSV)
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "payload_too_large"


async def test_a_10000_row_import_does_not_hold_up_ingest(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    import asyncio
    import time

    from tests.helpers import SimPhone

    channel = (
        await client.post(
            "/api/v1/channels",
            json={"connector": "simulator", "name": "sim", "webhook_secret": "import-secret"},
            headers=api_headers,
        )
    ).json()
    phone = SimPhone(client, channel["id"], "import-secret", "+15550100000")
    rows = "\n".join(f"+1556{i:07d},Person {i},,,big" for i in range(10_000))
    body = f"phone,name,language,timezone,group\n{rows}\n".encode()
    started = time.monotonic()
    task = asyncio.create_task(
        client.post("/api/v1/contacts/import", content=body, headers={**api_headers, **CSV})
    )
    answered: list[float] = []
    while not task.done() and len(answered) < 20:
        await phone.says("+15559990000", f"hello {len(answered)}")  # asserts a 200
        answered.append(time.monotonic())
        await asyncio.sleep(0.01)
    report = (await task).json()
    finished = time.monotonic()
    assert report["created"] == 10_000 and report["refused"] == [], report
    # SMS kept being stored while the import ran, not after it.
    assert answered and answered[0] < finished - 0.2, (started, answered[:3], finished)
    assert len([t for t in answered if t < finished]) >= 2

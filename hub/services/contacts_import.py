"""CSV import and export of contacts (docs/contacts.md has the format).

An import is checked whole first (header, then every row: number, duplicates, time zone,
values), then written in batches of :data:`BATCH_ROWS` rows, one short write transaction
each, giving the event loop back in between so ingest keeps its turn at the database. The
``contact_imports`` row carries the progress and, at the end, the report. An import only
adds and changes: empty cells leave what is stored, tags and groups are added, never
removed, and ``opted_out`` / ``blocked`` can only opt out / block (never undo it).
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub.context import Hub
from hub.dbutil import dialect_insert
from hub.errors import NotFound, PayloadTooLarge, Unprocessable
from hub.ids import new_id
from hub.models import Contact, ContactImport, Group, GroupMember, utcnow
from hub.phone import InvalidNumber, to_e164
from hub.services.campaigns_schedule import reschedule_after
from hub.services.contacts import timezone_problem

log = logging.getLogger(__name__)

#: Rows written per write transaction.
BATCH_ROWS = 500
#: The largest CSV file accepted (bytes); a bigger body is a 413.
MAX_IMPORT_BYTES = 10 * 1024 * 1024
#: Cells that split a ``group`` or ``tags`` cell into several names.
SEPARATORS = (";", "|")
_PLAIN = ("phone", "name", "language", "timezone", "group", "tags", "opted_out", "blocked")
_YES = {"1", "true", "yes", "y", "x"}
_NO = {"", "0", "false", "no", "n"}
_LIMITS = {"name": 200, "language": 35, "timezone": 64}

# Background imports started from the UI (kept so the tasks are not collected mid-way).
_running: set[asyncio.Task[None]] = set()


@dataclass
class Row:
    """One valid row of the file, checked and normalized."""

    number: int
    phone: str
    values: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    opt_out: bool = False
    block: bool = False


@dataclass
class Parsed:
    """A checked file: the rows to write and the rows refused, with reasons."""

    rows: list[Row]
    refused: list[dict[str, Any]]
    total: int


def decode(data: bytes) -> str:
    """The file as text (UTF-8, with or without a byte-order mark); 422 otherwise."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Unprocessable(
            "the CSV file is not UTF-8 text",
            details=[{"field": "file", "message": f"not UTF-8 at byte {exc.start}"}],
        ) from exc


def _header(cells: list[str]) -> list[str]:
    names: list[str] = []
    for cell in cells:
        raw = cell.strip()
        name = raw.lower()
        if name.startswith("field:") and raw[6:].strip():
            name = "field:" + raw[6:].strip()
        elif name not in _PLAIN:
            raise _bad_header(f"unknown column {raw!r}: use {', '.join(_PLAIN)} or field:<name>")
        if name in names:
            raise _bad_header(f"column {raw!r} appears twice")
        names.append(name)
    if "phone" not in names:
        raise _bad_header("the header row needs a 'phone' column")
    return names


def _bad_header(message: str) -> Unprocessable:
    return Unprocessable(message, code="bad_csv", details=[{"field": "header", "message": message}])


def _split(cell: str) -> list[str]:
    for sep in SEPARATORS[1:]:
        cell = cell.replace(sep, SEPARATORS[0])
    return list(dict.fromkeys(p.strip() for p in cell.split(SEPARATORS[0]) if p.strip()))


def _cell_problem(name: str, value: str) -> str | None:
    if name in _LIMITS and len(value) > _LIMITS[name]:
        return f"{name} is longer than {_LIMITS[name]} characters"
    if name == "timezone" and value:
        return timezone_problem(value)
    if name in ("opted_out", "blocked") and value.lower() not in _YES | _NO:
        return f"{name} must be yes/no, true/false or 1/0, not {value!r}"
    if name.startswith("field:") and len(value) > 1000:
        return f"{name} is longer than 1000 characters"
    if name in ("group", "tags") and any(len(p) > 64 for p in _split(value)):
        return f"a {name} name is longer than 64 characters"
    return None


def _row(number: int, phone: str, cells: dict[str, str]) -> Row:
    row = Row(number=number, phone=phone)
    for name, value in cells.items():
        if name in _LIMITS or name == "name":
            if value:
                row.values[name] = value
        elif name.startswith("field:"):
            if value:
                row.fields[name[6:]] = value
        elif name == "group":
            row.groups = _split(value)
        elif name == "tags":
            row.tags = _split(value)
        elif name == "opted_out":
            row.opt_out = value.lower() in _YES
        elif name == "blocked":
            row.block = value.lower() in _YES
    return row


def parse(text: str, region: str) -> Parsed:
    """Check a whole CSV file; a bad header is a 422, a bad row is refused with a reason."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        names = _header(next(reader))
    except StopIteration:
        raise _bad_header("the file is empty: it needs a header row") from None
    except csv.Error as exc:
        raise _bad_header(f"the header row is not CSV: {exc}") from exc
    parsed = Parsed(rows=[], refused=[], total=0)
    seen: dict[str, int] = {}
    try:
        for cells in reader:
            number = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            parsed.total += 1
            values = {n: (cells[i].strip() if i < len(cells) else "") for i, n in enumerate(names)}
            raw_phone = values.pop("phone")
            try:
                phone = to_e164(raw_phone, region)
            except InvalidNumber as exc:
                parsed.refused.append({"row": number, "phone": raw_phone, "reason": str(exc)})
                continue
            problem = (
                f"duplicate of row {seen[phone]}"
                if phone in seen
                else next(filter(None, (_cell_problem(n, v) for n, v in values.items())), None)
            )
            if problem:
                parsed.refused.append({"row": number, "phone": raw_phone, "reason": problem})
                continue
            seen[phone] = number
            parsed.rows.append(_row(number, phone, values))
    except csv.Error as exc:
        raise Unprocessable(
            f"line {reader.line_num} is not CSV: {exc}",
            code="bad_csv",
            details=[{"field": "file", "message": str(exc)}],
        ) from exc
    return parsed


async def _group_ids(hub: Hub, rows: list[Row]) -> dict[str, str]:
    """Group name -> id for every group the file names, creating missing ones."""
    names = list(dict.fromkeys(g for r in rows for g in r.groups))
    if not names:
        return {}
    async with hub.db.write() as session:
        insert = dialect_insert(session)
        now = utcnow()
        for name in names:
            await session.execute(
                insert(Group.__table__)  # type: ignore[attr-defined]
                .values(id=new_id("grp"), name=name, description="", created_at=now, updated_at=now)
                .on_conflict_do_nothing(index_elements=["name"])
            )
        found = await session.execute(
            sa.select(col(Group.name), col(Group.id)).where(col(Group.name).in_(names))
        )
        return {str(n): str(i) for n, i in found.all()}


def _merge(contact: Contact, row: Row) -> bool:
    """Apply a row to a stored contact; True when anything changed."""
    before = (contact.name, contact.language, contact.timezone, contact.fields, contact.tags)
    for name, value in row.values.items():
        setattr(contact, name, value)
    if row.fields:
        contact.fields = {**contact.fields, **row.fields}
    if row.tags:
        contact.tags = list(dict.fromkeys([*contact.tags, *row.tags]))
    after = (contact.name, contact.language, contact.timezone, contact.fields, contact.tags)
    changed = before != after
    if row.opt_out and not contact.opted_out:
        contact.opted_out, contact.opted_out_at, changed = True, utcnow(), True
    if row.block and not contact.blocked:
        contact.blocked, contact.blocked_at, changed = True, utcnow(), True
    return changed


async def _insert_new(session: AsyncSession, rows: list[Row]) -> set[str]:
    """Insert contacts for numbers not stored yet; the phones actually inserted."""
    if not rows:
        return set()
    now = utcnow()
    values = [
        {
            "id": new_id("ct"),
            "phone": r.phone,
            "name": "",
            "opted_out": False,
            "tags": [],
            "fields": {},
            "created_at": now,
            "updated_at": now,
        }
        for r in rows
    ]
    table = Contact.__table__  # type: ignore[attr-defined]
    stmt = dialect_insert(session)(table).values(values).on_conflict_do_nothing()
    result = await session.execute(stmt.returning(table.c.phone))
    return {str(p) for p in result.scalars()}


async def _write_batch(
    session: AsyncSession, rows: list[Row], group_ids: dict[str, str], job: ContactImport
) -> list[str]:
    """Write one batch of rows; the ids of the contacts it changed."""
    phones = [r.phone for r in rows]
    stored = {
        c.phone: c
        for c in (
            await session.execute(sa.select(Contact).where(col(Contact.phone).in_(phones)))
        ).scalars()
    }
    created = await _insert_new(session, [r for r in rows if r.phone not in stored])
    if created:
        found = await session.execute(sa.select(Contact).where(col(Contact.phone).in_(created)))
        stored.update({c.phone: c for c in found.scalars()})
    ids = [c.id for c in stored.values()]
    members = await session.execute(
        sa.select(col(GroupMember.group_id), col(GroupMember.contact_id)).where(
            col(GroupMember.contact_id).in_(ids)
        )
    )
    have = {(str(g), str(c)) for g, c in members.all()}
    new_members: list[dict[str, Any]] = []
    touched: list[str] = []
    now = utcnow()
    for row in rows:
        contact = stored[row.phone]
        revived = contact.deleted_at is not None
        contact.deleted_at = None
        changed = _merge(contact, row)
        for name in row.groups:
            if (group_ids[name], contact.id) not in have:
                have.add((group_ids[name], contact.id))
                new_members.append(
                    {"group_id": group_ids[name], "contact_id": contact.id, "added_at": now}
                )
                changed = True
        if row.phone in created or revived:
            job.created += 1
        elif changed:
            job.updated += 1
        else:
            job.unchanged += 1
        if changed or revived:
            contact.updated_at = now
            session.add(contact)
            touched.append(contact.id)
    if new_members:
        table = GroupMember.__table__  # type: ignore[attr-defined]
        await session.execute(
            dialect_insert(session)(table).values(new_members).on_conflict_do_nothing()
        )
    return touched


async def _run(hub: Hub, job_id: str, parsed: Parsed) -> ContactImport:
    group_ids = await _group_ids(hub, parsed.rows)
    for start in range(0, len(parsed.rows), BATCH_ROWS):
        batch = parsed.rows[start : start + BATCH_ROWS]
        async with hub.db.write() as session:
            job = await session.get(ContactImport, job_id)
            assert job is not None
            touched = await _write_batch(session, batch, group_ids, job)
            job.processed_rows = min(job.total_rows, job.processed_rows + len(batch))
            session.add(job)
        await reschedule_after(hub, touched)  # new dates, zones, groups: campaign fires
        await asyncio.sleep(0)  # let ingest and the API have the loop and the database
    async with hub.db.write() as session:
        job = await session.get(ContactImport, job_id)
        assert job is not None
        job.status, job.processed_rows, job.finished_at = "completed", job.total_rows, utcnow()
        session.add(job)
        return job


async def _create_job(hub: Hub, parsed: Parsed, filename: str) -> str:
    async with hub.db.write() as session:
        job = ContactImport(
            id=new_id("imp"),
            filename=filename[:200],
            total_rows=parsed.total,
            processed_rows=len(parsed.refused),
            refused=parsed.refused,
        )
        session.add(job)
        return job.id


async def _prepare(hub: Hub, data: bytes, filename: str) -> tuple[str, Parsed]:
    if len(data) > MAX_IMPORT_BYTES:
        raise PayloadTooLarge(f"a CSV import is at most {MAX_IMPORT_BYTES} bytes")
    text = decode(data)
    parsed = await asyncio.to_thread(parse, text, hub.settings.default_region)
    return await _create_job(hub, parsed, filename), parsed


async def import_csv(hub: Hub, data: bytes, filename: str = "") -> ContactImport:
    """Import a CSV file and answer when it is written (the API's synchronous import)."""
    job_id, parsed = await _prepare(hub, data, filename)
    try:
        return await _run(hub, job_id, parsed)
    except Exception as exc:
        await _fail(hub, job_id, exc)
        raise


async def start_import(hub: Hub, data: bytes, filename: str = "") -> str:
    """Check a CSV file, then write it in the background; the import's id (for progress)."""
    job_id, parsed = await _prepare(hub, data, filename)

    async def work() -> None:
        try:
            await _run(hub, job_id, parsed)
        except Exception as exc:
            log.exception("contact import %s failed", job_id)
            await _fail(hub, job_id, exc)

    task = asyncio.create_task(work(), name=f"contact-import-{job_id}")
    _running.add(task)
    task.add_done_callback(_running.discard)
    return job_id


async def _fail(hub: Hub, job_id: str, exc: BaseException) -> None:
    async with hub.db.write() as session:
        job = await session.get(ContactImport, job_id)
        if job is not None:
            job.status, job.error, job.finished_at = "failed", str(exc)[:500], utcnow()
            session.add(job)


async def get_import(hub: Hub, import_id: str) -> ContactImport:
    """An import's progress and report; 404 when unknown."""
    async with hub.db.read() as session:
        job = await session.get(ContactImport, import_id)
    if job is None:
        raise NotFound(f"import {import_id!r} not found", code="import_not_found")
    return job


#: Contacts read per query while exporting.
EXPORT_PAGE = 1000


async def _export_pages(hub: Hub) -> list[tuple[Contact, list[str]]]:
    """Every live contact, oldest first, with the names of its groups."""
    out: list[tuple[Contact, list[str]]] = []
    after = ""
    while True:
        async with hub.db.read() as session:
            page = list(
                (
                    await session.execute(
                        sa.select(Contact)
                        .where(col(Contact.deleted_at).is_(None), col(Contact.id) > after)
                        .order_by(col(Contact.id))
                        .limit(EXPORT_PAGE)
                    )
                ).scalars()
            )
            found = await session.execute(
                sa.select(col(GroupMember.contact_id), col(Group.name))
                .join(Group, col(Group.id) == col(GroupMember.group_id))
                .where(col(GroupMember.contact_id).in_([c.id for c in page]))
                .order_by(col(Group.name))
            )
        groups: dict[str, list[str]] = {}
        for contact_id, name in found.all():
            groups.setdefault(str(contact_id), []).append(str(name))
        out.extend((c, groups.get(c.id, [])) for c in page)
        if len(page) < EXPORT_PAGE:
            return out
        after = page[-1].id


async def export_csv(hub: Hub) -> str:
    """Every contact as CSV, in the import's columns (an import of it changes nothing)."""
    rows = await _export_pages(hub)
    field_names = sorted({name for contact, _ in rows for name in contact.fields})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*_PLAIN, *(f"field:{n}" for n in field_names)])
    for contact, groups in rows:
        writer.writerow(
            [
                contact.phone,
                contact.name,
                contact.language or "",
                contact.timezone or "",
                SEPARATORS[0].join(groups),
                SEPARATORS[0].join(contact.tags),
                "yes" if contact.opted_out else "",
                "yes" if contact.blocked else "",
                *(str(contact.fields.get(n, "")) for n in field_names),
            ]
        )
    return buffer.getvalue()

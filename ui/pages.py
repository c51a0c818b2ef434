"""Rendering pages: the Jinja environment, its filters, form helpers and HTML error pages."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.response import Redirect, Template
from markupsafe import Markup
from pydantic import ValidationError

from hub.errors import ApiError
from hub.services.users import CSRF_FIELD, CsrfFailed
from ui.auth import LoginRequired, SetupRequired, login_url

log = logging.getLogger("smshub.ui")

UI_DIR = Path(__file__).parent
STATIC_DIR = UI_DIR / "static"
TEMPLATE_DIR = UI_DIR / "templates"
#: Longest value read from any one form field (longer input is cut, never a 500).
MAX_FIELD_CHARS = 20_000
#: Sent with every page: no framing (clickjacking), no MIME sniffing, no cross-site referrer.
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


# --- the template environment ---------------------------------------------------------------


@cache
def static_url(path: str) -> str:
    """URL of a static file with a content hash, so browsers never run stale JS."""
    file = STATIC_DIR / path
    try:
        digest = hashlib.sha256(file.read_bytes()).hexdigest()[:10]
    except OSError:
        return f"/static/{path}"
    return f"/static/{path}?v={digest}"


@cache
def import_map(folder: str) -> dict[str, dict[str, str]]:
    """An import map pinning each ES module in ``static/<folder>`` to its content-hashed URL."""
    # The modules import each other by plain path ("./graph.js"); without the map a browser
    # could run a cached old module next to a new one for the whole cache lifetime.
    modules = sorted((STATIC_DIR / folder).glob("*.js"))
    urls = {f"/static/{folder}/{m.name}": static_url(f"{folder}/{m.name}") for m in modules}
    return {"imports": urls}


def _moment(value: datetime | str | None) -> datetime | None:
    # Templates get datetimes and ISO strings (from JSON); a naive one is UTC.
    if value is None or value == "":
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def ago(value: datetime | str | None) -> str:
    """'3 min ago'-style time."""
    moment = _moment(value)
    if moment is None:
        return "never"
    seconds = (datetime.now(UTC) - moment).total_seconds()
    if seconds < 0:
        return "in " + _span(-seconds)
    if seconds < 10:
        return "just now"
    return _span(seconds) + " ago"


def _span(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def when(value: datetime | str | None) -> str:
    """A timestamp as 'YYYY-MM-DD HH:MM:SS UTC'."""
    moment = _moment(value)
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def clock(value: datetime | str | None) -> str:
    """A short time of day (today) or date and time."""
    moment = _moment(value)
    if moment is None:
        return ""
    moment = moment.astimezone(UTC)
    if moment.date() == datetime.now(UTC).date():
        return moment.strftime("%H:%M")
    return moment.strftime("%b %d, %H:%M")


def iso(value: datetime | str | None) -> str:
    """ISO 8601 for <time datetime> (the browser shows it in local time)."""
    moment = _moment(value)
    return "" if moment is None else moment.isoformat()


def pretty_json(value: Any) -> str:
    """Indented JSON for <pre> blocks."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def duration(start: datetime | str | None, end: datetime | str | None) -> str:
    """How long between two times, short."""
    a, b = _moment(start), _moment(end)
    if a is None or b is None:
        return "—"
    seconds = (b - a).total_seconds()
    if seconds < 1:
        return f"{int(seconds * 1000)} ms"
    return _span(seconds)


@cache
def environment() -> Environment:
    """The Jinja environment of the UI (autoescaped)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static"] = static_url
    env.globals["import_map"] = import_map
    env.globals["CSRF_FIELD"] = CSRF_FIELD
    env.filters["ago"] = ago
    env.filters["when"] = when
    env.filters["clock"] = clock
    env.filters["iso"] = iso
    env.filters["pretty_json"] = pretty_json
    env.globals["duration"] = duration
    return env


# --- rendering --------------------------------------------------------------------------------


def render(
    request: Request[Any, Any, Any],
    template: str,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Template:
    """A page, with the signed-in user and the CSRF token in its context."""
    user = getattr(request.state, "user", None)
    base = {
        "user": user,
        "page_csrf": user.csrf_token if user is not None else "",
        "path": request.url.path,
    }
    return Template(
        template_name=template,
        context={**base, **context},
        status_code=status_code,
        headers={**SECURITY_HEADERS, **(headers or {})},
    )


def is_htmx(request: Request[Any, Any, Any]) -> bool:
    """True for requests htmx makes (they want a fragment, not a page)."""
    return request.headers.get("hx-request") == "true"


def see_other(url: str) -> Redirect:
    """303 after a successful form post."""
    return Redirect(url, status_code=303)


# --- forms ------------------------------------------------------------------------------------


@dataclass
class FormErrors:
    """Messages by field name, plus one for the whole form."""

    fields: dict[str, str] = field(default_factory=dict)
    message: str = ""

    def __bool__(self) -> bool:
        return bool(self.fields or self.message)

    def add(self, name: str, message: str) -> None:
        """Record the first message for a field."""
        self.fields.setdefault(name, message)

    def required(self, form: Mapping[str, str], name: str, missing: str, *, most: int = 200) -> str:
        """The form's field ``name``, trimmed; a message when it is blank or too long."""
        value = form.get(name, "").strip()
        if not value:
            self.add(name, missing)
        elif len(value) > most:
            self.add(name, f"use at most {most} characters")
        return value

    def merge(self, other: FormErrors) -> None:
        """Add another check's messages; where both have one, this one's stays."""
        for name, message in other.fields.items():
            self.add(name, message)
        self.message = self.message or other.message

    def shown_on(self, names: Iterable[str]) -> FormErrors:
        """Messages of fields the form does not have move to the form's own message, so
        none is lost."""
        keep = set(names)
        stray = [f"{k}: {v}" for k, v in self.fields.items() if k not in keep]
        self.fields = {k: v for k, v in self.fields.items() if k in keep}
        if stray:
            self.message = "; ".join(filter(None, [self.message, *stray]))
        return self

    @classmethod
    def from_api_error(cls, exc: ApiError, prefix: str = "") -> FormErrors:
        """The field messages a service error carries in its details."""
        errors = cls()
        details = exc.details if isinstance(exc.details, list) else []
        for item in details:
            if isinstance(item, Mapping) and item.get("field"):
                errors.add(prefix + str(item["field"]), str(item.get("message") or exc.message))
        if not errors.fields:
            errors.message = exc.message
        return errors

    @classmethod
    def from_validation(cls, exc: ValidationError, prefix: str = "") -> FormErrors:
        """Field messages of a pydantic validation error."""
        errors = cls()
        for item in exc.errors():
            name = ".".join(str(p) for p in item.get("loc", ()))
            message = str(item.get("msg", "invalid value")).removeprefix("Value error, ")
            if name:
                errors.add(prefix + name, message)
            else:
                errors.message = message
        return errors


async def read_form(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The posted form as plain strings (first value of each field, length-capped).

    Any body that is not a readable form counts as an empty form: the handler then
    answers with its ordinary "required" messages rather than an error page."""
    try:
        form = await request.form()
    except Exception:
        return {}
    values: dict[str, str] = {}
    for key in form:
        value = form.get(key)
        if isinstance(value, str):
            # NUL is never meaningful in a form, and PostgreSQL refuses it in text.
            values[str(key)[:200]] = value[:MAX_FIELD_CHARS].replace("\x00", "")
    return values


async def read_form_lists(request: Request[Any, Any, Any]) -> dict[str, list[str]]:
    """Every value of every field (check boxes with one name)."""
    try:
        form = await request.form()
    except Exception:
        return {}
    return {
        str(key)[:200]: [
            v[:MAX_FIELD_CHARS].replace("\x00", "") for v in form.getall(key) if isinstance(v, str)
        ]
        for key in form
    }


# --- ids and queries -------------------------------------------------------------------------

#: What our ids (and connector names) look like; anything else in a path cannot exist.
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")


async def reject_odd_input(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """Before any page handler: a path id that cannot be one of ours is a 404, a NUL in the
    query a 400 (PostgreSQL refuses NUL in text; no id or search contains one)."""
    for value in request.path_params.values():
        if isinstance(value, str) and not _ID.match(value):
            return _error_page(request, 404, "Not found", "There is nothing at this address.")
    if "\x00" in request.url.query or "%00" in request.url.query:
        return _error_page(request, 400, "Bad request", "The address contains a NUL character.")
    return None


# --- errors as pages --------------------------------------------------------------------------


def _error_page(
    request: Request[Any, Any, Any], status: int, title: str, message: str
) -> Response[Any]:
    if is_htmx(request):
        return Response(
            Markup('<div class="alert alert-error">{}</div>').format(message),
            status_code=status,
            media_type="text/html",
            headers={"HX-Reswap": "none", "HX-Trigger": json.dumps({"smshub:error": message})},
        )
    return render(request, "error.html", status_code=status, title=title, message=message)


def _login_required(request: Request[Any, Any, Any], _: LoginRequired) -> Response[Any]:
    if is_htmx(request):
        return Response("", status_code=401, headers={"HX-Redirect": login_url(request)})
    if request.method == "GET":
        return Redirect(login_url(request), status_code=303)
    return _error_page(request, 401, "Sign in first", "You are signed out. Sign in and try again.")


def _setup_required(request: Request[Any, Any, Any], _: SetupRequired) -> Response[Any]:
    if is_htmx(request):
        return Response("", status_code=401, headers={"HX-Redirect": "/setup"})
    if request.method == "GET":
        return Redirect("/setup", status_code=303)
    return _error_page(request, 401, "Set up smshub", "Create the admin account first.")


def _csrf(request: Request[Any, Any, Any], exc: CsrfFailed) -> Response[Any]:
    return _error_page(request, 403, "Form expired", exc.message)


def _api_error(request: Request[Any, Any, Any], exc: ApiError) -> Response[Any]:
    titles = {404: "Not found", 409: "Conflict", 422: "Check your input", 429: "Slow down"}
    return _error_page(request, exc.status_code, titles.get(exc.status_code, "Error"), exc.message)


def _validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    return _error_page(request, 400, "Bad request", "The request did not make sense: " + exc.detail)


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    return _error_page(request, exc.status_code, "Error", str(exc.detail))


def _internal(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error_page(
        request, 500, "Something went wrong", "smshub hit an internal error; it is in the log."
    )


exception_handlers: dict[Any, Any] = {
    LoginRequired: _login_required,
    SetupRequired: _setup_required,
    CsrfFailed: _csrf,
    ApiError: _api_error,
    ValidationException: _validation,
    HTTPException: _http,
    Exception: _internal,
}


def json_error(status: int, code: str, message: str, details: Any = None) -> Response[Any]:
    """The API's error shape, for the UI's few JSON endpoints."""
    return Response(
        {"error": {"code": code, "message": message, "details": details}},
        status_code=status,
        media_type="application/json",
    )

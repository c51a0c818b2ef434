"""Local stand-ins for the providers' send APIs, served over real HTTP on 127.0.0.1.

Each :class:`FakeProvider` answers the way its provider documents (status codes, answer
bodies, credential and field checks), records every request byte for byte, and can be
told to misbehave: answer with any status, or hang until closed.

    async with FakeProvider("twilio", account_sid=SID, auth_token="tok") as fake:
        config = {..., "base_url": fake.base_url}
        ...
        assert fake.requests[0].path == f"/2010-04-01/Accounts/{SID}/Messages.json"
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

from aiohttp import web

from tests.fakes.server import LocalServer

Provider = Literal["mysmsgate", "smsgate", "twilio", "vonage"]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the provider received it."""

    method: str
    path: str
    query: dict[str, str]
    #: Header names lower-cased.
    headers: dict[str, str]
    body: bytes

    @classmethod
    async def read(cls, request: web.Request) -> RecordedRequest:
        """Record an incoming request (headers lower-cased)."""
        return cls(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={name.lower(): value for name, value in request.headers.items()},
            body=await request.read(),
        )

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        """The body parsed as a form (blank values kept)."""
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))

    def basic_auth(self) -> tuple[str, str] | None:
        """The (user, password) of an ``Authorization: Basic`` header."""
        scheme, _, value = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        user, _, password = base64.b64decode(value).decode().partition(":")
        return user, password


class FakeProvider(LocalServer):
    """One provider's send API on a random local port."""

    def __init__(self, provider: Provider, **credentials: str) -> None:
        super().__init__()
        self.provider = provider
        self.credentials = credentials
        self.requests: list[RecordedRequest] = []
        #: MySMSGate names the new SMS's id "id" or "sms_id" depending on the endpoint version.
        self.mysmsgate_id_field = "id"
        self._override: tuple[int, bytes, str] | None = None
        self._hanging = False
        #: Seconds the provider thinks before answering a request (a slow gateway).
        self.delay_s = 0.0
        self._ids = itertools.count(1)
        self._seen_ids: set[str] = set()

    # --- Lifecycle ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The provider's API root, to put in a channel's config."""
        return f"http://127.0.0.1:{self.port}"

    # --- Misbehaving ------------------------------------------------------------------------

    def fail_with(self, status: int, body: Any = None) -> None:
        """Answer every following request with ``status`` (and ``body`` as JSON, or raw bytes)."""
        if isinstance(body, bytes):
            self._override = (status, body, "text/plain")
        else:
            default = {"error": f"fake {self.provider} says {status}"}
            self._override = (status, json.dumps(body or default).encode(), "application/json")

    def hang(self) -> None:
        """Never answer following requests (until closed)."""
        self._hanging = True

    def resume(self) -> None:
        """Answer normally again (requests already hanging stay hung until closed)."""
        self._hanging = False

    # --- Serving ----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        recorded = await RecordedRequest.read(request)
        self.requests.append(recorded)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self._hanging:
            await self._release.wait()
            return web.Response(status=503)
        if self._override is not None:
            status, raw, content_type = self._override
            return web.Response(status=status, body=raw, content_type=content_type)
        handler = {
            "mysmsgate": self._mysmsgate,
            "smsgate": self._smsgate,
            "twilio": self._twilio,
            "vonage": self._vonage,
        }[self.provider]
        return handler(recorded)

    def _mysmsgate(self, req: RecordedRequest) -> web.Response:
        if req.path != "/api/v1/send":
            return web.json_response({"error": "Not found"}, status=404)
        if req.method != "POST":
            return web.json_response({"error": "Method not allowed"}, status=405)
        if req.headers.get("authorization") != f"Bearer {self.credentials['api_key']}":
            return web.json_response({"success": False, "error": "Invalid API key"}, status=401)
        data = _json_or_none(req.body)
        if not isinstance(data, dict) or not data.get("to") or not data.get("message"):
            return web.json_response({"error": "to and message are required"}, status=400)
        sms_id = f"sms_{next(self._ids)}"
        return web.json_response({self.mysmsgate_id_field: sms_id, "status": "pending"}, status=202)

    def _smsgate(self, req: RecordedRequest) -> web.Response:
        if req.path not in ("/message", "/3rdparty/v1/messages"):
            return web.json_response({"message": "Not Found"}, status=404)
        expected = (self.credentials["username"], self.credentials["password"])
        if req.basic_auth() != expected:
            return web.json_response({"message": "Unauthorized"}, status=401)
        data = _json_or_none(req.body)
        text = data.get("textMessage", {}).get("text") if isinstance(data, dict) else None
        numbers = data.get("phoneNumbers") if isinstance(data, dict) else None
        if not text or not isinstance(numbers, list) or not numbers:
            return web.json_response(
                {"message": "invalid request: textMessage.text and phoneNumbers"}, status=400
            )
        message_id = str(data.get("id") or f"gen{next(self._ids)}")
        if message_id in self._seen_ids:
            return web.json_response({"message": "message with such ID already exists"}, status=409)
        self._seen_ids.add(message_id)
        recipients = [{"phoneNumber": n, "state": "Pending", "error": None} for n in numbers]
        answer = {
            "id": message_id,
            "state": "Pending",
            "recipients": recipients,
            "isHashed": False,
            "isEncrypted": False,
        }
        return web.json_response(answer, status=202)

    def _twilio(self, req: RecordedRequest) -> web.Response:
        sid, token = self.credentials["account_sid"], self.credentials["auth_token"]
        if req.path != f"/2010-04-01/Accounts/{sid}/Messages.json" or req.basic_auth() != (
            sid,
            token,
        ):
            return web.json_response(
                {
                    "code": 20003,
                    "message": "Authenticate",
                    "more_info": "https://www.twilio.com/docs/errors/20003",
                    "status": 401,
                },
                status=401,
            )
        form = req.form()
        if not form.get("To"):
            return _twilio_error(21604, "A 'To' phone number is required.")
        if not form.get("Body"):
            return _twilio_error(21602, "Message body is required.")
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return _twilio_error(21603, "A 'From' or 'MessagingServiceSid' parameter is required.")
        message_sid = f"SM{next(self._ids):032x}"
        answer = {
            "sid": message_sid,
            "account_sid": sid,
            "status": "queued" if form.get("From") else "accepted",
            "to": form["To"],
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form["Body"],
            "num_segments": "1",
            "error_code": None,
            "error_message": None,
            "uri": f"/2010-04-01/Accounts/{sid}/Messages/{message_sid}.json",
        }
        return web.json_response(answer, status=201)

    def _vonage(self, req: RecordedRequest) -> web.Response:
        if req.path != "/sms/json":
            return web.json_response({"type": "NOT_FOUND"}, status=404)
        params = (
            _json_or_none(req.body) if "json" in req.headers.get("content-type", "") else req.form()
        )
        if not isinstance(params, dict):
            params = {}
        # Vonage answers 200 even when it refuses: the verdict is each message's status.
        if (params.get("api_key"), params.get("api_secret")) != (
            self.credentials["api_key"],
            self.credentials["api_secret"],
        ):
            return _vonage_answer({"status": "4", "error-text": "Bad Credentials"})
        for name in ("from", "to", "text"):
            if not params.get(name):
                return _vonage_answer({"status": "2", "error-text": f"Missing {name} param"})
        part = {
            "to": params["to"],
            "message-id": f"0A{next(self._ids):014X}",
            "status": "0",
            "remaining-balance": "3.14159265",
            "message-price": "0.03330000",
            "network": "12345",
        }
        if params.get("client-ref"):
            part["client-ref"] = params["client-ref"]
        return _vonage_answer(part)


def vonage_answer(*parts: dict[str, Any]) -> dict[str, Any]:
    """A Vonage /sms/json answer body with these message parts."""
    return {"message-count": str(len(parts)), "messages": list(parts)}


def _vonage_answer(part: dict[str, Any]) -> web.Response:
    return web.json_response(vonage_answer(part))


def _twilio_error(code: int, message: str) -> web.Response:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": 400,
    }
    return web.json_response(body, status=400)


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None

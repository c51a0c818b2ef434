"""A local stand-in for SMS Gateway for Android's webhooks API, served on 127.0.0.1, and
the phone that then calls the registered webhooks.

It answers as the app documents: ``GET /webhooks`` lists registrations, ``POST /webhooks
{id?, url, event}`` registers one event (an ``id`` that exists is replaced, none gets a
generated one; a URL that is not https is refused, as the release build does), ``DELETE
/webhooks/{id}``; Basic auth with the app's username and password (401 otherwise). Local
mode serves ``/webhooks``, cloud and private ``/3rdparty/v1/webhooks``. Every request is
recorded. :meth:`FakeSmsGateApi.deliveries` builds what the phone would post for an event:
one signed request per registration of that event, with the app's signing key.

    async with FakeSmsGateApi(username="sms", password="pw") as phone:
        config = {"mode": "local", "base_url": phone.base_url, ...}
        ...
        assert [r.method for r in phone.requests] == ["GET", "POST", ...]
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from aiohttp import web

from tests.fakes.providers import RecordedRequest
from tests.fakes.server import LocalServer

#: Every event the app can call a webhook for.
APP_EVENTS = frozenset(
    {
        "sms:received",
        "sms:sent",
        "sms:delivered",
        "sms:failed",
        "sms:data-received",
        "mms:received",
        "system:ping",
    }
)


@dataclass(frozen=True)
class Delivery:
    """One webhook request the phone makes."""

    url: str
    headers: dict[str, str]
    body: bytes


class FakeSmsGateApi(LocalServer):
    """The app's webhooks API (local server or cloud) on a random local port."""

    def __init__(
        self,
        *,
        username: str,
        password: str,
        mode: Literal["local", "cloud"] = "local",
        device_id: str = "ffffffffceb0b1db0000018e937c815b",
    ) -> None:
        super().__init__()
        self.username = username
        self.password = password
        self.prefix = "/webhooks" if mode == "local" else "/3rdparty/v1/webhooks"
        self.device_id = device_id
        #: The app's Settings → Webhooks → Signing Key.
        self.signing_key = "key-the-app-generated"
        self.requests: list[RecordedRequest] = []
        #: Registrations by id, in the order made.
        self.webhooks: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._hanging = False

    @property
    def base_url(self) -> str:
        """What goes into the channel's ``base_url``."""
        return f"http://127.0.0.1:{self.port}"

    def hang(self) -> None:
        """Never answer (until closed): a phone that went away mid-request."""
        self._hanging = True

    # --- the phone calling the hub ---------------------------------------------------------

    def deliveries(self, event: str, payload: dict[str, Any], at: datetime) -> list[Delivery]:
        """What the phone posts for ``event``: one signed request per registration of it."""
        out = []
        for hook in self.webhooks.values():
            if hook["event"] != event:
                continue
            envelope = {
                "deviceId": self.device_id,
                "event": event,
                "id": f"evt{next(self._ids)}",
                "payload": payload,
                "webhookId": hook["id"],
            }
            body = json.dumps(envelope).encode()
            timestamp = str(int(at.timestamp()))
            signature = hmac.new(
                self.signing_key.encode(), body + timestamp.encode(), hashlib.sha256
            ).hexdigest()
            headers = {
                "content-type": "application/json",
                "x-signature": signature,
                "x-timestamp": timestamp,
            }
            out.append(Delivery(hook["url"], headers, body))
        return out

    # --- serving ---------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        recorded = await RecordedRequest.read(request)
        self.requests.append(recorded)
        if self._hanging:
            await self._release.wait()
            return web.Response(status=503)
        if recorded.basic_auth() != (self.username, self.password):
            return web.json_response({"message": "Unauthorized"}, status=401)
        if recorded.path == self.prefix:
            if recorded.method == "GET":
                return web.json_response(list(self.webhooks.values()))
            if recorded.method == "POST":
                return self._register(recorded)
        hook_id = recorded.path.removeprefix(self.prefix + "/")
        if recorded.method == "DELETE" and recorded.path.startswith(self.prefix + "/") and hook_id:
            self.webhooks.pop(hook_id, None)
            return web.Response(status=204)
        return web.json_response({"message": "Not Found"}, status=404)

    def _register(self, req: RecordedRequest) -> web.Response:
        try:
            data = req.json()
        except ValueError:
            data = None
        if not isinstance(data, dict) or not data.get("url") or not data.get("event"):
            return web.json_response({"message": "url and event are required"}, status=400)
        if data["event"] not in APP_EVENTS:
            return web.json_response({"message": f"invalid event {data['event']}"}, status=400)
        if not str(data["url"]).startswith(("https://", "http://127.0.0.1")):
            return web.json_response({"message": "url must use https"}, status=400)
        hook_id = str(data.get("id") or f"gen{next(self._ids)}")
        hook = {"id": hook_id, "url": data["url"], "event": data["event"]}
        self.webhooks.pop(hook_id, None)
        self.webhooks[hook_id] = hook
        return web.json_response(hook, status=201)

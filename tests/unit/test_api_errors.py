"""The API's error handlers on a small Litestar app: a write that kept losing races is a
503 the client may retry (not a 500), a database that is away a 503, anything else a 500 —
each in the one error shape."""

from __future__ import annotations

import asyncpg
import pytest
import sqlalchemy.exc
from litestar import Litestar, get
from litestar.testing import TestClient

from hub.api.errors import exception_handlers


def _raising(exc: Exception) -> Litestar:
    @get("/boom", sync_to_thread=False)
    def boom() -> None:
        raise exc

    return Litestar([boom], exception_handlers=exception_handlers)


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.DeadlockDetectedError("deadlock detected"),
        asyncpg.SerializationError("could not serialize access"),
        sqlalchemy.exc.DBAPIError("UPDATE", {}, asyncpg.DeadlockDetectedError("deadlock")),
    ],
    ids=["deadlock", "serialization", "wrapped"],
)
def test_a_lost_race_is_a_503_to_retry(exc: Exception) -> None:
    with TestClient(_raising(exc)) as client:
        resp = client.get("/boom")
    assert resp.status_code == 503
    assert resp.headers["retry-after"] == "1"
    assert resp.json()["error"]["code"] == "write_contention"


def test_a_database_away_is_503_and_a_bug_500() -> None:
    with TestClient(_raising(ConnectionRefusedError("refused"))) as client:
        away = client.get("/boom")
    with TestClient(_raising(RuntimeError("bug"))) as client:
        bug = client.get("/boom")
    assert away.status_code == 503 and away.json()["error"]["code"] == "database_unavailable"
    assert bug.status_code == 500 and bug.json()["error"] == {
        "code": "internal_error",
        "message": "internal server error",
        "details": None,
    }

"""Scenario (a), the ceiling: a bare Litestar handler that parses the JSON body and answers 200.

Served by ``bench/run.py`` under the same uvicorn as ``smshub serve`` (one worker, the
hub's options: ``log_level="warning"``, no access log, uvicorn's default loop and HTTP
implementation). The route and the answer are the hub's webhook route and answer.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, post


@post("/webhooks/{channel_id:str}/{kind:str}", status_code=200)
async def webhook(channel_id: str, kind: str, data: dict[str, Any]) -> dict[str, bool]:
    """Parse the body (Litestar's msgspec decoder) and acknowledge it."""
    return {"ok": bool(data)}


app = Litestar([webhook])


def main() -> None:
    """Serve it the way ``smshub serve`` serves the hub: ``python -m bench.bare_app PORT``."""
    import sys

    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

"""Log lines: the JSON and text formats, the ids of the context, and a real command whose
every log line (alembic's included) is JSON under SMSHUB_LOG_FORMAT=json."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from hub.logs import JsonFormatter, TextFormatter, job_ids, log_context, logging_config
from hub.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _record(msg: str = "sent %s", *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("smshub.test", logging.WARNING, __file__, 1, msg, args, exc_info)


def test_json_lines_carry_the_ids_of_the_context_and_the_exception() -> None:
    with log_context(run_id="run_1", message_id="msg_2"), log_context(delivery_id=None):
        line = json.loads(JsonFormatter().format(_record("sent %s", "msg_2", exc=True)))
    assert line["level"] == "WARNING" and line["logger"] == "smshub.test"
    assert line["msg"] == "sent msg_2"
    assert line["run_id"] == "run_1" and line["message_id"] == "msg_2"
    assert "delivery_id" not in line  # None: not known, not written
    assert line["exc"].startswith("Traceback") and "ValueError: boom" in line["exc"]
    assert line["ts"].startswith("20") and "T" in line["ts"]
    # Outside the block the ids are gone.
    assert "run_id" not in json.loads(JsonFormatter().format(_record()))


def test_text_lines_append_the_ids() -> None:
    with log_context(event_id="evt_9"):
        text = TextFormatter().format(_record("hello"))
    assert text.endswith("WARNING smshub.test: hello event_id=evt_9")
    assert TextFormatter().format(_record("hello")).endswith("smshub.test: hello")


async def test_ids_follow_into_tasks_and_do_not_leak_between_them() -> None:
    async def line_of(run_id: str) -> dict[str, str]:
        with log_context(run_id=run_id):
            await asyncio.sleep(0)
            inner = asyncio.create_task(asyncio.sleep(0, JsonFormatter().format(_record())))
            result: dict[str, str] = json.loads(await inner)
            return result

    first, second = await asyncio.gather(line_of("run_a"), line_of("run_b"))
    assert (first["run_id"], second["run_id"]) == ("run_a", "run_b")


def test_a_job_logs_its_name_and_the_ids_among_its_arguments() -> None:
    ids = job_ids("send_message", {"message_id": "msg_1", "attempt": 2, "run_id": None})
    assert ids == {"job": "send_message", "message_id": "msg_1"}


def test_uvicorn_arq_and_alembic_log_through_the_one_handler() -> None:
    config = logging_config(Settings(log_format="json"))
    assert config["formatters"]["smshub"]["()"] == "hub.logs.JsonFormatter"
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "arq", "alembic"):
        assert config["loggers"][name] == {"handlers": [], "propagate": True}


def test_db_upgrade_logs_nothing_but_json_lines(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SMSHUB_VAR_DIR": str(tmp_path / "var"),
        "SMSHUB_DATABASE_URL": "",
        "SMSHUB_LOG_FORMAT": "json",
        "SMSHUB_LOG_LEVEL": "INFO",
    }
    done = subprocess.run(
        [sys.executable, "-m", "hub.cli", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "database at revision head\n"  # the command's answer, not a log
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert any(line["logger"].startswith("alembic") for line in lines)
    assert any("Running upgrade" in line["msg"] for line in lines)
    for line in lines:
        assert {"ts", "level", "logger", "msg"} <= line.keys()

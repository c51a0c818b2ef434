"""One hub under test, set up only through its documented CLI and HTTP API.

``smshub apikey create --name bench`` (which also migrates the fresh database) prints the
key; ``smshub serve`` runs on a free port; ``POST /api/v1/channels`` creates a MySMSGate
channel in URL-token mode whose ``base_url`` is the fake gateway; ``POST
/api/v1/flows/import?publish=true`` publishes ``bench/flow.json``; in arq mode, ``smshub
worker`` processes start once the flow is live. The environment is the caller's without
any ``SMSHUB_*`` variable, plus what the scenario sets. The hub's code is the working
tree's, or (``--rev``) a tree exported from git put first on ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench import procs
from bench.services import free_port

ROOT = Path(__file__).resolve().parents[1]
FLOW = Path(__file__).with_name("flow.json")
#: High enough that the per-phone pacing (20 parts a minute by default) never holds a reply.
DEVICE_RATE_LIMIT = "1000000"


def smshub_argv(*args: str) -> list[str]:
    """``smshub ARGS`` run by this interpreter (``python -m hub.cli``, as the script does)."""
    return [sys.executable, "-m", "hub.cli", *args]


def export_rev(rev: str, into: Path) -> tuple[Path, str]:
    """``git archive REV`` unpacked under ``into``; the directory and the short commit."""
    short = subprocess.run(
        ["git", "rev-parse", "--short", f"{rev}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    target = into / f"smshub-{short}"
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", short], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target, short


def http_json(method: str, url: str, body: Any = None, key: str = "", timeout: float = 30) -> Any:
    """One JSON request with urllib; the decoded answer, or RuntimeError with the body."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{method} {url}: {exc.code} {exc.read()[:500]!r}") from exc


def reachable(url: str) -> bool:
    """True when ``url`` answers below 500."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status) < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


@dataclass
class HubStack:
    """``smshub serve`` (plus arq workers) on a fresh database, with a channel and maybe a flow."""

    workdir: Path
    gateway_url: str = "http://127.0.0.1:9"  # (b) sends nothing
    gateway_key: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    hook_url: str | None = None
    database_url: str = ""
    redis_url: str = ""
    worker_processes: int = 0
    port: int = field(default_factory=free_port)
    startup_s: float = 0.0
    webhook_url: str = ""
    api_key: str = ""
    children: list[procs.Child] = field(default_factory=list)
    code_dir: Path = ROOT

    @property
    def base(self) -> str:
        """The hub's root URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pids(self) -> list[int]:
        """Process ids of serve and the workers."""
        return [child.pid for child in self.children]

    def env(self) -> dict[str, str]:
        """The environment every hub process of this stack gets."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMSHUB_")}
        if self.code_dir != ROOT:  # --rev: that tree's packages before the editable install
            env["PYTHONPATH"] = os.pathsep.join([str(self.code_dir), env.get("PYTHONPATH", "")])
        env.update(
            SMSHUB_VAR_DIR=str(self.workdir / "var"),
            SMSHUB_PORT=str(self.port),
            SMSHUB_PUBLIC_URL=self.base,
            SMSHUB_ALLOW_PRIVATE_DESTINATIONS="1",
            SMSHUB_DEVICE_RATE_LIMIT_PER_MIN=DEVICE_RATE_LIMIT,
            # every reply leaves the one bench phone: no human-like pause between two sends
            SMSHUB_SEND_SPACING_MAX_S="0",
            # make run's first start also creates a simulator channel and publishes the JOIN
            # example on it; (b) must have no flow and (c) only the bench flow.
            SMSHUB_BOOTSTRAP_SIMULATOR="false",
        )
        if self.database_url:
            env["SMSHUB_DATABASE_URL"] = self.database_url
        if self.redis_url:
            env["SMSHUB_REDIS_URL"] = self.redis_url
        # Experiments: BENCH_HUB_ENV="SMSHUB_WORKERS=64 SMSHUB_SQLITE_SYNCHRONOUS=NORMAL".
        for pair in os.environ.get("BENCH_HUB_ENV", "").split():
            name, _, value = pair.partition("=")
            env[name] = value
        return env

    def start(self) -> HubStack:
        """Create the key, start serve, create the channel (and flow), start the workers."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.api_key = self._create_api_key()
        started = time.monotonic()
        serve = procs.spawn(
            "smshub serve",
            smshub_argv("serve"),
            env=self.env(),
            cwd=self.code_dir,
            log=self._log("serve"),
        )
        self.children.append(serve)
        if not procs.wait_until(lambda: reachable(f"{self.base}/readyz") or not serve.alive(), 90):
            raise RuntimeError(f"smshub serve did not become ready:\n{serve.log_tail()}")
        if not serve.alive():
            raise RuntimeError(f"smshub serve exited:\n{serve.log_tail()}")
        self.startup_s = time.monotonic() - started
        self.webhook_url = self._create_channel()
        if self.hook_url:
            self._import_flow()
        for i in range(self.worker_processes):
            self.children.append(
                procs.spawn(
                    f"smshub worker {i + 1}",
                    smshub_argv("worker"),
                    env=self.env(),
                    cwd=self.code_dir,
                    log=self._log(f"worker{i + 1}"),
                )
            )
        return self

    def _log(self, name: str) -> Path:
        """Where one process's output goes."""
        return self.workdir / f"{name}.log"

    def _create_api_key(self) -> str:
        """``smshub apikey create --name bench``; the key it prints."""
        out = subprocess.run(
            smshub_argv("apikey", "create", "--name", "bench"),
            env=self.env(),
            cwd=self.code_dir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if out.returncode != 0 or not out.stdout.strip():
            raise RuntimeError(f"smshub apikey create failed: {out.stderr[-2000:]}")
        return out.stdout.split()[0]

    def _create_channel(self) -> str:
        """A MySMSGate channel in URL-token mode; its incoming-SMS webhook URL."""
        config = {"base_url": self.gateway_url, "api_key": self.gateway_key, "signature_header": ""}
        body = {"connector": "mysmsgate", "name": "bench phone", "auth_mode": "token"}
        answer = http_json(
            "POST", f"{self.base}/api/v1/channels", {**body, "config": config}, self.api_key
        )
        return str(answer["webhook_urls"]["incoming"])

    def _import_flow(self) -> None:
        """Publish ``bench/flow.json`` with the fake hook's URL."""
        document = json.loads(FLOW.read_text().replace("HOOK_URL", self.hook_url or ""))
        answer = http_json(
            "POST", f"{self.base}/api/v1/flows/import?publish=true", document, self.api_key
        )
        if not answer.get("published_version") or answer.get("problems"):
            raise RuntimeError(f"the bench flow was not published: {answer}")

    def check_alive(self) -> None:
        """RuntimeError with the log tail if a hub process has exited."""
        for child in self.children:
            if not child.alive():
                raise RuntimeError(f"{child.name} exited:\n{child.log_tail()}")

    def inbound_senders(self) -> Counter[str]:
        """Every stored inbound message's sender, counted (GET /api/v1/messages, paged)."""
        senders: Counter[str] = Counter()
        cursor = ""
        while True:
            page = http_json(
                "GET",
                f"{self.base}/api/v1/messages?direction=inbound&limit=200{cursor}",
                key=self.api_key,
                timeout=120,
            )
            senders.update(str(item["from"]) for item in page["items"])
            if not page.get("next_cursor"):
                return senders
            cursor = f"&cursor={quote(str(page['next_cursor']))}"

    def stop(self) -> None:
        """Stop the workers, then serve."""
        for child in reversed(self.children):
            child.stop()
        self.children.clear()

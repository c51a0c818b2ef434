"""The driver's side of ``bench/fakes.py``: start the fake gateway and hook, read what they got."""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import procs
from bench.services import free_port
from bench.stack import ROOT, http_json, reachable


@dataclass
class Fakes:
    """The fake MySMSGate API and the catch hook, one process each."""

    gateway: procs.Child
    gateway_port: int
    hook: procs.Child
    hook_port: int
    gateway_key: str = ""

    @classmethod
    def start(cls, workdir: Path, gateway_key: str) -> Fakes:
        """Start both and wait until they answer."""
        gw_port, hook_port = free_port(), free_port()
        gateway = cls._spawn(workdir, "gateway", gw_port, gateway_key)
        hook = cls._spawn(workdir, "hook", hook_port)
        fakes = cls(gateway, gw_port, hook, hook_port, gateway_key)
        for port, child in ((gw_port, gateway), (hook_port, hook)):
            if not procs.wait_until(lambda p=port: reachable(f"http://127.0.0.1:{p}/_stats"), 30):
                fakes.stop()
                raise RuntimeError(f"fake {child.name} did not start:\n{child.log_tail()}")
        return fakes

    @staticmethod
    def _spawn(workdir: Path, role: str, port: int, *extra: str) -> procs.Child:
        """Start one fake (``python -m bench.fakes ROLE PORT ...``)."""
        argv = [sys.executable, "-m", "bench.fakes", role, str(port), *extra]
        return procs.spawn(f"fake {role}", argv, cwd=ROOT, log=workdir / f"fake-{role}.log")

    @property
    def gateway_url(self) -> str:
        """The MySMSGate ``base_url`` to configure on the channel."""
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def hook_url(self) -> str:
        """The catch hook the flow posts to."""
        return f"http://127.0.0.1:{self.hook_port}/hooks/catch/bench/"

    def _url(self, role: str, path: str) -> str:
        """A URL on one fake."""
        port = self.gateway_port if role == "gateway" else self.hook_port
        return f"http://127.0.0.1:{port}{path}"

    def stats(self, role: str) -> dict[str, Any]:
        """``received``, ``distinct``, ``bad`` and ``last_at`` (monotonic) of one fake."""
        answer: dict[str, Any] = http_json("GET", self._url(role, "/_stats"))
        return answer

    def distinct(self, role: str) -> int:
        """How many different numbers one fake has seen."""
        return int(self.stats(role)["distinct"])

    def counts(self, role: str) -> Counter[str]:
        """Every number one fake has seen, with how often."""
        return Counter(http_json("GET", self._url(role, "/_counts"), timeout=60))

    def bad(self) -> int:
        """Requests the fakes refused, or replies with another text."""
        return int(self.stats("gateway")["bad"]) + int(self.stats("hook")["bad"])

    def cpu_seconds(self) -> float:
        """CPU time both fakes used so far."""
        return procs.cpu_seconds([self.gateway.pid, self.hook.pid])

    def stop(self) -> None:
        """Stop both."""
        self.hook.stop()
        self.gateway.stop()

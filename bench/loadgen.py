"""The load generator: Debian's ``wrk`` with ``bench/webhooks.lua``, a fixed number of requests.

Each wrk thread stops once its share is answered, but wrk's main thread sleeps for the
whole ``-d`` before it reports; so this module watches ``/proc/<wrk>/task`` and sends
SIGINT (wrk's own "stop now and report") as soon as only the main thread is left. wrk's
reported duration is then the time the requests took, and ``-d`` stays the safety cap.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import procs

LUA = Path(__file__).with_name("webhooks.lua")
WRK_HINT = "wrk not found; install Debian's: apt-get install -y wrk"


def wrk_binary() -> str:
    """Path of wrk, or SystemExit with the install hint."""
    path = shutil.which("wrk") or ("/usr/bin/wrk" if Path("/usr/bin/wrk").exists() else None)
    if path is None:
        raise SystemExit(WRK_HINT)
    return path


@dataclass
class WrkResult:
    """What wrk and the Lua script's ``done()`` reported, plus wrk's own CPU time."""

    requests: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]
    threads: list[dict[str, Any]]
    cpu_s: float
    output: str = field(repr=False, default="")

    @property
    def share(self) -> int:
        """Requests the script was asked to send."""
        return sum(t["share"] for t in self.threads)

    @property
    def sent(self) -> int:
        """Requests written."""
        return sum(t["sent"] for t in self.threads)

    @property
    def acks(self) -> int:
        """2xx answers."""
        return sum(t["acks"] for t in self.threads)

    @property
    def complete(self) -> bool:
        """True when every request was sent and answered 2xx (so acked = sent, exactly)."""
        return self.acks == self.sent == self.share

    @property
    def acks_per_s(self) -> float:
        """2xx answers per second of wrk's run."""
        return self.acks / self.duration_s if self.duration_s else 0.0

    def failures(self) -> str:
        """Non-2xx statuses and socket errors, as text ("" when none)."""
        statuses: dict[str, int] = {}
        for thread in self.threads:
            for code, n in thread["statuses"].items():
                statuses[code] = statuses.get(code, 0) + n
        parts = [f"HTTP {code}: {n}" for code, n in sorted(statuses.items())]
        parts += [
            f"{kind} errors: {n}" for kind, n in self.errors.items() if n and kind != "status"
        ]
        unanswered = self.sent - sum(t["answered"] for t in self.threads)
        if unanswered:
            parts.append(f"unanswered: {unanswered}")
        return ", ".join(parts)


def run_wrk(
    url: str, total: int, connections: int, cap_s: float, workdir: Path, prefix: str = "+1555"
) -> WrkResult:
    """Send ``total`` webhooks to ``url`` with ``connections`` connections; bounded by cap_s."""
    threads = max(1, min(2, total, connections))
    argv = [
        wrk_binary(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{int(cap_s)}s",
        "--timeout",
        "60s",
        "--latency",
        "-s",
        str(LUA),
        url,
        "--",
        str(total),
        str(threads),
        prefix,
    ]
    log = workdir / "wrk.out"
    child = procs.spawn("wrk", argv, log=log)
    try:
        cpu = _stop_when_threads_done(child, cap_s + 30)
        child.popen.wait(15)
    finally:
        child.stop(grace_s=1)
    return parse(log.read_text(), cpu)


def _stop_when_threads_done(child: procs.Child, timeout_s: float) -> float:
    """SIGINT wrk once its worker threads have all exited; its CPU seconds by then."""
    tasks = Path(f"/proc/{child.pid}/task")
    deadline = time.monotonic() + timeout_s
    started = False
    cpu = 0.0
    while child.alive() and time.monotonic() < deadline:
        try:
            count = len(list(tasks.iterdir()))
        except OSError:
            break
        cpu = procs.process_cpu(child.pid) or cpu
        if count > 1:
            started = True
        elif started:
            break
        time.sleep(0.005)
    if child.alive():
        child.popen.send_signal(signal.SIGINT)
    return cpu


def parse(output: str, cpu_s: float) -> WrkResult:
    """Read the ``BENCH_JSON`` line the Lua script's ``done()`` printed."""
    for line in output.splitlines():
        if line.startswith("BENCH_JSON "):
            data = json.loads(line.removeprefix("BENCH_JSON "))
            return WrkResult(
                requests=data["requests"],
                duration_s=data["duration_us"] / 1e6,
                p50_ms=data["p50_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
                max_ms=data["max_us"] / 1000,
                errors=data["errors"],
                threads=data["threads"],
                cpu_s=cpu_s,
                output=output,
            )
    raise RuntimeError(f"wrk printed no BENCH_JSON line:\n{output[-2000:]}")


#: Texts by sequence number modulo 4, as in webhooks.lua; the first two want a reply.
TEXTS = ("JOIN news", "join the list", "JOINED the club", "hello there")


def sender(seq: int, prefix: str = "+1555") -> str:
    """The sender number of request ``seq`` (webhooks.lua's numbering)."""
    return f"{prefix}{seq:07d}"


def wants_reply(seq: int) -> bool:
    """True when request ``seq`` says JOIN as its first word."""
    return seq % 4 < 2


def webhook_body(seq: int, prefix: str) -> bytes:
    """The body webhooks.lua sends for ``seq`` (for warm-up requests from Python)."""
    body = {
        "from": sender(seq, prefix),
        "to": "+15550100000",
        "message": TEXTS[seq % 4],
        "device_id": "bench-phone",
        "sim_slot": 0,
        "timestamp": int(time.time()),
    }
    return json.dumps(body).encode()


def post_webhooks(url: str, count: int, prefix: str) -> None:
    """POST ``count`` webhooks one by one (the warm-up); RuntimeError on an error status."""
    import urllib.error
    import urllib.request

    for seq in range(count):
        request = urllib.request.Request(url, data=webhook_body(seq, prefix), method="POST")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30):
                pass
        except urllib.error.HTTPError as exc:
            raise RuntimeError(
                f"warm-up webhook answered {exc.code}: {exc.read()[:300]!r}"
            ) from exc

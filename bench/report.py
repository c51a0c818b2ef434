"""The Markdown report of one run: machine, versions, the table, notes; and the README update.

``write_readme`` replaces what stands between ``<!-- bench:begin -->`` and ``<!-- bench:end
-->`` in ``bench/README.md`` (appending the markers if they are missing), so the history
written around that section stays.
"""

from __future__ import annotations

import platform
import sqlite3
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from bench.scenarios import Outcome, RunContext
from bench.services import RedisDb, pg_problem, pg_version
from bench.stack import ROOT

README = Path(__file__).with_name("README.md")
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def machine() -> str:
    """CPU model, cores and RAM, from /proc."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    models = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    cores = sum(1 for line in cpuinfo if line.startswith("processor"))
    meminfo = Path("/proc/meminfo").read_text().split()
    ram_gib = int(meminfo[meminfo.index("MemTotal:") + 1]) / 1024 / 1024
    model = models[0] if models else platform.machine()
    return f"{model}, {cores} cores, {ram_gib:.1f} GiB RAM, Linux {platform.release()}"


def _try(read: Callable[[], str]) -> str:
    """``read()``, or why it could not be read."""
    try:
        return read()
    except Exception as exc:  # a missing service is reported, not fatal
        return f"unavailable ({type(exc).__name__})"


def _git(*args: str) -> str:
    """A git command's output in the repository."""
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30
    ).stdout.strip()


def commit(revision: str = "") -> str:
    """The benchmarked commit: ``--rev``'s, or the checked-out one noting uncommitted changes."""
    if revision:
        return f"{revision} (--rev)"
    head = _git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = _git("status", "--porcelain", "--", "hub", "flows", "connectors", "ui")
    return f"{head} + uncommitted changes" if dirty else head


def _wrk_version() -> str:
    """What ``wrk -v`` says its version is."""
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
    return (out.stdout or out.stderr).split()[1]


def versions(ctx: RunContext) -> str:
    """Every version the figures depend on, one line."""
    pg = _try(lambda: pg_version(ctx.pg_admin) if not pg_problem(ctx.pg_admin) else "not running")
    parts = [
        f"Python {platform.python_version()}",
        f"SQLite {sqlite3.sqlite_version}",
        f"PostgreSQL {pg}",
        f"Redis {_try(lambda: RedisDb(ctx.redis_url).version())}",
        *(f"{name} {_try(lambda n=name: metadata.version(n))}" for name in _PACKAGES),
        f"wrk {_try(_wrk_version)}",
        f"smshub {commit(ctx.revision)}",
    ]
    return ", ".join(parts)


_PACKAGES = ("litestar", "uvicorn", "aiohttp", "uvloop", "httptools", "sqlalchemy", "aiosqlite")


def _num(value: float | None, digits: int = 0) -> str:
    """A number with thousands separators, or a dash."""
    return "—" if value is None else f"{value:,.{digits}f}"


def _ratio(value: float | None, ceiling: float | None) -> str:
    """``value / ceiling`` as ``0.19x``, or a dash."""
    if value is None or not ceiling:
        return "—"
    return f"{value / ceiling:.2f}x" if value / ceiling >= 0.1 else f"{value / ceiling:.3f}x"


def _row(o: Outcome, ceiling: float | None) -> str:
    """One scenario's table row."""
    sc, wrk = o.scenario, o.wrk
    head = f"| {sc.key} | {sc.title} | {sc.requests:,} ({sc.connections}) "
    if o.skipped or o.error or wrk is None:
        return head + f"| {o.skipped or o.error or 'no result'} |" + " |" * 7
    lost = "—" if o.lost is None else f"{o.lost} / {o.dup}"
    if o.capped and o.lost:
        lost = f"{o.lost} still pending at the cap / {o.dup}"
    if o.extra:
        lost += f" (+{o.extra} unexpected)"
    cells = [
        _num(wrk.acks_per_s),
        _ratio(wrk.acks_per_s, ceiling),
        f"{wrk.p50_ms:.1f} / {wrk.p99_ms:.1f} ms",
        _num(o.flows_per_s, 0 if (o.flows_per_s or 0) >= 100 else 1)
        + (" (cap)" if o.capped else ""),
        _ratio(o.flows_per_s, ceiling),
        _num(o.cpu_per_1k, 2),
        f"{o.peak_mb:,.0f} MB",
        lost,
    ]
    return head + "| " + " | ".join(cells) + " |"


def table(outcomes: list[Outcome]) -> str:
    """The Markdown table; ratios are to the ceiling's acks/s of the same run."""
    ceiling = next((o.wrk.acks_per_s for o in outcomes if o.scenario.key == "a" and o.wrk), None)
    lines = [
        "| | scenario | requests (concurrency) | acks/s | x ceiling | ack p50 / p99 "
        "| flows/s | x ceiling | CPU s / 1k | peak RSS | lost / dup |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [_row(o, ceiling) for o in outcomes]
    return "\n".join(lines)


def _details(o: Outcome) -> str:
    """One scenario's line of notes."""
    parts = [f"load average {o.load} at start"]
    if o.startup_s is not None:
        parts.append(f"server ready in {o.startup_s:.1f} s")
    if o.wrk:
        parts.append(f"acks took {o.wrk.duration_s:.1f} s")
    if o.e2e_s is not None:
        done = "stopped waiting for the flows" if o.capped else "all flows done"
        parts.append(f"{done} after {o.e2e_s:.1f} s")
    parts.append(f"server CPU {o.cpu_s:.1f} s")
    if o.wrk:
        parts.append(f"wrk CPU {o.wrk.cpu_s:.1f} s")
    if o.fakes_cpu_s is not None:
        parts.append(f"fakes CPU {o.fakes_cpu_s:.1f} s")
    return f"- ({o.scenario.key}) " + "; ".join(parts + o.notes)


def render(outcomes: list[Outcome], ctx: RunContext, command: str) -> str:
    """The whole section: when, where, what with, the table and the per-scenario notes."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            f"Run of {when}: `{command}`",
            "",
            f"- machine: {machine()}",
            f"- versions: {versions(ctx)}",
            "",
            table(outcomes),
            "",
            "CPU s / 1k: CPU seconds of all server processes per 1,000 flows (per 1,000 acks "
            "for a and b). Lost / dup: a, none to check; b, stored inbound messages against "
            "acks; c-e, hook and gateway against acks.",
            "",
            *(_details(o) for o in outcomes),
        ]
    )


def write_readme(section: str, readme: Path = README) -> None:
    """Put ``section`` between the markers of bench/README.md."""
    text = readme.read_text()
    block = f"{BEGIN}\n{section}\n{END}"
    if BEGIN in text and END in text:
        before, rest = text.split(BEGIN, 1)
        after = rest.split(END, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip("\n") + f"\n\n## Latest `make bench` run\n\n{block}\n"
    readme.write_text(text)

"""The five scenarios of ``make bench`` and how one is run and measured.

Every scenario: start what it needs, send a few warm-up webhooks (other sender numbers)
and wait until they went all the way through, then take the hub's CPU times, start the
100-ms RSS sampler (and py-spy with ``--profile``), run wrk for the fixed number of
requests, wait until the fake gateway and the hook have everything expected (flow
scenarios) or until wrk is done (a, b), take the CPU times again, and compare what
arrived with what was acknowledged.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import procs
from bench.fakes_client import Fakes
from bench.flame import FlameGraph
from bench.loadgen import WrkResult, post_webhooks, run_wrk, sender, wants_reply
from bench.services import PgDatabase, RedisDb, free_port, open_redis, pg_problem
from bench.stack import ROOT, HubStack, reachable

PREFIX = "+1555"
WARMUP_PREFIX = "+1556"


@dataclass(frozen=True)
class Scenario:
    """What one row of the table measures."""

    key: str
    title: str
    requests: int
    connections: int
    timeout_s: float
    hub: bool = True
    flow: bool = False
    arq: bool = False
    #: ``smshub worker`` processes beside ``serve`` (arq scenarios; None: the run's default).
    workers: int | None = None


@dataclass
class RunContext:
    """Settings shared by every scenario of one run."""

    workdir: Path
    warmup: int
    profile_keys: tuple[str, ...]
    flame_dir: Path
    flame_tag: str
    redis_url: str
    pg_admin: str
    worker_processes: int = 2
    code_dir: Path = ROOT
    revision: str = ""


@dataclass
class Outcome:
    """The measurements of one scenario."""

    scenario: Scenario
    wrk: WrkResult | None = None
    e2e_s: float | None = None
    cpu_s: float = 0.0
    peak_mb: float = 0.0
    lost: int | None = None
    dup: int | None = None
    extra: int | None = None
    startup_s: float | None = None
    fakes_cpu_s: float | None = None
    flows_done: int | None = None
    capped: bool = False
    load: str = ""
    notes: list[str] = field(default_factory=list)
    error: str = ""
    skipped: str = ""

    @property
    def done(self) -> int:
        """What the CPU figure is per: flows run (flow scenarios) or acks."""
        return self.wrk.acks if self.wrk else 0

    @property
    def flows_per_s(self) -> float | None:
        """Flows finished (hook, and gateway for a JOIN), per second from the first request."""
        if not self.scenario.flow or not self.e2e_s or self.flows_done is None:
            return None
        return self.flows_done / self.e2e_s

    @property
    def cpu_per_1k(self) -> float | None:
        """CPU seconds of the server processes per 1,000 flows (or acks)."""
        return self.cpu_s / self.done * 1000 if self.done else None


def catalogue(quick: bool, counts: dict[str, int]) -> list[Scenario]:
    """The scenarios, with ``--quick`` sizes or the given request counts."""
    n = {"a": 2000, "b": 1000, "c": 200, "d": 200, "e": 1000, "f": 200} if quick else dict(counts)
    arq = {"flow": True, "arq": True}
    caps = {"a": 60.0, "b": 180.0, "c": 600.0, "d": 600.0, "e": 1800.0, "f": 600.0}
    return [
        Scenario("a", "ceiling: bare Litestar handler", n["a"], 32, caps["a"], hub=False),
        Scenario("b", "ingest only (SQLite, inline queue, no flow)", n["b"], 32, caps["b"]),
        Scenario("c", "keyword flow (SQLite, inline queue)", n["c"], 32, caps["c"], flow=True),
        Scenario("d", "keyword flow (PostgreSQL, arq, 2 workers)", n["d"], 32, caps["d"], **arq),
        Scenario("e", "burst into (c)", n["e"], 128, caps["e"], flow=True),
        Scenario("f", "(d) with 1 worker process", n["f"], 32, caps["f"], workers=1, **arq),
    ]


def run_scenario(sc: Scenario, ctx: RunContext) -> Outcome:
    """Run one scenario; errors become the outcome's ``error``, never an exception."""
    outcome = Outcome(sc, load=" ".join(Path("/proc/loadavg").read_text().split()[:3]))
    workdir = ctx.workdir / sc.key
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if not sc.hub:
            _run_ceiling(sc, ctx, workdir, outcome)
        elif sc.arq:
            _run_arq(sc, ctx, workdir, outcome)
        else:
            _run_hub(sc, ctx, workdir, outcome, HubStack(workdir, code_dir=ctx.code_dir))
    except Exception as exc:  # a broken scenario is reported; the others still run
        outcome.error = f"{type(exc).__name__}: {exc}"
    return outcome


# --- (a) the ceiling ---------------------------------------------------------------------


def _run_ceiling(sc: Scenario, ctx: RunContext, workdir: Path, outcome: Outcome) -> None:
    """(a): the bare app under the hub's uvicorn options."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.bare_app", str(port)]
    child = procs.spawn("bare app", argv, cwd=ROOT, log=workdir / "bare.log")
    try:
        started = time.monotonic()
        if not procs.wait_until(lambda: reachable(f"http://127.0.0.1:{port}/schema"), 60):
            raise RuntimeError(f"the bare app did not start:\n{child.log_tail()}")
        outcome.startup_s = time.monotonic() - started
        url = f"http://127.0.0.1:{port}/webhooks/ch_bare/incoming?token=bench"
        post_webhooks(url, ctx.warmup, WARMUP_PREFIX)
        _measure(sc, ctx, workdir, outcome, url, [child.pid], None)
    finally:
        child.stop()


# --- (b), (c), (e): inline queue on SQLite; (d) arq on PostgreSQL ------------------------


def _run_arq(sc: Scenario, ctx: RunContext, workdir: Path, outcome: Outcome) -> None:
    """(d): a fresh PostgreSQL database and a flushed Redis db around ``_run_hub``."""
    problem = pg_problem(ctx.pg_admin)
    if problem:
        outcome.skipped = problem
        return
    redis = open_redis(ctx.redis_url, workdir)
    database = PgDatabase.create(ctx.pg_admin)
    try:
        redis.flush()
        stack = HubStack(
            workdir,
            database_url=database.url,
            redis_url=redis.url,
            worker_processes=sc.workers or ctx.worker_processes,
            code_dir=ctx.code_dir,
        )
        _run_hub(sc, ctx, workdir, outcome, stack)
    finally:
        _close(redis, database)


def _close(redis: RedisDb, database: PgDatabase) -> None:
    """Flush Redis, then drop the database."""
    try:
        redis.close()
    finally:
        database.drop()


def _run_hub(
    sc: Scenario, ctx: RunContext, workdir: Path, outcome: Outcome, stack: HubStack
) -> None:
    """(b), (c), (e), and (d) inside ``_run_arq``: fakes, hub, warm-up, measure, check."""
    fakes = Fakes.start(workdir, stack.gateway_key) if sc.flow else None
    try:
        if fakes:
            stack.gateway_url, stack.hook_url = fakes.gateway_url, fakes.hook_url
        stack.start()
        outcome.startup_s = stack.startup_s
        try:
            post_webhooks(stack.webhook_url, ctx.warmup, WARMUP_PREFIX)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; serve log:\n{stack.children[0].log_tail(15)}") from exc
        waiter = None
        if fakes:
            _wait_for_warmup(fakes, stack, ctx.warmup)
            waiter = _flows_waiter(fakes, stack, ctx.warmup)
            fakes_cpu = fakes.cpu_seconds()
        _measure(sc, ctx, workdir, outcome, stack.webhook_url, stack.pids, waiter)
        if fakes:
            outcome.fakes_cpu_s = fakes.cpu_seconds() - fakes_cpu
        _check(outcome, stack, fakes)
    finally:
        stack.stop()
        if fakes:
            fakes.stop()


def _wait_for_warmup(fakes: Fakes, stack: HubStack, warmup: int) -> None:
    """Wait until the warm-up SMS reached the hook and their replies the gateway."""
    joins = sum(wants_reply(i) for i in range(warmup))

    def arrived() -> bool:
        """True when every warm-up SMS and reply has arrived."""
        stack.check_alive()
        return fakes.distinct("hook") >= warmup and fakes.distinct("gateway") >= joins

    if not procs.wait_until(arrived, 120, 0.1):
        raise RuntimeError(
            f"warm-up: {warmup} SMS did not all reach the hook and gateway within 120 s "
            f"(hook {fakes.distinct('hook')}, gateway {fakes.distinct('gateway')}); "
            f"serve log:\n{stack.children[0].log_tail()}"
        )


Waiter = Callable[[WrkResult, float], float | None]


def _flows_waiter(fakes: Fakes, stack: HubStack, warmup: int) -> Waiter:
    """Waits until the hook has every acked SMS and the gateway every acked JOIN."""
    base_hook, base_gw = warmup, sum(wants_reply(i) for i in range(warmup))

    def wait(wrk: WrkResult, deadline: float) -> float | None:
        """The time the last expected request arrived, or None at the deadline."""
        want_hook = base_hook + wrk.acks
        want_gw = base_gw + sum(wants_reply(seq) for seq in range(wrk.sent)) - (wrk.sent - wrk.acks)
        while time.monotonic() < deadline:
            stack.check_alive()
            hook, gateway = fakes.stats("hook"), fakes.stats("gateway")
            if hook["distinct"] >= want_hook and gateway["distinct"] >= want_gw:
                return max(float(hook["last_at"]), float(gateway["last_at"]))
            time.sleep(0.1)
        return None

    return wait


def _measure(
    sc: Scenario,
    ctx: RunContext,
    workdir: Path,
    outcome: Outcome,
    url: str,
    pids: list[int],
    waiter: Waiter | None,
) -> None:
    """wrk, then the wait for the flows; CPU, RSS and (with --profile) a flame graph."""
    flames = []
    if sc.key in ctx.profile_keys:
        # serve as <tag>-<key>.svg; in the arq scenarios each worker too, <tag>-<key>-w<n>.svg
        for n, pid in enumerate(pids):
            name = f"{ctx.flame_tag}-{sc.key}" + (f"-w{n}" if n else "")
            out = ctx.flame_dir / f"{name}.svg"
            flames.append(FlameGraph.start(pid, out, sc.timeout_s + 30))
        time.sleep(1.0)  # py-spy attaches before the first request
    try:
        _drive(sc, workdir, outcome, url, pids, waiter)
    finally:
        for flame in flames:
            problem = flame.stop()
            outcome.notes.append(problem or f"flame graph: {flame.out.relative_to(ROOT)}")
    assert outcome.wrk is not None
    failures = outcome.wrk.failures()
    if failures:
        outcome.notes.append(f"wrk: {failures}")


def _drive(
    sc: Scenario, workdir: Path, outcome: Outcome, url: str, pids: list[int], waiter: Waiter | None
) -> None:
    """Run wrk and wait for the flows, with the CPU times around and RSS sampled during."""
    cpu_before = procs.cpu_seconds(pids)
    busy_before, total_before = procs.machine_ticks()
    with procs.RssSampler(list(pids)) as rss:
        started = time.monotonic()
        outcome.wrk = run_wrk(url, sc.requests, sc.connections, sc.timeout_s, workdir, PREFIX)
        if waiter is not None:
            finished = waiter(outcome.wrk, started + sc.timeout_s)
            if finished is None:
                outcome.capped = True
                outcome.notes.append(f"not all flows finished within the {sc.timeout_s:.0f} s cap")
            outcome.e2e_s = (finished or time.monotonic()) - started
        outcome.cpu_s = procs.cpu_seconds(pids) - cpu_before
    busy, total = procs.machine_ticks()
    if total > total_before:  # everything: the hub, PostgreSQL, Redis, the fakes, wrk, others
        share = (busy - busy_before) / (total - total_before)
        outcome.notes.append(f"machine CPU busy {share:.0%} of {os.cpu_count()} cores")
    outcome.peak_mb = rss.peak_mb


# --- lost and duplicated -----------------------------------------------------------------


def _check(outcome: Outcome, stack: HubStack, fakes: Fakes | None) -> None:
    """Compare what arrived (fakes, or stored messages for (b)) with the acks."""
    wrk = outcome.wrk
    assert wrk is not None
    time.sleep(1.0 if fakes else 0.0)  # late duplicates would show up here
    stored = _ours(stack.inbound_senders())
    sent = range(wrk.sent)
    if fakes is None:
        lost, dup, extra = _compare(stored, {sender(s, PREFIX) for s in sent}, wrk)
    else:
        hook, gateway = _ours(fakes.counts("hook")), _ours(fakes.counts("gateway"))
        hl, hd, he = _compare(hook, {sender(s, PREFIX) for s in sent}, wrk)
        joins = {sender(s, PREFIX) for s in sent if wants_reply(s)}
        gl, gd, ge = _compare(gateway, joins, wrk)
        lost, dup, extra = hl + gl, hd + gd, he + ge
        outcome.flows_done = sum(
            1
            for s in sent
            if sender(s, PREFIX) in hook and (not wants_reply(s) or sender(s, PREFIX) in gateway)
        )
        outcome.notes.append(f"hook got {sum(hook.values())}, gateway {sum(gateway.values())}")
        if fakes.bad():
            outcome.notes.append(f"fakes refused or saw a wrong text {fakes.bad()} times")
        missing = len({sender(s, PREFIX) for s in sent} - set(stored))
        if missing > wrk.sent - wrk.acks:
            outcome.notes.append(f"{missing} acked SMS are not stored")
    outcome.lost, outcome.dup, outcome.extra = lost, dup, extra
    if not wrk.complete:
        outcome.notes.append("not every request was acked: lost is counted, not matched")


def _ours(counts: Counter[str]) -> Counter[str]:
    """Only the measured requests' numbers (not the warm-up's)."""
    return Counter({k: v for k, v in counts.items() if k.startswith(PREFIX)})


def _compare(got: Counter[str], expected: set[str], wrk: WrkResult) -> tuple[int, int, int]:
    """(lost, duplicated, unexpected) numbers; by count when not every request was acked."""
    dup = sum(1 for n in got.values() if n > 1)
    extra = len(set(got) - expected)
    if wrk.complete:
        return len(expected - set(got)), dup, extra
    unacked = wrk.sent - wrk.acks
    return max(0, len(expected) - unacked - len(set(got) & expected)), dup, extra

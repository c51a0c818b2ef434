"""The flow engine's own CPU cost per run, in memory (no HTTP, no database).

    .venv/bin/python -m bench.engine [-n 2000] [--rounds 5] [--batch 500] [--profile out.prof]

Publishes the keyword flow of issue 9 (every SMS is posted to a hook, a first word JOIN
gets a reply) in a :class:`flows.testing.FlowHarness` and feeds it ``-n`` inbound SMS
from distinct numbers, half of them "JOIN news", ``--batch`` runs per harness (the
in-memory store keeps every run). Prints, per round, microseconds of wall and CPU time
per run (the engine is all CPU here: every port is in memory) and the ``RunStore`` calls
per run: writes (``create_run`` + ``save_run``) and reads (``get_run`` + ``get_step``).
``--profile`` writes a cProfile of one more round (``python -m pstats``, snakeviz).
Bounded: at most 20,000 runs a round and 20 rounds; a default round takes about a second.

Figures (2026-12-01, the 2-core VM of issue 9, Python 3.11.7, other sessions running, so
each pair measured back to back; medians of 3 rounds of 2,000 runs):

================================  ===============  ===============  ======  =====  ======
setup (two rounds each)           µs/run wall      µs/run CPU       writes  reads  instr.
================================  ===============  ===============  ======  =====  ======
before, one harness (the issue's)  3,710 / 4,420   3,100 / 3,600    6.0     4.5    8.5 M
after, one harness                   299 / 416       270 / 345      2.5     0      0.99 M
before, ``--batch 500``            2,500 / 2,400   1,890 / 1,970    6.0     4.5    8.0 M
after, ``--batch 500``               358 / 330       281 / 292      2.5     0      1.0 M
================================  ===============  ===============  ======  =====  ======

"One harness": all 2,000 runs in one harness, as the issue measured (instructions: 1,000
runs). The old in-memory fakes scanned every stored run and SMS on each dispatch and send,
so that setup grows with the harness; ``--batch 500`` (the default) bounds it.
Writes: a matching run 7 before (create + a save per step transition), 3 after (create
with the trigger step and the hook's intent; the hook's outcome, the condition and the
reply's intent; the reply's outcome and the end); a run that does not match 5, then 2.
Instructions are valgrind's count (deterministic, unlike times on a shared machine).
What is left, by py-spy: about 30 % the in-memory store's copies (isolation: nothing a
caller holds is shared with it), 5 % garbage collection, the rest spread over rendering
and validating two configs, the handlers, the fakes and the step bookkeeping.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flows.expressions import Renderer
from flows.memory import InMemoryRunStore
from flows.runs import Run, Step
from flows.testing import FlowHarness


def _node(node_id: str, node_type: str, **config: Any) -> dict[str, Any]:
    return {"id": node_id, "type": node_type, "config": config}


#: Issue 9's keyword flow: every SMS to a hook, a first word JOIN gets a welcome.
FLOW: dict[str, Any] = {
    "name": "kw",
    "nodes": [
        _node("start", "trigger.sms_received", match="any"),
        _node(
            "zap",
            "http.request",
            url="https://hooks.example.com/x",
            body={"from": "{{ trigger.data.from }}", "text": "{{ trigger.data.body }}"},
        ),
        _node(
            "check",
            "logic.condition",
            value="{{ trigger.data.body }}",
            operator="matches",
            operand=r"^join\b",
        ),
        _node("reply", "sms.reply", text="Welcome! Reply STOP to opt out."),
    ],
    "edges": [
        {"from": "start", "to": "zap"},
        {"from": "zap", "port": "success", "to": "check"},
        {"from": "check", "port": "true", "to": "reply"},
    ],
}
MAX_RUNS = 20_000
MAX_ROUNDS = 20
#: Runs per harness: the in-memory store keeps every run, and a heap of thousands of them
#: makes the garbage collector's full passes (and so the figures) about the harness.
BATCH = 500


class CountingStore(InMemoryRunStore):
    """The in-memory store, counting the calls the engine makes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.reads = 0

    async def create_run(self, run: Run, steps: Sequence[Step]) -> None:
        self.writes += 1
        await super().create_run(run, steps)

    async def save_run(self, run: Run, steps: Sequence[Step] = ()) -> None:
        self.writes += 1
        await super().save_run(run, steps)

    async def get_run(self, run_id: str) -> Run | None:
        self.reads += 1
        return await super().get_run(run_id)

    async def get_step(self, run_id: str, seq: int) -> Step | None:
        self.reads += 1
        return await super().get_step(run_id, seq)


def harness() -> tuple[FlowHarness, CountingStore]:
    h = FlowHarness()
    store = CountingStore()
    h.store = h.executor.store = store
    # The render budget is wall time: on a busy machine a render preempted for 100 ms
    # would fail its run. The work is the same under a longer budget.
    h.executor.renderer = Renderer(max_time_s=10.0)
    h.publish(FLOW)
    return h, store


@dataclass
class Figures:
    """Per run: wall and CPU microseconds, store writes and reads."""

    wall_us: float
    cpu_us: float
    writes: float
    reads: float


async def one_round(n: int, batch: int = BATCH) -> Figures:
    """The figures of ``n`` runs, half of them matching, ``batch`` runs per harness."""
    wall = cpu = writes = reads = 0.0
    for start in range(0, n, batch):
        batch_wall, batch_cpu, store = await one_batch(min(batch, n - start))
        wall += batch_wall
        cpu += batch_cpu
        writes += store.writes
        reads += store.reads
    return Figures(wall / n * 1e6, cpu / n * 1e6, writes / n, reads / n)


async def one_batch(n: int) -> tuple[float, float, CountingStore]:
    """Wall and CPU seconds for ``n`` runs in a fresh harness, and its store; checks the
    outcome (every run completed, one reply per matching run)."""
    h, store = harness()
    texts = ("JOIN news", "hello there")
    started, cpu_started = time.perf_counter(), time.process_time()
    for i in range(n):
        await h.inbound(texts[i % 2], from_=f"+1555{i:07d}")
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    runs = h.runs()
    replies = len(h.effects.sms)
    unfinished = [(r.status, r.error) for r in runs if r.status != "completed"]
    if len(runs) != n or unfinished or replies != (n + 1) // 2:
        raise SystemExit(f"wrong result: {len(runs)} runs, {replies} replies, {unfinished[:3]}")
    return elapsed, cpu, store


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="runs per round (half match)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--batch", type=int, default=BATCH, help="runs per harness (its store keeps them all)"
    )
    parser.add_argument("--profile", metavar="PATH", help="cProfile one more round to PATH")
    args = parser.parse_args(argv)
    n = max(2, min(args.n, MAX_RUNS))
    rounds = max(1, min(args.rounds, MAX_ROUNDS))
    await one_round(50)  # warm up: imports, compiled templates, parsed flow
    batch = max(1, min(args.batch, MAX_RUNS))
    results = [await one_round(n, batch) for _ in range(rounds)]
    for i, r in enumerate(results, 1):
        print(
            f"round {i}: {r.wall_us:8.1f} µs/run wall {r.cpu_us:8.1f} µs/run CPU  "
            f"{r.writes:.2f} writes/run  {r.reads:.2f} reads/run"
        )
    wall = statistics.median(r.wall_us for r in results)
    cpu = statistics.median(r.cpu_us for r in results)
    best = min(r.cpu_us for r in results)
    print(f"{n} runs x {rounds}: median {wall:.1f} µs/run wall, {cpu:.1f} µs/run CPU", end="")
    print(f" (best {best:.1f})")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        await one_round(n, batch)
        profiler.disable()
        profiler.dump_stats(args.profile)
        print(f"profile of one round written to {args.profile}")


if __name__ == "__main__":
    asyncio.run(main())

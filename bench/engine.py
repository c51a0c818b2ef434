"""The flow engine's own CPU cost per run, in memory (no HTTP, no database).

    .venv/bin/python -m bench.engine [-n 2000] [--rounds 5] [--profile out.prof]

Publishes the keyword flow of issue 9 (every SMS is posted to a hook, a first word JOIN
gets a reply) in a :class:`flows.testing.FlowHarness` and feeds it ``-n`` inbound SMS
from distinct numbers, half of them "JOIN news". Prints, per round, microseconds of
wall time per run (the engine is all CPU here: every port is in memory) and the
``RunStore`` calls per run, writes (``create_run`` + ``save_run``) and reads
(``get_run`` + ``get_step``). ``--profile`` writes a cProfile of one more round (read it
with ``python -m pstats`` or snakeviz). Bounded: at most 20,000 runs a round and 20
rounds; a round of the default 2,000 takes well under a second.

Figures (2026-12-02, the 2-core VM of issue 9, Python 3.11, median of 5 rounds of 2,000
runs, other sessions running): before this benchmark's change, 3,420 µs per run, 6.0
writes and 6.0 reads per run (matching runs 7 writes, others 5); after, see the end of
this docstring.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import statistics
import time
from collections.abc import Sequence
from typing import Any

from flows.memory import InMemoryRunStore
from flows.runs import Run, Step
from flows.testing import FlowHarness

FLOW: dict[str, Any] = {
    "name": "kw",
    "nodes": [
        {"id": "start", "type": "trigger.sms_received", "config": {"match": "any"}},
        {
            "id": "zap",
            "type": "http.request",
            "config": {
                "url": "https://hooks.example.com/x",
                "body": {"from": "{{ trigger.data.from }}", "text": "{{ trigger.data.body }}"},
            },
        },
        {
            "id": "check",
            "type": "logic.condition",
            "config": {
                "value": "{{ trigger.data.body }}",
                "operator": "matches",
                "operand": "^join\\b",
            },
        },
        {
            "id": "reply",
            "type": "sms.reply",
            "config": {"text": "Welcome! Reply STOP to opt out."},
        },
    ],
    "edges": [
        {"from": "start", "to": "zap"},
        {"from": "zap", "port": "success", "to": "check"},
        {"from": "check", "port": "true", "to": "reply"},
    ],
}
MAX_RUNS = 20_000
MAX_ROUNDS = 20


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
    h.publish(FLOW)
    return h, store


async def one_round(n: int) -> tuple[float, float, float]:
    """(µs per run, writes per run, reads per run) for ``n`` runs, half matching."""
    h, store = harness()
    texts = ("JOIN news", "hello there")
    started = time.perf_counter()
    for i in range(n):
        await h.inbound(texts[i % 2], from_=f"+1555{i:07d}")
    elapsed = time.perf_counter() - started
    runs = h.runs()
    replies = len(h.effects.sms)
    if len(runs) != n or any(r.status != "completed" for r in runs) or replies != (n + 1) // 2:
        raise SystemExit(f"wrong result: {len(runs)} runs, {replies} replies")
    return elapsed / n * 1e6, store.writes / n, store.reads / n


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="runs per round (half match)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", metavar="PATH", help="cProfile one more round to PATH")
    args = parser.parse_args(argv)
    n = max(2, min(args.n, MAX_RUNS))
    rounds = max(1, min(args.rounds, MAX_ROUNDS))
    await one_round(50)  # warm up: imports, compiled templates, parsed flow
    results = [await one_round(n) for _ in range(rounds)]
    for i, (us, writes, reads) in enumerate(results, 1):
        print(f"round {i}: {us:8.1f} µs/run  {writes:.2f} writes/run  {reads:.2f} reads/run")
    median = statistics.median(us for us, _, _ in results)
    best = min(us for us, _, _ in results)
    print(f"{n} runs x {rounds}: median {median:.1f} µs/run, best {best:.1f} µs/run")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        await one_round(n)
        profiler.disable()
        profiler.dump_stats(args.profile)
        print(f"profile of one round written to {args.profile}")


if __name__ == "__main__":
    asyncio.run(main())

"""``make bench``: every scenario of issue 9 in one run, a Markdown table, bench/README.md updated.

    .venv/bin/python -m bench.run [--only a,c] [--quick] [--profile] [--no-write]

(a) ceiling: bare Litestar handler under the hub's uvicorn; (b) ingest only: ``smshub
serve`` as ``make run`` runs it, no flow; (c) keyword flow: the same plus the flow of
``bench/flow.json``; (d) the same on PostgreSQL with the arq queue and 2 ``smshub worker``
processes; (e) a burst at concurrency 128 into (c); (f) (d) with 1 worker process (the
scaling step). Everything runs on 127.0.0.1 in a
fresh temporary directory, each scenario under a hard cap, the whole run under
``--max-total``; every child process group is killed on exit, Ctrl-C or error.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench import procs, report
from bench.flame import py_spy_binary
from bench.loadgen import wrk_binary
from bench.scenarios import Outcome, RunContext, catalogue, run_scenario
from bench.services import DEFAULT_PG_ADMIN, DEFAULT_REDIS
from bench.stack import export_rev

DEFAULT_COUNTS = {"a": 20_000, "b": 20_000, "c": 2_000, "d": 2_000, "e": 20_000, "f": 2_000}
PROFILED = ("b", "c")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="scenarios to run, e.g. a,c (default all)")
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument("--profile", action="store_true", help="py-spy flame graphs of (b) and (c)")
    parser.add_argument(
        "--profile-only", default="", help="flame graphs of these scenarios instead, e.g. d,f"
    )
    parser.add_argument("--no-write", action="store_true", help="print only, keep the README")
    for key, count in DEFAULT_COUNTS.items():
        parser.add_argument(f"--{key}", type=int, default=count, help=f"requests of ({key})")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up webhooks per scenario")
    parser.add_argument("--timeout", type=float, default=0, help="cap of every scenario, s")
    parser.add_argument("--max-total", type=float, default=0, help="cap of the whole run, s")
    parser.add_argument("--flame-tag", default="", help="flame graph name prefix (date)")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS, help="a Redis db to flush")
    parser.add_argument("--pg-admin", default=DEFAULT_PG_ADMIN, help="PostgreSQL admin DSN")
    parser.add_argument("--rev", default="", help="benchmark the hub at this git revision")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return parser.parse_args(argv)


def _profiled(args: argparse.Namespace) -> tuple[str, ...]:
    """The scenarios that get flame graphs."""
    only = tuple(k.strip() for k in args.profile_only.split(",") if k.strip())
    return only or (PROFILED if args.profile else ())


def selected(args: argparse.Namespace) -> list[str]:
    """The scenario keys asked for."""
    keys = [k.strip() for k in args.only.split(",") if k.strip()] or list(DEFAULT_COUNTS)
    unknown = sorted(set(keys) - set(DEFAULT_COUNTS))
    if unknown:
        raise SystemExit(f"unknown scenario(s) {', '.join(unknown)}; choose from a,b,c,d,e")
    return keys


def run(args: argparse.Namespace, workdir: Path) -> tuple[list[Outcome], RunContext]:
    """Every selected scenario, in order."""
    counts = {key: getattr(args, key) for key in DEFAULT_COUNTS}
    scenarios = [s for s in catalogue(args.quick, counts) if s.key in selected(args)]
    ctx = RunContext(
        workdir=workdir,
        warmup=args.warmup,
        profile_keys=_profiled(args),
        flame_dir=Path(__file__).with_name("flame"),
        flame_tag=args.flame_tag or datetime.now(UTC).strftime("%Y-%m-%d"),
        redis_url=args.redis_url,
        pg_admin=args.pg_admin,
    )
    if args.rev:
        ctx.code_dir, ctx.revision = export_rev(args.rev, workdir)
    budget = args.max_total or sum(args.timeout or s.timeout_s for s in scenarios) + 600
    procs.install_cleanup(budget)
    outcomes = []
    for scenario in scenarios:
        if args.timeout:
            scenario = dataclasses.replace(scenario, timeout_s=args.timeout)
        print(f"({scenario.key}) {scenario.title}: {scenario.requests:,} requests ...", flush=True)
        outcome = run_scenario(scenario, ctx)
        print(report.table([*outcomes, outcome]).splitlines()[-1], flush=True)
        outcomes.append(outcome)
    return outcomes, ctx


def main(argv: list[str] | None = None) -> int:
    """Run, print, write the README (unless --no-write)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    wrk_binary()
    if _profiled(args):
        py_spy_binary()
    command = " ".join(["python -m bench.run", shlex.join(sys.argv[1:] if argv is None else argv)])
    tmp = tempfile.mkdtemp(prefix="smshub-bench-")
    try:
        outcomes, ctx = run(args, Path(tmp))
        section = report.render(outcomes, ctx, command)
    except KeyboardInterrupt:
        print("\ninterrupted: every process this run started is stopped", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"logs and databases kept in {tmp}")
    print("\n" + section)
    if not args.no_write:
        report.write_readme(section)
        print(f"\nwritten to {report.README}")
    return 1 if any(o.error for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())

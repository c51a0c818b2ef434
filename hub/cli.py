"""The ``smshub`` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeAlias

from hub import version
from hub.settings import Settings, get_settings

if TYPE_CHECKING:
    # What add_subparsers() returns; argparse keeps the class private.
    Commands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def _run(coro: Coroutine[Any, Any, int]) -> int:
    return asyncio.run(coro)


async def _with_hub(settings: Settings, action: Callable[[Any], Awaitable[int]]) -> int:
    from hub.app import build_hub
    from hub.services.meta import confirm_secret_key

    hub = build_hub(settings)
    try:
        await confirm_secret_key(hub)  # SecretKeyError: main() prints it, exit code 2
        return await action(hub)
    finally:
        await hub.close()


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Upgrade the database, then serve HTTP with the inline workers."""
    import uvicorn

    from hub.app import create_app, tune_gc
    from hub.logs import logging_config
    from hub.migrate import upgrade

    _upgrade_in_child(upgrade, settings.effective_database_url)
    host = args.host or settings.host
    port = args.port or settings.port
    processes = args.processes or settings.processes
    logging.getLogger("smshub").info(
        "smshub on http://%s:%s (public URL %s, %d process%s)",
        host,
        port,
        settings.public_url,
        processes,
        "" if processes == 1 else "es",
    )
    # uvicorn logs in the hub's format too (its worker processes configure it again).
    options: dict[str, Any] = {
        "log_level": "warning",
        "access_log": False,
        "log_config": logging_config(settings),
    }
    if processes == 1:
        _run(_with_hub(settings, _nothing))  # the secret-key guard, before serving
        app = create_app(settings)
        tune_gc()
        uvicorn.run(app, host=host, port=port, **options)
        return 0
    # Several processes on one port (each serves HTTP and runs jobs; the database's
    # leases and locks keep them apart). The first-start setup runs here, once, so
    # they do not race to create the secret key or the simulator channel.
    _run(_with_hub(settings, _first_start))
    uvicorn.run(
        "hub.app:worker_process_app",
        factory=True,
        workers=processes,
        host=host,
        port=port,
        **options,
    )
    return 0


def _upgrade_in_child(upgrade: Callable[[str], None], url: str) -> None:
    """Run the migrations in a forked child: Alembic and the migration scripts then never
    count towards the server's memory (its peak RSS would otherwise be set at start)."""
    child = multiprocessing.get_context("fork").Process(target=upgrade, args=(url,))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"database migration failed (exit code {child.exitcode})")


async def _nothing(hub: Any) -> int:
    return 0


async def _first_start(hub: Any) -> int:
    from hub.services.bootstrap import bootstrap

    await bootstrap(hub)
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Run queue workers only (arq + Redis when SMSHUB_REDIS_URL is set)."""
    if not settings.redis_url:
        print(
            "smshub worker needs SMSHUB_REDIS_URL; "
            "with the inline queue, `smshub serve` runs the workers",
            file=sys.stderr,
        )
        return 2
    from hub.migrate import upgrade

    upgrade(settings.effective_database_url)

    async def action(hub: Any) -> int:
        from hub.app import tune_gc
        from hub.queue.arq_queue import run_worker

        tune_gc()
        await hub.queue.start()  # this process pushes the jobs its own jobs queue
        try:
            async with _worker_metrics(hub):
                await run_worker(hub)  # until a signal; it outlives a Redis outage
        finally:
            await hub.queue.stop()
        return 0

    logging.getLogger("smshub").info("smshub worker on %s", settings.redis_url)
    return _run(_with_hub(settings, action))


def _worker_metrics(hub: Any) -> contextlib.AbstractAsyncContextManager[None]:
    """``GET /metrics`` on SMSHUB_METRICS_PORT while the worker runs (0: none)."""
    from hub.metrics import metrics_server

    settings: Settings = hub.settings
    if not settings.metrics_port:
        return contextlib.nullcontext()
    return metrics_server(hub, settings.host, settings.metrics_port)


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    """Bring the database schema up to date."""
    from hub.migrate import upgrade

    upgrade(settings.effective_database_url, args.revision)
    print(f"database at revision {args.revision}")
    return 0


def cmd_apikey_create(args: argparse.Namespace, settings: Settings) -> int:
    """Create an API key and print it once."""
    from hub.migrate import upgrade
    from hub.services.apikeys import create_api_key

    upgrade(settings.effective_database_url)

    async def action(hub: Any) -> int:
        row, plain = await create_api_key(hub, args.name)
        print(plain)
        print(f"# key {row.id} ({row.name}); store it now, it is not shown again", file=sys.stderr)
        return 0

    return _run(_with_hub(settings, action))


def cmd_user_create(args: argparse.Namespace, settings: Settings) -> int:
    """Create a browser UI account (or, with --reset, set a new password); prompts for what
    the flags do not give."""
    import getpass

    from hub.errors import ApiError
    from hub.migrate import upgrade
    from hub.services.users import create_user, set_password

    email = args.email or input("E-mail: ").strip()
    password = args.password
    if password is None:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat the password: ") != password:
            print("the two passwords differ", file=sys.stderr)
            return 2
    upgrade(settings.effective_database_url)

    async def action(hub: Any) -> int:
        try:
            if args.reset:
                user = await set_password(hub, email, password)
            else:
                user = await create_user(hub, email, password)
        except ApiError as exc:
            fields = "; ".join(
                f"{d.get('field')}: {d.get('message')}"
                for d in (exc.details or [])
                if isinstance(d, dict)
            )
            print(fields or exc.message, file=sys.stderr)
            return 1
        done = "password changed (signed out everywhere)" if args.reset else "account created"
        print(f"{user.email}: {done}")
        return 0

    return _run(_with_hub(settings, action))


def cmd_simulate_inbound(args: argparse.Namespace, settings: Settings) -> int:
    """Post a signed simulator webhook to the running hub, as a phone would."""
    import httpx

    from connectors.simulator import event_body, sign_request
    from hub.ids import new_id
    from hub.services.channels import runtime_of

    async def action(hub: Any) -> int:
        import sqlalchemy as sa
        from sqlmodel import col

        from hub.models import Channel, utcnow

        async with hub.db.read() as session:
            stmt = sa.select(Channel).where(
                col(Channel.connector) == "simulator", col(Channel.deleted_at).is_(None)
            )
            if args.channel:
                stmt = stmt.where(col(Channel.id) == args.channel)
            row = (await session.execute(stmt.order_by(col(Channel.id)))).scalars().first()
        if row is None:
            print(
                "no simulator channel found (give --channel ID of a simulator channel)",
                file=sys.stderr,
            )
            return 2
        runtime = runtime_of(row, hub.box)
        body = event_body(
            "sms.received",
            event_id=new_id("sim"),
            from_number=args.from_number,
            to_number=runtime.phone_number or str(getattr(runtime.config, "phone_number", "")),
            text=args.text,
            device_id=str(getattr(runtime.config, "device_id", "")) or None,
            sim_slot=args.sim_slot,
        )
        headers = {
            "content-type": "application/json",
            **sign_request(runtime.webhook_secret or "", body, utcnow()),
        }
        url = f"{(args.url or settings.public_url).rstrip('/')}/webhooks/{row.id}"
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                resp = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            print(
                f"could not reach the hub at {url}: {exc} (is `smshub serve` running?)",
                file=sys.stderr,
            )
            return 1
        print(f"{resp.status_code} {resp.text}")
        return 0 if resp.status_code < 300 else 1

    return _run(_with_hub(settings, action))


def cmd_flows_import(args: argparse.Namespace, settings: Settings) -> int:
    """Import a flow file (DESIGN.md JSON), optionally publishing it."""
    import json
    from pathlib import Path

    from hub.errors import ApiError
    from hub.migrate import upgrade
    from hub.services.flows import import_flow

    try:
        document = json.loads(Path(args.file).read_text())
    except (OSError, ValueError) as exc:
        print(f"cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    upgrade(settings.effective_database_url)

    async def action(hub: Any) -> int:
        try:
            view, version = await import_flow(hub, document, publish_it=args.publish)
        except ApiError as exc:
            print(f"{exc.message}", file=sys.stderr)
            for item in exc.details or []:
                where = item.get("node_id") or "flow"
                print(
                    f"  {where}: {item.get('field') or ''} {item.get('message')}", file=sys.stderr
                )
            return 1
        state = f"published as version {version}" if version else "saved as a draft"
        print(view.flow.id)
        print(f"# {view.flow.name!r} {state}", file=sys.stderr)
        for problem in view.problems:
            print(f"  {problem.node_id or 'flow'}: {problem.message}", file=sys.stderr)
        return 0

    return _run(_with_hub(settings, action))


def cmd_flows_export(args: argparse.Namespace, settings: Settings) -> int:
    """Print a flow's canonical JSON (the draft, or --version N)."""
    from hub.errors import ApiError
    from hub.services.flows import export_document

    async def action(hub: Any) -> int:
        try:
            sys.stdout.write(await export_document(hub, args.id, args.version))
        except ApiError as exc:
            print(exc.message, file=sys.stderr)
            return 1
        return 0

    return _run(_with_hub(settings, action))


def cmd_prune(args: argparse.Namespace, settings: Settings) -> int:
    """Apply the data retention settings now (or, with --dry-run, count what would go)."""
    from hub.services.retention import KINDS, prune, retention_days

    async def action(hub: Any) -> int:
        counts = await prune(hub, dry_run=args.dry_run)
        days = retention_days(hub)
        print("would prune (dry run, nothing changed):" if args.dry_run else "pruned:")
        for kind in KINDS:
            print(f"  {kind}: {counts[kind]}")
        if not any(days.values()):
            print("# every SMSHUB_RETAIN_* setting is 0: everything is kept", file=sys.stderr)
        return 0

    return _run(_with_hub(settings, action))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every sub-command."""
    parser = argparse.ArgumentParser(prog="smshub", description="Self-hosted SMS integration hub.")
    parser.add_argument("--version", action="version", version=f"smshub {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_process_commands(sub)
    _add_account_commands(sub)
    _add_flow_commands(sub)
    _add_simulate_commands(sub)
    return parser


def _add_process_commands(sub: Commands) -> None:
    """serve, worker, db upgrade, prune."""
    serve = sub.add_parser("serve", help="run the HTTP server and the inline workers")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument(
        "--processes", type=int, default=None, help="processes to run (default SMSHUB_PROCESSES, 1)"
    )
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run queue workers (arq + Redis)")
    worker.set_defaults(func=cmd_worker)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="apply schema migrations")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=cmd_db_upgrade)

    prune = sub.add_parser("prune", help="apply the data retention settings (SMSHUB_RETAIN_*)")
    prune.add_argument(
        "--dry-run", action="store_true", help="print what would be pruned, change nothing"
    )
    prune.set_defaults(func=cmd_prune)


def _add_account_commands(sub: Commands) -> None:
    """apikey create, user create."""
    apikey = sub.add_parser("apikey", help="API keys")
    apikey_sub = apikey.add_subparsers(dest="apikey_command", required=True)
    create = apikey_sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.set_defaults(func=cmd_apikey_create)

    user = sub.add_parser("user", help="browser UI accounts")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    user_create = user_sub.add_parser("create", help="create an account (prompts if no flags)")
    user_create.add_argument("--email", default=None)
    user_create.add_argument(
        "--password", default=None, help="prefer the prompt: flags show in the process list"
    )
    user_create.add_argument(
        "--reset", action="store_true", help="set a new password for an existing account"
    )
    user_create.set_defaults(func=cmd_user_create)


def _add_flow_commands(sub: Commands) -> None:
    """flows import, flows export."""
    flows = sub.add_parser("flows", help="import and export flows")
    flows_sub = flows.add_subparsers(dest="flows_command", required=True)
    imp = flows_sub.add_parser("import", help="import a flow JSON file")
    imp.add_argument("file")
    imp.add_argument(
        "--publish", action="store_true", help="publish it (refused if it has problems)"
    )
    imp.set_defaults(func=cmd_flows_import)
    exp = flows_sub.add_parser("export", help="print a flow as canonical JSON")
    exp.add_argument("id")
    exp.add_argument(
        "--version", type=int, default=None, help="a published version (default: draft)"
    )
    exp.set_defaults(func=cmd_flows_export)


def _add_simulate_commands(sub: Commands) -> None:
    """simulate inbound."""
    simulate = sub.add_parser("simulate", help="simulate gateway traffic")
    sim_sub = simulate.add_subparsers(dest="simulate_command", required=True)
    inbound = sim_sub.add_parser("inbound", help="an SMS arriving on a simulator channel")
    inbound.add_argument(
        "--channel", default=None, help="simulator channel id (default: the first)"
    )
    inbound.add_argument("--from", dest="from_number", required=True)
    inbound.add_argument("--text", required=True)
    inbound.add_argument("--sim-slot", type=int, default=0, help="0 = SIM1 (default)")
    inbound.add_argument("--url", default=None, help="hub base URL (default SMSHUB_PUBLIC_URL)")
    inbound.set_defaults(func=cmd_simulate_inbound)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``smshub`` console script."""
    from hub.logs import configure_logging

    args = build_parser().parse_args(argv)
    settings = get_settings()
    configure_logging(settings)
    func: Callable[[argparse.Namespace, Settings], int] = args.func
    from hub.services.meta import SecretKeyError

    try:
        return func(args, settings)
    except SecretKeyError as exc:  # one line, no traceback: the operator must fix the key
        print(f"smshub: refusing to start: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

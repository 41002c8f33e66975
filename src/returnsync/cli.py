"""The command line: a thin shell over the services. Errors map to exit codes.

Exit codes: 0 ok; 1 findings or failures to act on; 2 bad input or configuration;
3 an outside system failed.
"""

from __future__ import annotations

import faulthandler
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from returnsync.errors import ConfigError, ConnectorError

if TYPE_CHECKING:
    from returnsync.engine.worker import Worker

app = typer.Typer(
    help="returnsync: ZigZag returns -> Khaos Control credit notes -> gateway refunds, in step.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
sim_app = typer.Typer(help="Run a simulator of an outside system as a real HTTP server.")
config_app = typer.Typer(help="Inspect the configuration.")
db_app = typer.Typer(help="Database schema.")
jobs_app = typer.Typer(
    help="The job queue: list, backlog per tenant, retry dead jobs, prune finished ones."
)
inbox_app = typer.Typer(help="Inbound messages as stored: list, replay quarantined ones.")
sku_app = typer.Typer(help="Fix SKU mapping problems (audited).")
app.add_typer(sim_app, name="sim")
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(jobs_app, name="jobs")
app.add_typer(inbox_app, name="inbox")
app.add_typer(sku_app, name="sku")

console = Console()
err = Console(stderr=True)

DEMO_DB = Path("var/demo.db")
TenantsOpt = Annotated[
    Path | None, typer.Option("--tenants", help="Tenants TOML file (default: settings).")
]


def _settings(tenants: Path | None = None) -> Any:
    from returnsync.config import Settings  # noqa: PLC0415 - keep `--help` fast

    settings = Settings()
    if tenants is not None:
        settings = settings.model_copy(update={"tenants_file": tenants})
    return settings


def _context(tenants: Path | None = None) -> Any:
    from returnsync.bootstrap import build  # noqa: PLC0415

    return build(_settings(tenants))


def _print_rows(rows: list[dict[str, Any]], fmt: str, columns: list[str]) -> None:
    if fmt == "json":
        console.print_json(json.dumps(rows, default=str))
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    console.print(table)


@config_app.command("check")
def config_check(tenants: TenantsOpt = None) -> None:
    """Print the effective configuration with secrets masked; exit 2 on a bad file."""
    from sqlalchemy.engine import make_url  # noqa: PLC0415

    from returnsync.config import load_tenants, masked  # noqa: PLC0415

    settings = _settings(tenants)
    loaded = load_tenants(settings.tenants_file)
    shown = settings.model_dump(mode="json")
    shown["database_url"] = make_url(settings.database_url).render_as_string(hide_password=True)
    console.print_json(
        json.dumps(
            {
                "settings": shown,
                "tenants": {k: masked(t) for k, t in loaded.items()},
            }
        )
    )


@db_app.command("migrate")
def db_migrate() -> None:
    """Bring the database schema up to date (safe to run any time)."""
    from returnsync.storage import migrations  # noqa: PLC0415
    from returnsync.storage.db import Database  # noqa: PLC0415

    db = Database(_settings().database_url)
    migrations.upgrade(db)
    console.print(f"database at revision {migrations.current(db)}")


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000, tenants: TenantsOpt = None) -> None:
    """Run the web service with workers and the polling sweep in one process (SQLite default)."""
    import uvicorn  # noqa: PLC0415

    from returnsync.bootstrap import runtime  # noqa: PLC0415
    from returnsync.web.app import create_app  # noqa: PLC0415

    ctx = _context(tenants)
    rt = runtime(ctx)
    rt.start()
    try:
        uvicorn.run(create_app(ctx), host=host, port=port, log_level="info")
    finally:
        rt.stop()


@app.command()
def worker(
    *,
    threads: Annotated[
        int | None, typer.Option(help="Worker threads (default RETURNSYNC_WORKER_THREADS).")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Worker name in leases (default RETURNSYNC_WORKER_ID).")
    ] = None,
    for_tenant: Annotated[
        list[str] | None,
        typer.Option(
            "--for-tenant",
            help="Claim only this tenant's jobs (repeatable; default RETURNSYNC_WORKER_TENANTS,"
            " else every tenant in the tenants file).",
        ),
    ] = None,
    tenants: TenantsOpt = None,
) -> None:
    """Run job workers only (scale out: many processes, on PostgreSQL)."""
    import threading  # noqa: PLC0415

    from returnsync.bootstrap import runtime  # noqa: PLC0415

    rt = runtime(_context(tenants), name=name, threads=threads, tenants=for_tenant or ())
    console.print(worker_banner(rt.worker))
    rt.worker.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        rt.worker.stop()


def worker_banner(worker: Worker) -> str:
    """What a starting worker says of itself: threads, whose jobs, its tenant turn."""
    claimed = sorted(worker.tenants or ())
    more = f" and {len(claimed) - 10} more" if len(claimed) > 10 else ""
    shown = ", ".join(claimed[:10]) + more
    turns = f"; another tenant's turn after {worker.turn} jobs of one" if worker.turn else ""
    return f"worker {worker.name}: {worker.threads} thread(s), jobs of {shown}{turns}"


@app.command()
def sweep(tenants: TenantsOpt = None) -> None:
    """Run one ZigZag polling sweep for every tenant now."""
    from returnsync.engine.scheduler import Scheduler  # noqa: PLC0415

    ctx = _context(tenants)
    queued = Scheduler(ctx, interval=0).tick()
    console.print(f"{queued} change(s) queued")


@jobs_app.command("list")
def jobs_list(
    status: str | None = typer.Option(None, help="pending|running|succeeded|dead"),
    fmt: str = typer.Option("table", "--format", help="table|json"),
    tenants: TenantsOpt = None,
) -> None:
    """List jobs, newest first."""
    from returnsync.services import queries  # noqa: PLC0415

    rows = queries.jobs(_context(tenants), status=status)
    _print_rows(rows, fmt, ["id", "tenant", "kind", "status", "attempts", "last_error"])


@jobs_app.command("backlog")
def jobs_backlog(
    fmt: str = typer.Option("table", "--format", help="table|json"),
    tenants: TenantsOpt = None,
) -> None:
    """Unfinished jobs per tenant: due now and for how long, waiting, running, dead."""
    from returnsync.services import queries  # noqa: PLC0415

    rows = queries.job_backlog(_context(tenants))
    if fmt != "json":
        for row in rows:
            row["due for"] = _age(row["due_for_seconds"]) if row["due"] else ""
    _print_rows(rows, fmt, ["tenant", "due", "due for", "waiting", "running", "dead"])


def _age(seconds: int) -> str:
    """`45 s`, `12 min`, `3.5 h`, `2.0 days`."""
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7_200:
        return f"{seconds // 60} min"
    if seconds < 172_800:
        return f"{seconds / 3_600:.1f} h"
    return f"{seconds / 86_400:.1f} days"


@jobs_app.command("retry")
def jobs_retry(
    job_id: int | None = typer.Option(None, "--id", help="One job; default every dead job."),
    actor: str = typer.Option(..., help="Your name, for the audit log."),
    tenants: TenantsOpt = None,
) -> None:
    """Send dead jobs back to the queue (audited)."""
    from returnsync.services import operations  # noqa: PLC0415

    count = operations.revive_dead_jobs(_context(tenants), actor=actor, job_id=job_id)
    console.print(f"{count} job(s) revived")


@jobs_app.command("prune")
def jobs_prune(
    actor: str = typer.Option(..., help="Your name, for the audit log."),
    older_than_days: int = typer.Option(
        90, min=1, help="Delete succeeded jobs finished more than this many days ago."
    ),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count them; delete nothing.")] = False,
    tenants: TenantsOpt = None,
) -> None:
    """Delete old succeeded jobs in batches, with a progress bar (audited); never pending,
    running or dead ones."""
    from datetime import timedelta  # noqa: PLC0415

    from rich.progress import Progress  # noqa: PLC0415

    from returnsync.services import operations  # noqa: PLC0415

    ctx = _context(tenants)
    older_than = timedelta(days=older_than_days)
    if dry_run:
        count = operations.prune_jobs(ctx, actor=actor, older_than=older_than, dry_run=True)
        console.print(f"{count} succeeded job(s) finished over {older_than_days} days ago")
        return
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task("deleting succeeded jobs", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        count = operations.prune_jobs(ctx, actor=actor, older_than=older_than, progress=advance)
    console.print(f"{count} succeeded job(s) deleted")


@inbox_app.command("list")
def inbox_list(
    status: str | None = typer.Option("quarantined", help="pending|processed|quarantined"),
    tenant: str | None = None,
    fmt: str = typer.Option("table", "--format", help="table|json"),
    tenants: TenantsOpt = None,
) -> None:
    """List inbound messages (quarantined by default), newest first, without their bodies."""
    from returnsync.storage import inbox  # noqa: PLC0415

    ctx = _context(tenants)
    with ctx.db.read() as conn:
        rows = inbox.listing(conn, status=status, tenant=tenant)
    _print_rows(rows, fmt, ["id", "tenant", "source", "received_at", "status", "size", "error"])


@inbox_app.command("replay")
def inbox_replay(
    message_id: int,
    actor: str = typer.Option(..., help="Your name, for the audit log."),
    tenants: TenantsOpt = None,
) -> None:
    """Replay a quarantined message once its cause is fixed (audited)."""
    from returnsync.services import redelivery  # noqa: PLC0415

    result = redelivery.replay_quarantined(_context(tenants), message_id, actor=actor)
    console.print(f"inbox message {result.message_id}: {result.outcome} ({result.detail})")
    if result.outcome == "still_quarantined":
        raise typer.Exit(1)


@app.command("exceptions")
def exceptions_list(
    tenant: str | None = None,
    fmt: str = typer.Option("table", "--format", help="table|json"),
    tenants: TenantsOpt = None,
) -> None:
    """The open exception queue."""
    from returnsync.services import queries  # noqa: PLC0415

    rows = queries.exceptions(_context(tenants), tenant=tenant, status="open")
    _print_rows(rows, fmt, ["id", "tenant", "kind", "owner", "return_ref", "message"])


@app.command()
def resolve(
    exception_id: int,
    actor: Annotated[str, typer.Option(help="Your name, for the audit log.")],
    note: Annotated[str, typer.Option(help="What you did about it.")],
    tenants: TenantsOpt = None,
) -> None:
    """Close an exception you have dealt with (audited); then `replay` what it blocked."""
    from returnsync.services import operations  # noqa: PLC0415

    done = operations.resolve_exception(_context(tenants), exception_id, actor=actor, note=note)
    console.print(f"resolved {done['kind']} for {done['tenant']} {done['return_ref']}")


@app.command()
def monitor(
    tenants: TenantsOpt = None,
    *,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Look at every return and payment now (default: a full pass when the last "
            "is older than RETURNSYNC_MONITOR_FULL_PASS_HOURS, else only what can have changed).",
        ),
    ] = False,
) -> None:
    """Reconcile every tenant now: open, refresh and auto-close findings."""
    from returnsync.engine.scheduler import Scheduler  # noqa: PLC0415

    for run in Scheduler(_context(tenants), interval=0).reconcile(full=full or None):
        kind = "full" if run.full else "incremental"
        console.print(
            f"{run.tenant}: {kind} pass over {run.scope} return(s): "
            f"{run.found} finding(s), {run.opened} new, {run.closed} closed"
        )


@app.command()
def findings(
    tenant: str | None = None,
    fmt: str = typer.Option("table", "--format", help="table|json"),
    tenants: TenantsOpt = None,
) -> None:
    """Open reconciliation findings, most severe first."""
    from returnsync.services import queries  # noqa: PLC0415

    rows = queries.findings(_context(tenants), tenant=tenant)
    _print_rows(
        rows, fmt, ["tenant", "kind", "severity", "owner", "return_ref", "line_id", "amount"]
    )


@app.command()
def close(
    tenant: Annotated[str, typer.Option(help="The tenant (retailer).")],
    month: Annotated[str, typer.Option(help="The month, e.g. 2026-10.")],
    out: Annotated[Path, typer.Option(help="Folder for the pack files.")] = Path("var/close"),
    tenants: TenantsOpt = None,
) -> None:
    """Month-end close pack (XLSX, PDF with a chart, JSON) with its content hash."""
    from returnsync.reports import closepack, closepack_render  # noqa: PLC0415

    ctx = _context(tenants)
    ctx.tenant(tenant)
    try:
        with ctx.db.read() as conn:
            pack = closepack.build(conn, tenant, month)
    except ValueError as exc:
        err.print(str(exc))
        raise typer.Exit(2) from exc
    paths = closepack_render.write_all(pack, out)
    for kind, path in paths.items():
        console.print(f"{kind}: {path}")
    console.print(f"content hash (SHA-256): {pack.digest}")


@sku_app.command("map")
def sku_map(
    tenant: str,
    sku: str,
    stock_code: str,
    actor: str = typer.Option(..., help="Your name, for the audit log."),
    tenants: TenantsOpt = None,
) -> None:
    """Map a ZigZag SKU to an existing Khaos stock code and replay what it blocked."""
    from returnsync.services import operations  # noqa: PLC0415

    replayed = operations.map_sku(_context(tenants), tenant, sku, stock_code, actor=actor)
    console.print(f"mapped {sku} -> {stock_code}; replayed {len(replayed)} return(s)")


@app.command()
def replay(
    tenant: str,
    actor: str = typer.Option(..., help="Your name, for the audit log."),
    tenants: TenantsOpt = None,
) -> None:
    """Replay every held return of a tenant whose exceptions are resolved."""
    from returnsync.services import operations  # noqa: PLC0415

    refs = operations.replay_held(_context(tenants), tenant, actor=actor)
    console.print(f"replayed {len(refs)} return(s)")


@app.command()
def timeline(tenant: str, return_ref: str, tenants: TenantsOpt = None) -> None:
    """One return's timeline, first event to last posting (for CX)."""
    from returnsync.services import queries  # noqa: PLC0415

    found = queries.return_detail(_context(tenants), tenant, return_ref)
    if found is None:
        err.print(f"no return {return_ref} for tenant {tenant}")
        raise typer.Exit(2)
    _print_rows(found["timeline"], "table", ["at", "actor", "action", "detail"])


@sim_app.command("zigzag")
def sim_zigzag(port: int = 8101, seed: int = 0, faults: str | None = None) -> None:
    """ZigZag: /token, the Returns API and webhooks, with an admin API under /_sim/."""
    from returnsync.simulators import zigzag  # noqa: PLC0415

    zigzag.main(port, seed, faults)


@sim_app.command("khaos")
def sim_khaos(port: int = 8102, seed: int = 0, faults: str | None = None) -> None:
    """Khaos Control Cloud: plays KCC against channel endpoints; admin API under /_sim/."""
    from returnsync.simulators import khaos  # noqa: PLC0415

    khaos.main(port, seed, faults)


@sim_app.command("gateway")
def sim_gateway(port: int = 8103, seed: int = 0, faults: str | None = None) -> None:
    """A Stripe-compatible payment gateway subset; admin API under /_sim/."""
    from returnsync.simulators import gateway  # noqa: PLC0415

    gateway.main(port, seed, faults)


@app.command()
def demo(
    *,
    exit_: Annotated[bool, typer.Option("--exit", help="Print the summary and exit.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    port: Annotated[int, typer.Option(help="Port for returnsync (0: any free port).")] = 8000,
    seed: Annotated[int, typer.Option(help="One seed drives data, faults and timing.")] = 7,
    returns_per_tenant: Annotated[
        int, typer.Option(help="Returns per retailer (3 retailers).")
    ] = 70,
    database: Annotated[Path, typer.Option(help="SQLite file (recreated).")] = DEMO_DB,
) -> None:
    """A small month for 3 retailers through the simulators on SQLite; then keep serving."""
    from returnsync.simulators.demo import run  # noqa: PLC0415

    code = run.main(
        exit_after=exit_,
        as_json=as_json,
        port=port,
        seed=seed,
        returns_per_tenant=returns_per_tenant,
        database=database,
        console=console if not as_json else err,
    )
    raise typer.Exit(code)


def _register_plugins() -> None:
    try:
        from returnsync.recon import cli as recon_cli  # noqa: PLC0415
    except ImportError:  # pragma: no cover - recon not installed in this build
        return
    recon_cli.register(app)


def main() -> None:
    """Entry point: run the CLI, mapping our error classes to exit codes.

    A crash in native code (a segmentation fault in a driver, say) prints every thread's
    Python stack to stderr before the process dies, so it can be traced (faulthandler).
    """
    faulthandler.enable()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _register_plugins()
    try:
        app()
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        sys.exit(2)
    except ConnectorError as exc:
        err.print(f"[red]{exc.system or 'outside system'} failed:[/red] {exc}")
        sys.exit(3)

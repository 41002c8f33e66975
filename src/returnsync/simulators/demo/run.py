"""`returnsync demo`: the month through the simulators, a summary, then keep serving."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from returnsync.simulators.demo.world import World, WorldOptions, start_world

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

SETTLE_TIMEOUT = 600.0  # seconds; the demo month settles in well under a minute


def main(
    *,
    exit_after: bool,
    as_json: bool,
    port: int,
    seed: int,
    returns_per_tenant: int,
    database: Path,
    console: Console,
) -> int:
    """Run the demo; returns the process exit code (1 if anything was duplicated or lost)."""
    for suffix in ("", "-wal", "-shm"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)
    options = WorldOptions(
        db_url=f"sqlite:///{database}",
        port=port,
        seed=seed,
        returns_per_tenant=returns_per_tenant,
    )
    world = start_world(options, log=lambda m: console.print(f"[dim]{m}[/dim]"))
    try:
        with Progress(
            TextColumn("returns settled"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            task = progress.add_task("settle", total=None)

            def show(done: int, expected: int) -> None:
                progress.update(task, completed=done, total=expected)

            settled = world.wait_settled(SETTLE_TIMEOUT, on_progress=show)
        summary = world.summary()
        summary["settled"] = settled
        if as_json:
            print(json.dumps(summary, indent=2, sort_keys=True))  # noqa: T201 - the product
        else:
            _print(console, summary, world)
        bad = summary["duplicate_credit_notes"] or summary["duplicate_refunds"] or not settled
        if exit_after:
            return 1 if bad else 0
        console.print(
            f"\nreturnsync is serving at [bold]{world.url}[/bold]  "
            f"(try {world.url}/summary.json, /exceptions.json, /returns.json). Ctrl-C to stop."
        )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            console.print("stopping")
        return 0
    finally:
        world.stop()


def _print(console: Console, summary: dict[str, object], world: World) -> None:
    table = Table("figure", "value", title="demo month (from the simulators' own state)")
    for key in (
        "tenants",
        "returns",
        "credit_notes",
        "refunds",
        "refunds_by_returnsync",
        "goodwill_refunds",
        "khaos_import_failures",
        "duplicate_credit_notes",
        "duplicate_refunds",
        "refunds_without_credit_note",
        "settled",
    ):
        table.add_row(key, str(summary[key]))
    for kind, n in sorted(dict(summary["exceptions_by_kind"]).items()):  # type: ignore[call-overload]
        table.add_row(f"open exception: {kind}", str(n))
    for state, n in sorted(dict(summary["returns_by_state"]).items()):  # type: ignore[call-overload]
        table.add_row(f"returnsync state: {state}", str(n))
    console.print(table)
    del world

"""`returnsync reconcile-files`: reconcile returns, credit notes, stock and refunds from exports.

A thin shell over `recon.files.reconcile_files` and `recon.render`. Exit codes:
0 no finding of severity high or above, 1 at least one, 2 bad input (a file that
cannot be read, a bad option, or bad rows: those are listed with file and line on
stderr, and the findings over the good rows are still written).
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path  # noqa: TC003 - Typer reads the annotations at run time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from returnsync.recon.columns import header_mapping
from returnsync.recon.findings import Severity
from returnsync.recon.policy import ReconPolicy, policy_from

if TYPE_CHECKING:
    from collections.abc import Iterator

    from returnsync.recon import render
    from returnsync.recon.findings import Finding

EXIT_FINDINGS = 1  # a finding of severity high or critical
EXIT_BAD_INPUT = 2  # like a usage error: the input must be fixed first
SHOWN_BAD_ROWS = 20  # listed on stderr; the rest are counted


class Format(StrEnum):
    """Output formats of `reconcile-files`."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    XLSX = "xlsx"


def register(app: typer.Typer) -> None:
    """Add the `reconcile-files` command to `app`."""
    app.command("reconcile-files")(reconcile_files)


def _file(help_text: str, *names: str) -> Any:
    return typer.Option(*names, help=help_text, exists=True, dir_okay=False, readable=True)


def reconcile_files(
    *,
    returns: Annotated[Path, _file("ZigZag returns export, one row per return line.")],
    credit_notes: Annotated[
        Path, _file("Khaos Control credit notes export, one row per line.", "--credits")
    ],
    stock: Annotated[Path, _file("Khaos Control stock movements export.")],
    refunds: Annotated[Path, _file("Payment gateway refunds export.")],
    sku_map: Annotated[
        Path | None, _file("SKU map (tenant,sku,stock_code); without it a SKU is its stock code.")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option(help="The moment SLAs are measured at (ISO 8601; default now).")
    ] = None,
    output_format: Annotated[
        Format, typer.Option("--format", help="Output format.")
    ] = Format.TABLE,
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
    columns: Annotated[
        Path | None, _file("TOML mapping canonical columns to the exports' headers.")
    ] = None,
    policy: Annotated[Path | None, _file("TOML policy: SLAs, tolerance, sites per tenant.")] = None,
    tolerance: Annotated[
        str | None, typer.Option(help="Rounding tolerance per credit line (default 0.01).")
    ] = None,
    sla_hours: Annotated[
        int | None, typer.Option(help="Hours from receipt to credit note (default 48).")
    ] = None,
) -> None:
    """Reconcile exports of ZigZag, Khaos Control and the payment gateway; report every gap."""
    # DuckDB and openpyxl load only when this command runs, not with every other command.
    from returnsync.recon import files, loading  # noqa: PLC0415

    errors = Console(stderr=True)
    recon_policy = _policy(policy, tolerance, sla_hours)
    headers = header_mapping(_toml(columns)) if columns else None
    moment = _as_of(as_of)
    if output_format is Format.XLSX and out is None:
        _fail("--out is required with --format xlsx")
    export = files.ExportFiles(
        returns=returns, credits=credit_notes, stock=stock, refunds=refunds, sku_map=sku_map
    )
    try:
        with errors.status("reading the exports") as status:
            run = files.reconcile_files(
                export, recon_policy, as_of=moment, headers=headers, on_step=status.update
            )
    except loading.FileError as error:
        _fail(str(error))
    with run:
        tally = _write(output_format, run.findings(), out)
        bad_rows, bad_count = run.bad_rows, run.bad_row_count
    for bad in bad_rows[:SHOWN_BAD_ROWS]:  # plain lines: file:line: reason, never wrapped
        typer.echo(f"{bad.file}:{bad.line}: {bad.reason}", err=True)
    if bad_count > SHOWN_BAD_ROWS:
        typer.echo(f"... and {bad_count - SHOWN_BAD_ROWS} more bad rows", err=True)
    if bad_count:
        raise typer.Exit(EXIT_BAD_INPUT)
    if tally.worst is not None and tally.worst.rank >= Severity.HIGH.rank:
        raise typer.Exit(EXIT_FINDINGS)


def _write(output_format: Format, findings: Iterator[Finding], out: Path | None) -> render.Tally:
    from returnsync.recon import render  # noqa: PLC0415 - see reconcile_files

    if output_format is Format.XLSX and out is not None:
        return render.write_xlsx(findings, out)
    handle = out.open("w", newline="", encoding="utf-8") if out else sys.stdout
    try:
        if output_format is Format.JSON:
            return render.write_json(findings, handle)
        if output_format is Format.CSV:
            return render.write_csv(findings, handle)
        return render.print_table(findings, Console(file=handle, width=200 if out else None))
    finally:
        if out:
            handle.close()


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def _toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        _fail(f"{path}: {error}")
    return {}


def _policy(path: Path | None, tolerance: str | None, sla_hours: int | None) -> ReconPolicy:
    """The policy file (if any), then the command-line overrides for every tenant."""
    try:
        base = policy_from(_toml(path)) if path else ReconPolicy()
    except ValueError as error:
        _fail(f"{path}: {error}")
        raise  # unreachable: _fail exits
    changes: dict[str, Any] = {}
    if tolerance is not None:
        try:
            changes["rounding_tolerance"] = Decimal(tolerance)
        except InvalidOperation:
            _fail(f"--tolerance must be a decimal amount, got {tolerance!r}")
    if sla_hours is not None:
        changes["received_to_credited_hours"] = sla_hours
    if not changes:
        return base
    return replace(
        base,
        default=replace(base.default, **changes),
        tenants={name: replace(p, **changes) for name, p in base.tenants.items()},
    )


def _as_of(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        _fail(f"--as-of must be an ISO 8601 time like 2026-10-31T23:59:59, got {text!r}")
        raise  # unreachable: _fail exits
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

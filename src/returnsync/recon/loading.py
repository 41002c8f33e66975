"""Load export files into typed DuckDB tables; every bad row reported with its line.

Each file is read once by DuckDB's CSV reader, typed as `recon.cells` says. A row
the reader cannot parse or convert (wrong number of cells, an unterminated quote,
`abc` in a number, 30 February) is caught by DuckDB's reject store; a row that
converts but breaks a check (a blank key, a negative or fractional count, money
not to the penny, an unknown disposition, a duplicate key) is kept with an `error`
and left out of reconciliation. Both become `BadRow(file, line, reason)`; nothing
is dropped silently. Lines are 1-based physical lines of the file (`recon.lines`).
"""

from __future__ import annotations

import csv
import mmap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from returnsync.recon import lines as line_numbers
from returnsync.recon import linking
from returnsync.recon.cells import cell, sql_list, sql_text
from returnsync.recon.columns import SCHEMAS
from returnsync.recon.policy import COUNTED_REFUND_STATUSES

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    import duckdb

    from returnsync.recon.policy import ReconPolicy

MAX_BAD_ROWS = 1000  # per file kept in full; the rest are counted
UNIQUE_KEYS = {"returns": ("tenant", "return_ref", "line_id"), "refunds": ("tenant", "refund_id")}
LEAN = {  # what reconciliation reads of each file (the rest is checked, not kept)
    "returns": (
        "tenant return_ref order_ref line_id sku quantity received_quantity disposition "
        "refund_amount currency received_at"
    ),
    "credits": "tenant credit_note associated_ref stock_code quantity gross currency issued_at",
    "stock": "tenant stock_code quantity",
    "refunds": "tenant refund_id payment_ref amount currency created_at credit_note",
    "sku_map": "tenant sku stock_code",
}


class FileError(Exception):
    """An export file cannot be read at all (missing, empty, or a header without the columns)."""

    def __init__(self, file: str, line: int, reason: str) -> None:
        super().__init__(f"{file}:{line}: {reason}")
        self.file, self.line, self.reason = file, line, reason


@dataclass(frozen=True, order=True)
class BadRow:
    """A row left out of reconciliation: which file, which 1-based line, and why."""

    file: str
    line: int
    reason: str


@dataclass
class Loaded:
    """What loading found: rows kept per file and the bad rows (first MAX_BAD_ROWS per file)."""

    rows: dict[str, int] = field(default_factory=dict)
    bad_rows: list[BadRow] = field(default_factory=list)
    bad_row_count: int = 0


def read_header(path: Path) -> list[str]:
    """The header cells of a CSV file; raises FileError when there is none."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), None)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise FileError(str(path), 1, f"cannot read the header: {error}") from error
    if not header:
        raise FileError(str(path), 1, "the file is empty (no header line)")
    return header


def has_spaces(path: Path) -> bool:
    """Whether the file holds a space anywhere (so trimming cells can matter)."""
    with path.open("rb") as handle:
        if path.stat().st_size == 0:
            return False
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return data.find(b" ") >= 0


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def load_file(
    con: duckdb.DuckDBPyConnection,
    name: str,
    path: Path,
    policy: ReconPolicy,
    headers: Mapping[str, str] | None = None,
    *,
    full: bool = False,
) -> Loaded:
    """Load `path` as table `name` (a key of `SCHEMAS`): all columns, or the lean set."""
    schema = SCHEMAS[name]
    header = read_header(path)
    if len(set(header)) != len(header):
        raise FileError(str(path), 1, "the header repeats a column name")
    reader_types = dict.fromkeys(header, "VARCHAR")
    trim = has_spaces(path)
    cells = {}
    missing = []
    for column, kind in schema.types:
        source = (headers or {}).get(column, column)
        if source not in header and kind not in {"text", "time?"}:
            missing.append(source)
            continue
        raw = _quoted(source) if source in header else None
        cells[column] = cell(column, kind, raw, policy, trim=trim)
        if source in header:
            reader_types[source] = cells[column].reader_type
    if missing:
        raise FileError(str(path), 1, f"missing column(s): {', '.join(missing)}")
    checks = "".join(c.check for c in cells.values())
    if name == "returns":  # a received line says when it was received
        quantity, received_at = cells["received_quantity"].value, cells["received_at"].value
        checks += (
            f"WHEN {quantity} > 0 AND {received_at} IS NULL "
            f"THEN 'received_at is blank but received_quantity is ' || {quantity}"
        )
    kept = schema.columns if full else tuple(LEAN[name].split())
    typed = ", ".join(f"{cells[c].value} AS {c}" for c in schema.columns)
    types = ", ".join(f"{sql_text(h)}: {sql_text(t)}" for h, t in reader_types.items())
    source_sql = (
        f"read_csv({sql_text(str(path))}, columns={{{types}}}, auto_detect=false, "
        "header=true, delim=',', quote='\"', escape='\"', store_rejects=true, "
        f"rejects_table='rejects_{name}', rejects_scan='scans_{name}')"
    )
    con.execute(
        f"CREATE OR REPLACE TABLE {name} AS SELECT {', '.join(kept)}{_extra(name, policy)}, "
        f"error, NULL::BIGINT AS dup_of FROM (SELECT {typed}, "
        f"CASE {checks or 'WHEN false THEN NULL'} END AS error FROM {source_sql})"
    )
    _mark_duplicates(con, name)
    return _report(con, name, path)


def _extra(name: str, policy: ReconPolicy) -> str:
    """Computed columns: the return a reference links to, site saleability, refund kinds."""
    when = " ".join(
        f"WHEN {sql_text(t)} THEN {sql_text(p.retailer_code)}" for t, p in policy.tenants.items()
    )
    default = sql_text(policy.default.retailer_code)
    code = f"(CASE tenant {when} ELSE {default} END)" if when else default
    if name == "credits":
        return f", {linking.sql_return_ref_for('associated_ref', code)} AS link_ref"
    if name == "stock":
        sites = " ".join(
            f"WHEN {sql_text(t)} THEN site IN {sql_list(p.saleable_sites)}"
            for t, p in policy.tenants.items()
        )
        anywhere = f"site IN {sql_list(policy.default.saleable_sites)}"
        saleable = f"(CASE tenant {sites} ELSE {anywhere} END)" if sites else anywhere
        return (
            f", {linking.sql_return_ref_for('reference', code)} AS link_ref, {saleable} AS saleable"
        )
    if name == "refunds":
        return (
            f", {linking.sql_return_ref_for('return_ref', code)} AS named, "
            f"status IN {sql_list(COUNTED_REFUND_STATUSES)} AS counted, "
            "return_ref IS NULL AND credit_note IS NULL AS manual"
        )
    return ""


def _mark_duplicates(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """A second good row with the key of an earlier one is a bad row (`dup_of` the first)."""
    key = UNIQUE_KEYS.get(name)
    if key is None:
        return
    cols = ", ".join(key)
    con.execute(
        f"WITH k AS (SELECT {cols} FROM {name} WHERE error IS NULL "
        f"GROUP BY {cols} HAVING count(*) > 1), "
        f"d AS (SELECT t.rowid AS row_no, min(t.rowid) OVER (PARTITION BY {cols}) AS first_row "
        f"FROM {name} AS t JOIN k USING ({cols}) WHERE t.error IS NULL) "
        f"UPDATE {name} SET error = 'duplicate', dup_of = d.first_row FROM d "
        f"WHERE {name}.rowid = d.row_no AND d.row_no <> d.first_row"
    )


def _report(con: duckdb.DuckDBPyConnection, name: str, path: Path) -> Loaded:
    kept, bad = con.execute(
        f"SELECT count(*) FILTER (WHERE error IS NULL), count(*) FILTER (WHERE error IS NOT NULL) "
        f"FROM {name}"
    ).fetchone() or (0, 0)
    rejected = con.execute(  # one entry per rejected record; its first problem is the reason
        f"SELECT line, min(error_message), any_value(csv_line) "
        f"FROM rejects_{name} GROUP BY line ORDER BY line"
    ).fetchall()
    loaded = Loaded(rows={name: kept}, bad_row_count=bad + len(rejected))
    if not loaded.bad_row_count:
        return loaded
    invalid = con.execute(
        f"SELECT rowid, error, dup_of FROM {name} WHERE error IS NOT NULL "
        f"ORDER BY rowid LIMIT {MAX_BAD_ROWS}"
    ).fetchall()
    located = [(line, text) for line, _, text in rejected]
    locate = line_numbers.Locator(path, accepted=kept + bad, rejected=located)
    for row_no, error, dup_of in invalid:
        why = error
        if dup_of is not None:
            why = f"duplicate {', '.join(UNIQUE_KEYS[name])}: the same as line {locate.row(dup_of)}"
        loaded.bad_rows.append(BadRow(str(path), locate.row(row_no), why))
    for line, reason, _ in rejected[:MAX_BAD_ROWS]:
        loaded.bad_rows.append(BadRow(str(path), locate.rejected(line), str(reason)))
    loaded.bad_rows.sort()
    return loaded

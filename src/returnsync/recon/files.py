"""Reconcile from export files: DuckDB gathers, `recon.rules` decides, findings stream out.

    with reconcile_files(files, policy, as_of=as_of) as run:
        for finding in run.findings():   # in `Finding.sort_key` order, never all in memory
            ...
        run.bad_rows                     # every row left out, with file and line

Memory stays bounded at any size: DuckDB works within `memory_limit` (spilling to a
temporary directory beyond it) on `threads` threads, and only candidate rows
(`recon.candidates`) cross into Python, a batch at a time.
"""

from __future__ import annotations

import heapq
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

import duckdb

from returnsync.recon import candidates, loading, rules, snapshot, sql, summary
from returnsync.recon.columns import SCHEMAS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from datetime import datetime
    from pathlib import Path
    from types import TracebackType

    from returnsync.recon.findings import Finding
    from returnsync.recon.policy import ReconPolicy

BATCH = 2048  # candidate rows fetched from DuckDB at a time
MEMORY_LIMIT = "640MB"  # DuckDB's share: 1M lines fit without spilling, the process stays < 1 GiB
THREADS = 2
LOAD_WORKERS = 2  # files loaded at once
OPTIONAL_TIMES = frozenset({"received_at", "processed_at", "moved_at"})  # None, not ""


@dataclass(frozen=True, kw_only=True)
class ExportFiles:
    """The four exports, and the SKU map (None: a SKU is its own stock code)."""

    returns: Path
    credits: Path
    stock: Path
    refunds: Path
    sku_map: Path | None = None

    def named(self) -> dict[str, Path]:
        """Each file by its table name, SKU map first."""
        files = {"sku_map": self.sku_map} if self.sku_map else {}
        return files | {
            "returns": self.returns,
            "credits": self.credits,
            "stock": self.stock,
            "refunds": self.refunds,
        }


@dataclass
class FileReconciliation:
    """An open reconciliation: bad rows now, findings as you iterate. Close it when done."""

    con: duckdb.DuckDBPyConnection
    policy: ReconPolicy
    as_of: datetime
    sku_map: bool
    rows: dict[str, int] = field(default_factory=dict)
    bad_rows: list[loading.BadRow] = field(default_factory=list)
    bad_row_count: int = 0
    _spill: tempfile.TemporaryDirectory[str] | None = None

    def findings(self) -> Iterator[Finding]:
        """Every finding, in report order, streamed from DuckDB a batch at a time."""
        policy, as_of = self.policy, self.as_of

        def lines(row: tuple[object, ...]) -> list[Finding]:
            facts = candidates.line_facts(row)
            return rules.decide_line(facts, policy.for_tenant(facts.tenant), as_of)

        def returns(row: tuple[object, ...]) -> list[Finding]:
            facts = candidates.return_facts(row)
            return rules.decide_return(facts, policy.for_tenant(facts.tenant), as_of)

        streams = [
            self._stream(candidates.lines_query(sku_map=self.sku_map), lines),
            self._stream(candidates.RETURNS, returns),
            self._stream(
                candidates.ORPHAN_NOTES,
                lambda row: rules.decide_orphan_credit_note(candidates.orphan_note_facts(row)),
            ),
            self._stream(
                candidates.ORPHAN_REFUNDS,
                lambda row: rules.decide_orphan_refund(candidates.orphan_refund_facts(row)),
            ),
        ]
        yield from heapq.merge(*streams, key=lambda finding: finding.sort_key)

    def _stream(
        self, query: str, decide: Callable[[tuple[object, ...]], list[Finding]]
    ) -> Iterator[Finding]:
        cursor = self.con.cursor()
        try:
            cursor.execute(f"SET search_path = '{summary.SCHEMA}'; SET TimeZone = 'UTC'")
            result = cursor.execute(query)
            while batch := result.fetchmany(BATCH):
                for row in batch:
                    yield from sorted(decide(row), key=lambda finding: finding.sort_key)
        finally:
            cursor.close()

    def close(self) -> None:
        """Release DuckDB and its spill directory."""
        self.con.close()
        if self._spill is not None:
            self._spill.cleanup()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def connect(
    *, memory_limit: str = MEMORY_LIMIT, threads: int = THREADS
) -> tuple[duckdb.DuckDBPyConnection, tempfile.TemporaryDirectory[str]]:
    """An in-memory DuckDB bounded in memory and threads, spilling to a private temp dir."""
    spill = tempfile.TemporaryDirectory(prefix="returnsync-recon-")
    con = duckdb.connect(
        config={
            "memory_limit": memory_limit,
            "threads": threads,
            "temp_directory": spill.name,
            # An in-memory database is never reopened, yet DuckDB still checkpoints it
            # (recompressing every table) after each 16 MiB of changes: 6% of a run.
            "checkpoint_threshold": "1TB",
        }
    )
    con.execute("SET TimeZone = 'UTC'")  # times without a zone in the files are UTC
    return con, spill


def _largest_first(item: tuple[str, Path]) -> int:
    return -item[1].stat().st_size


def reconcile_files(
    files: ExportFiles,
    policy: ReconPolicy,
    *,
    as_of: datetime,
    headers: Mapping[str, Mapping[str, str]] | None = None,
    memory_limit: str = MEMORY_LIMIT,
    threads: int = THREADS,
    on_step: Callable[[str], None] | None = None,
) -> FileReconciliation:
    """Load and check the files, gather facts; findings come from the returned object.

    `headers` maps, per file, canonical column names to the export's headers.
    Raises `loading.FileError` when a file cannot be read at all; rows that cannot
    be used are in `bad_rows` (the first `loading.MAX_BAD_ROWS` per file) and
    counted in `bad_row_count`.
    """
    con, spill = connect(memory_limit=memory_limit, threads=threads)
    run = FileReconciliation(con, policy, as_of, files.sku_map is not None, _spill=spill)

    def load(item: tuple[str, Path]) -> loading.Loaded:
        name, path = item
        if on_step:
            on_step(f"loading {path}")
        with con.cursor() as cursor:
            cursor.execute("SET TimeZone = 'UTC'")
            return loading.load_file(cursor, name, path, policy, (headers or {}).get(name))

    try:
        # Two files at a time: one CSV scan leaves part of the second core idle. DuckDB
        # still runs on `threads` threads; each load has its own cursor.
        with ThreadPoolExecutor(max_workers=LOAD_WORKERS) as pool:
            for loaded in pool.map(load, sorted(files.named().items(), key=_largest_first)):
                run.rows.update(loaded.rows)
                run.bad_rows += loaded.bad_rows
                run.bad_row_count += loaded.bad_row_count
        run.bad_rows.sort()
        if on_step:
            on_step("matching returns, credit notes, stock and refunds")
        for statement in summary.statements(policy, sku_map=run.sku_map):
            con.execute(statement)
        for name in files.named():  # only the candidates' copies are needed from here on
            con.execute(f"DROP TABLE main.{name}")
        con.execute(f"SET schema = '{summary.SCHEMA}'")
        con.execute(f"SET search_path = '{summary.SCHEMA}'")
        for statement in sql.prepare(policy, sku_map=run.sku_map):
            con.execute(statement)
        for statement in (candidates.CANDIDATE_LINES, candidates.CANDIDATE_RETURNS):
            con.execute(statement)
        con.execute(candidates.TRACED)
    except BaseException:
        run.close()
        raise
    return run


SNAPSHOT_TYPES: dict[str, type[Any]] = {
    "returns": snapshot.ReturnLine,
    "credits": snapshot.CreditLine,
    "stock": snapshot.StockMovement,
    "refunds": snapshot.Refund,
    "sku_map": snapshot.SkuLink,
}


def load_snapshot(
    files: ExportFiles,
    policy: ReconPolicy,
    *,
    as_of: datetime,
    headers: Mapping[str, Mapping[str, str]] | None = None,
) -> tuple[snapshot.Snapshot, list[loading.BadRow]]:
    """The good rows of the files as an in-memory `Snapshot`, and the bad rows.

    Same loading and checks as `reconcile_files`; meant for small files and for
    checking that the set-wise path and `rules.reconcile` agree.
    """
    con, spill = connect()
    try:
        records: dict[str, tuple[Any, ...]] = {}
        bad: list[loading.BadRow] = []
        for name, path in files.named().items():
            bad += loading.load_file(
                con, name, path, policy, (headers or {}).get(name), full=True
            ).bad_rows
            columns = SCHEMAS[name].columns
            kind = SNAPSHOT_TYPES[name]
            result = con.execute(
                f"SELECT {', '.join(columns)} FROM {name} WHERE error IS NULL ORDER BY rowid"
            )
            records[name] = tuple(
                kind(
                    **{
                        c: "" if v is None and c not in OPTIONAL_TIMES else v
                        for c, v in zip(columns, row, strict=True)
                    }
                )
                for row in result.fetchall()
            )
    finally:
        con.close()
        spill.cleanup()
    taken = snapshot.Snapshot(
        as_of=as_of,
        returns=records["returns"],
        credits=records["credits"],
        stock=records["stock"],
        refunds=records["refunds"],
        sku_links=records.get("sku_map"),
    )
    return taken, sorted(bad)

"""Reconcile N return lines from files against a bare DuckDB join of the same files.

    python -m bench.reconcile [--lines 1000000] [--out bench/out] [--repeat 3]

Generates the dataset once (seeded, with planted gaps; reused while its manifest
matches), then runs, each in a fresh subprocess and alternating `--repeat` times:

- `join`: the baseline. DuckDB loads the five files as its CSV reader types them
  (no checks) and runs the core matching: return lines full-outer-joined to credit
  lines on (tenant, return, stock code) and to refunds on (tenant, return), stock
  moves left-joined, counting matched and unmatched.
- `stream`: the same matching as one streaming query reading only the columns it
  needs (DuckDB's fastest form; shown for reference).
- `reconcile`: `recon.files.reconcile_files` with every check and every rule,
  every finding consumed; it must find exactly the planted gaps.

Wall seconds (spawn to exit, interpreter start included), CPU seconds (all threads
of the child) and peak RSS (the child's own `ru_maxrss`) are reported as medians;
the ratio is reconcile / join in wall seconds. On a machine shared with other work,
the CPU ratio shows the same comparison with less noise.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import duckdb
from rich.console import Console
from rich.table import Table

MIB = 1024 * 1024
PLANT_EACH = 50  # each finding kind planted this many times
VARIANTS = ("join", "stream", "reconcile")
LIMIT = 2.0  # reconcile may take at most this many times the join


def dataset(out: Path, lines: int, seed: int) -> Path:
    """The generated files for (lines, seed), generated on first use."""
    # returnsync is imported only where used, so the baseline child never pays for it.
    from returnsync.recon import generate  # noqa: PLC0415
    from returnsync.recon.findings import FindingKind  # noqa: PLC0415

    folder = out / f"data-{lines}-{seed}"
    manifest = folder / "manifest.json"
    wanted = {"lines": lines, "seed": seed, "plant_each": PLANT_EACH}
    if manifest.exists() and json.loads(manifest.read_text())["params"] == wanted:
        return folder
    started = time.perf_counter()
    plant = dict.fromkeys(FindingKind, PLANT_EACH)
    data = generate.generate(folder, lines=lines, seed=seed, plant=plant)
    expected = sorted([list(map(str, key)) for key in data.expected])
    manifest.write_text(
        json.dumps({"params": wanted, "expected": expected, "as_of": str(data.as_of)})
    )
    print(f"generated {data.lines:,} lines in {time.perf_counter() - started:.1f} s -> {folder}")
    return folder


JOIN = """
WITH m AS (SELECT tenant, upper(sku) AS sku, upper(stock_code) AS stock_code FROM {sku_map}),
r AS (SELECT r.tenant, r.return_ref, m.stock_code, r.received_quantity, r.refund_amount
      FROM {returns} r LEFT JOIN m ON m.tenant = r.tenant AND m.sku = upper(r.sku)),
c AS (SELECT tenant, regexp_replace(associated_ref, '^ZZ-[^-]+-', '') AS return_ref,
             upper(stock_code) AS stock_code, quantity, gross FROM {credits}),
s AS (SELECT tenant, regexp_replace(reference, '^ZZ-[^-]+-', '') AS return_ref,
             upper(stock_code) AS stock_code, sum(quantity) AS quantity FROM {stock} GROUP BY ALL),
f AS (SELECT tenant, return_ref, amount FROM {refunds})
SELECT count(*) FILTER (WHERE r.return_ref IS NOT NULL AND c.return_ref IS NOT NULL
                        AND f.return_ref IS NOT NULL) AS matched,
       count(*) FILTER (WHERE r.return_ref IS NOT NULL AND c.return_ref IS NULL) AS not_credited,
       count(*) FILTER (WHERE r.return_ref IS NULL AND c.return_ref IS NOT NULL) AS credit_only,
       count(*) FILTER (WHERE f.return_ref IS NULL) AS not_refunded,
       count(*) FILTER (WHERE r.return_ref IS NULL AND c.return_ref IS NULL) AS refund_only,
       count(*) FILTER (WHERE s.quantity IS DISTINCT FROM r.received_quantity) AS stock_differs
FROM r FULL OUTER JOIN c
    ON c.tenant = r.tenant AND c.return_ref = r.return_ref AND c.stock_code = r.stock_code
LEFT JOIN s ON s.tenant = r.tenant AND s.return_ref = r.return_ref AND s.stock_code = r.stock_code
FULL OUTER JOIN f ON f.tenant = coalesce(r.tenant, c.tenant)
                 AND f.return_ref = coalesce(r.return_ref, c.return_ref)
"""
FILES = ("sku_map", "returns", "credits", "stock", "refunds")


def run_join(folder: Path, *, stream: bool) -> dict[str, object]:
    """The baseline: load (unless streaming) and match with one query."""
    con = duckdb.connect(config={"threads": 2, "memory_limit": "640MB"})
    sources = {name: f"read_csv('{folder / name}.csv')" for name in FILES}
    if not stream:
        for name, source in sources.items():
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM {source}")
        sources = {name: name for name in FILES}
    row = con.execute(JOIN.format(**sources)).fetchone()
    return {"counts": list(row or ())}


def run_reconcile(folder: Path) -> dict[str, object]:
    """The full reconciliation; checks it found exactly the planted gaps."""
    from returnsync.recon import files  # noqa: PLC0415 - see dataset()
    from returnsync.recon.policy import ReconPolicy  # noqa: PLC0415

    manifest = json.loads((folder / "manifest.json").read_text())
    export = files.ExportFiles(
        returns=folder / "returns.csv",
        credits=folder / "credits.csv",
        stock=folder / "stock.csv",
        refunds=folder / "refunds.csv",
        sku_map=folder / "sku_map.csv",
    )
    as_of = datetime.fromisoformat(manifest["as_of"])
    with files.reconcile_files(export, ReconPolicy(), as_of=as_of) as run:
        found = sorted([str(x) for x in f.key] for f in run.findings())
        bad = run.bad_row_count
    return {"findings": len(found), "exact": found == manifest["expected"], "bad_rows": bad}


def child(variant: str, folder: Path) -> None:
    """Run one variant in this process and print its result as JSON."""
    started = time.perf_counter()
    if variant == "reconcile":
        result = run_reconcile(folder)
    else:
        result = run_join(folder, stream=variant == "stream")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["inner_seconds"] = time.perf_counter() - started
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime  # all threads, start-up included
    result["peak_rss_mib"] = usage.ru_maxrss * 1024 / MIB
    print(json.dumps(result))


def spawn(variant: str, folder: Path) -> dict[str, object]:
    """Run one variant in a fresh interpreter; wall seconds measured from here."""
    command = [sys.executable, "-m", "bench.reconcile", "--child", variant, "--data", str(folder)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=os.environ)  # noqa: S603
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    result["seconds"] = time.perf_counter() - started
    return result


def main() -> None:
    """Generate, run every variant `--repeat` times alternating, print and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data)
        return
    folder = dataset(args.out, args.lines, args.seed)
    runs: dict[str, list[dict[str, object]]] = {v: [] for v in VARIANTS}
    for _ in range(args.repeat):
        for variant in VARIANTS:
            runs[variant].append(spawn(variant, folder))
    report(args, runs)


def report(args: argparse.Namespace, runs: dict[str, list[dict[str, object]]]) -> None:
    """Print the table and the ratio; write the JSON next to the data."""

    def median(variant: str, key: str) -> float:
        return statistics.median(float(str(run[key])) for run in runs[variant])

    table = Table(title=f"Reconcile {args.lines:,} return lines (median of {args.repeat})")
    for column in ("variant", "wall s", "inner s", "CPU s", "peak RSS MiB", "runs (wall s)"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for variant in VARIANTS:
        walls = ", ".join(f"{float(str(run['seconds'])):.2f}" for run in runs[variant])
        table.add_row(
            variant,
            f"{median(variant, 'seconds'):.2f}",
            f"{median(variant, 'inner_seconds'):.2f}",
            f"{median(variant, 'cpu_seconds'):.2f}",
            f"{median(variant, 'peak_rss_mib'):.0f}",
            walls,
        )
    console = Console()
    console.print(table)
    ratio = median("reconcile", "seconds") / median("join", "seconds")
    cpu_ratio = median("reconcile", "cpu_seconds") / median("join", "cpu_seconds")
    stream_ratio = median("reconcile", "seconds") / median("stream", "seconds")
    exact = all(run["exact"] for run in runs["reconcile"])
    peak = max(float(str(run["peak_rss_mib"])) for run in runs["reconcile"])
    console.print(
        f"ratio reconcile/join {ratio:.2f} (limit {LIMIT:.1f}); "
        f"reconcile/stream {stream_ratio:.2f}; CPU reconcile/join {cpu_ratio:.2f}; "
        f"peak RSS {peak:.0f} MiB (limit 1024); "
        f"planted gaps found exactly: {exact}"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "lines": args.lines,
        "repeat": args.repeat,
        "runs": runs,
        "ratio": ratio,
        "ratio_stream": stream_ratio,
        "ratio_cpu": cpu_ratio,
        "peak_rss_mib": peak,
        "exact": exact,
    }
    path = args.out / f"reconcile-{args.lines}.json"
    path.write_text(json.dumps(result, indent=2))
    console.print(f"results: {path}")
    if ratio > LIMIT or peak >= 1024 or not exact:
        sys.exit(1)


if __name__ == "__main__":
    main()

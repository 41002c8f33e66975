"""A Khaos catalogue push: 200,000 StockItems, 100 per POST, then drained by our workers.

    python -m bench.catalog [--items 200000] [--batch 100] [--workers 4]

Phase 1, acceptance: our app (no workers) runs under uvicorn in its own process on a fresh
database; this process POSTs `StockItems` documents (K-1 StockUpload shape: `Items` with
StockID, StockCode, OtherRef, StockDescription, Barcodes; `Deleted` empty) to
`/khaos/{tenant}/stock` with the channel's Basic auth, one at a time by default, as KCC
does (it delivers one push of a kind at a time, K-13). Every POST must answer 200: each is
stored in the inbox with its `khaos_push` job before the answer.

Phase 2, processing: the server is stopped; a fresh process starts `--workers` worker
threads on the same database and runs the stored jobs until every push is processed (or
`--max-seconds` passes: the figures are then partial and say so). All pushes of one tenant
share one serial key, so one tenant's catalogue is applied by one worker at a time
whatever `--workers` says. The processing rate is sampled every second; the first and
last tenth are reported apart, because each push re-reads the catalogue stored so far.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench import common
from returnsync.bootstrap import build
from returnsync.config import Settings
from returnsync.engine.handlers import HANDLERS
from returnsync.engine.worker import Worker


def document(start: int, count: int) -> bytes:
    """One StockItems push of `count` items numbered from `start`."""
    items = [
        {
            "StockID": str(100_000 + n),
            "StockCode": f"SKU-{n:07d}",
            "OtherRef": f"OR-{n:07d}",
            "StockDescription": f"Bench stock item {n}",
            "Barcodes": [{"Barcode": f"50{n:011d}"}],
        }
        for n in range(start, start + count)
    ]
    return json.dumps({"Items": items, "Deleted": []}, separators=(",", ":")).encode()


def accept(base: str, args: argparse.Namespace) -> dict[str, Any]:
    """Phase 1: push every document; returns timings and statuses."""
    user, password = common.channel_auth(0)
    url = f"{base}/khaos/{common.tenant_id(0)}/stock"
    starts = list(range(0, args.items, args.batch))
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    with httpx.Client(auth=(user, password), timeout=120.0) as client:

        def push(start: int) -> tuple[float, int]:
            body = document(start, min(args.batch, args.items - start))
            began = time.perf_counter()
            response = client.post(url, content=body, headers={"Content-Type": "application/json"})
            return time.perf_counter() - began, response.status_code

        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            for latency, status in pool.map(push, starts):
                latencies.append(latency)
                statuses[str(status)] = statuses.get(str(status), 0) + 1
        seconds = time.perf_counter() - started
    return {
        "posts": len(starts),
        "items": args.items,
        "seconds": seconds,
        "items_per_s": args.items / seconds,
        "posts_per_s": len(starts) / seconds,
        "p50_ms": common.ms(common.percentile(latencies, 50)),
        "p99_ms": common.ms(common.percentile(latencies, 99)),
        "statuses": statuses,
    }


def drain(job: dict[str, Any]) -> dict[str, Any]:
    """Phase 2 (in a fresh process): workers apply the stored pushes; sampled every second.

    `job`: url, threads, posts, batch, max_seconds, log_path. Warnings and errors go to
    the log file and are counted (claim failures, lock timeouts).
    """
    url, posts, batch = job["url"], job["posts"], job["batch"]
    threads, max_seconds = job["threads"], job["max_seconds"]
    tally = common.LogTally(Path(job["log_path"]))
    ctx = build(Settings(database_url=url), tenants=common.tenants(1), migrate=False)
    reader = common.Reader(url)
    done_sql = "SELECT COUNT(*) FROM inbox WHERE source = 'kcc_stock' AND status <> 'pending'"
    worker = Worker(ctx, HANDLERS, name="bench", threads=threads)
    started = time.perf_counter()
    worker.start()
    samples: list[tuple[float, int]] = [(0.0, 0)]
    try:
        while True:
            time.sleep(1.0)
            done = int(reader.scalar(done_sql) or 0)
            samples.append((time.perf_counter() - started, done))
            if done >= posts or samples[-1][0] > max_seconds:
                break
    finally:
        worker.stop()
    seconds = samples[-1][0]
    done = samples[-1][1]
    stored = int(reader.scalar("SELECT COUNT(*) FROM stock_items") or 0)
    quarantined = int(reader.scalar("SELECT COUNT(*) FROM inbox WHERE status = 'quarantined'") or 0)
    reader.close()
    ctx.db.dispose()
    return {
        "complete": done >= posts,
        "posts_processed": done,
        "items_processed": min(done * batch, stored) if done < posts else stored,
        "stock_items_rows": stored,
        "quarantined": quarantined,
        "seconds": seconds,
        "items_per_s": done * batch / seconds if seconds else None,
        "first_tenth_items_per_s": _window_rate(samples, posts, batch, 0.0, 0.1),
        "last_tenth_items_per_s": _window_rate(samples, posts, batch, 0.9, 1.0),
        "last_minute_items_per_s": _last_minute(samples, batch),
        "log": dict(tally.counts),
        "samples": samples,
    }


def _window_rate(
    samples: list[tuple[float, int]], posts: int, batch: int, low: float, high: float
) -> float | None:
    start = next(((t, n) for t, n in samples if n >= low * posts), None)
    end = next(((t, n) for t, n in samples if n >= high * posts), None)
    if start is None or end is None or end[0] <= start[0]:
        return None
    return (end[1] - start[1]) * batch / (end[0] - start[0])


def _last_minute(samples: list[tuple[float, int]], batch: int) -> float | None:
    end = samples[-1]
    start = next(((t, n) for t, n in samples if t >= end[0] - 60.0), None)
    if start is None or end[0] <= start[0]:
        return None
    return (end[1] - start[1]) * batch / (end[0] - start[0])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `python -m bench catalog`."""
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=100, help="items per POST (KCC: 100)")
    parser.add_argument("--concurrency", type=int, default=1, help="POSTs in flight (KCC: 1)")
    parser.add_argument("--workers", type=int, default=4, help="worker threads for phase 2")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--max-seconds", type=float, default=480.0, help="phase 2 time limit")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run both phases; returns the figures (and table rows)."""
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    wall0 = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(dir=out) as workdir,
        common.fresh_database(args.database, Path(workdir)) as url,
    ):
        with common.server(url, tenant_count=1) as (base, pid):
            cpu0 = common.process_cpu(pid)
            accepted = accept(base, args)
            accepted["server_cpu_share"] = (common.process_cpu(pid) - cpu0) / accepted["seconds"]
        print(
            f"catalog accept  {accepted['items_per_s']:10,.0f} items/s  "
            f"({accepted['posts']:,} POSTs, p50 {accepted['p50_ms']} ms, p99 "
            f"{accepted['p99_ms']} ms, statuses {accepted['statuses']})"
        )
        job = {
            "url": url,
            "threads": args.workers,
            "posts": accepted["posts"],
            "batch": args.batch,
            "max_seconds": args.max_seconds,
            "log_path": str(out / "catalog-drain.log"),
        }
        processed = common.isolated(drain, job)
        print(
            f"catalog process {processed['items_per_s'] or 0:10,.0f} items/s  "
            f"({processed['posts_processed']:,}/{accepted['posts']:,} pushes in "
            f"{processed['seconds']:.0f}s; first tenth "
            f"{common.fmt(processed['first_tenth_items_per_s'])}/s, last minute "
            f"{common.fmt(processed['last_minute_items_per_s'])}/s; log {processed['log']})"
        )
    return _figures(args, accepted, processed, time.perf_counter() - wall0)


def _log_note(log: dict[str, int]) -> str:
    locked = log.get("sqlite database is locked", 0)
    failed = log.get("worker claim failed", 0)
    return f"{failed} worker claim failures ({locked} 'database is locked')"


def _figures(
    args: argparse.Namespace, accepted: dict[str, Any], processed: dict[str, Any], wall: float
) -> dict[str, Any]:
    db = "SQLite file" if args.database == "sqlite" else "PostgreSQL"
    ok = accepted["statuses"] == {"200": accepted["posts"]}
    rows = [
        common.row(
            "catalog",
            f"accept ({db}, {args.batch} items/POST, {args.concurrency} in flight)",
            "items/s",
            common.fmt(accepted["items_per_s"]),
            f"{args.items:,} items in {accepted['seconds']:.1f} s; "
            f"{accepted['posts_per_s']:,.0f} POST/s, p50 {accepted['p50_ms']} ms, "
            f"p99 {accepted['p99_ms']} ms; all 200: {ok}; server CPU "
            f"{accepted['server_cpu_share']:.2f} core",
        ),
    ]
    partial = "" if processed["complete"] else f" PARTIAL (stopped at {args.max_seconds:.0f} s)"
    rows.append(
        common.row(
            "catalog",
            f"process ({args.workers} worker threads, one tenant)",
            "items/s",
            common.fmt(processed["items_per_s"]),
            f"{processed['items_processed']:,}/{args.items:,} items in "
            f"{processed['seconds']:.0f} s{partial}; first tenth of the pushes "
            f"{common.fmt(processed['first_tenth_items_per_s'])}/s, last tenth "
            f"{common.fmt(processed['last_tenth_items_per_s'])}/s, last minute "
            f"{common.fmt(processed['last_minute_items_per_s'])}/s; stock_items rows "
            f"{processed['stock_items_rows']:,}; {_log_note(processed['log'])}",
        )
    )
    if not processed["complete"] and processed["items_per_s"]:
        rows.append(
            common.row(
                "catalog",
                f"process all {args.items:,} (EXTRAPOLATED)",
                "seconds",
                "> " + common.fmt(args.items / processed["items_per_s"]),
                "lower bound at the average rate so far; the rate falls as the catalogue "
                "grows, so the real figure is higher; not measured",
            )
        )
    return {
        "bench": "catalog",
        "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "accept": accepted,
        "process": {k: v for k, v in processed.items() if k != "samples"},
        "process_samples": processed["samples"],
        "wall_seconds": wall,
        "rows": rows,
    }


def main() -> None:
    """`python -m bench.catalog`: run and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--out", type=Path, default=common.OUT)
    result = run(parser.parse_args())
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2)[:4000])


if __name__ == "__main__":
    main()

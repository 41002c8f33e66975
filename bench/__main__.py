"""Run the benchmarks and print one results table.

    python -m bench [ingest|pipeline|catalog|claim|readers|reconcile|all] [options]

`python -m bench <name> --help` lists a benchmark's options; `all` runs the six with
their defaults (`--quick`: tiny sizes, a smoke run). The table (markdown) is printed and
written to `<out>/results.md`; every figure goes to `<out>/results.json`, merged with the
benchmarks of earlier runs so that one file holds the latest of each. `reconcile`
delegates to `bench/reconcile.py` (its options follow the name).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import catalog, claim, common, ingest, pipeline, readers

if TYPE_CHECKING:
    from collections.abc import Callable

BENCHES: dict[str, Any] = {
    "ingest": ingest,
    "pipeline": pipeline,
    "catalog": catalog,
    "claim": claim,
    "readers": readers,
}
ORDER = ("ingest", "pipeline", "catalog", "claim", "readers", "reconcile")  # `all`, and the table
QUICK: dict[str, dict[str, Any]] = {
    "ingest": {"events": 200, "warmup": 20, "concurrency": 16},
    "pipeline": {
        "returns": 20,
        "tenants": 1,
        "configs": "sqlite:2,postgres:2",
        "max_seconds": 180.0,
    },
    "catalog": {"items": 500, "max_seconds": 120.0},
    "claim": {"backlog": 200, "claims": 20},
    "readers": {"seconds": 0.5, "history": 500, "pollers": 2},
    "reconcile": {"argv": ["--lines", "20000", "--repeat", "1"]},
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=common.OUT, help="where results go")
    sub = parser.add_subparsers(dest="bench", required=True)
    for name, module in BENCHES.items():
        module.add_arguments(sub.add_parser(name, help=module.__doc__.splitlines()[0]))
    sub.add_parser("reconcile", help="bench/reconcile.py (its own options follow the name)")
    every = sub.add_parser("all", help="ingest, pipeline, catalog, claim, readers and reconcile")
    every.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    every.add_argument("--skip", default="", help="comma-separated benchmarks to leave out")
    return parser


def _defaults(name: str, out: Path, quick: bool) -> argparse.Namespace:
    if name == "reconcile":
        return argparse.Namespace(out=out, argv=list(QUICK["reconcile"]["argv"]) if quick else [])
    parser = argparse.ArgumentParser()
    BENCHES[name].add_arguments(parser)
    args = parser.parse_args([])
    if quick:
        for key, value in QUICK[name].items():
            setattr(args, key, value)
    args.out = out
    return args


def reconcile(args: argparse.Namespace) -> dict[str, Any]:
    """Delegate to `bench/reconcile.py`'s main (imported only now), then read its JSON."""
    try:
        from bench import reconcile as module  # noqa: PLC0415 - owned elsewhere; optional
    except ImportError as exc:
        return _missing(f"bench/reconcile.py not importable: {exc}")
    entry: Callable[[], None] | None = getattr(module, "main", None)
    if entry is None:
        return _missing("bench/reconcile.py has no main()")
    argv = list(args.argv)
    if "--out" not in argv:
        argv += ["--out", str(args.out)]
    started = time.time()
    saved = sys.argv
    sys.argv = ["bench.reconcile", *argv]
    exit_code: object = 0
    try:
        entry()
    except SystemExit as exc:  # it exits 1 when a limit is missed; we still report figures
        exit_code = exc.code
    finally:
        sys.argv = saved
    out = Path(argv[argv.index("--out") + 1])
    fresh = [p for p in out.glob("reconcile-*.json") if p.stat().st_mtime >= started - 1]
    if not fresh:
        return _missing(f"reconcile wrote no results (exit {exit_code})")
    data = json.loads(max(fresh, key=lambda p: p.stat().st_mtime).read_text())
    return {
        "bench": "reconcile",
        "exit_code": exit_code,
        "figures": {k: v for k, v in data.items() if k != "runs"},
        "wall_seconds": time.time() - started,
        "rows": [
            common.row(
                "reconcile",
                f"{data.get('lines', 0):,} lines from files vs bare DuckDB join",
                "ratio",
                f"{data.get('ratio', 0):.2f}",
                f"reconcile/stream {data.get('ratio_stream', 0):.2f}; peak RSS "
                f"{data.get('peak_rss_mib', 0):.0f} MiB; planted gaps exact: "
                f"{data.get('exact')}; exit {exit_code}",
            )
        ],
    }


def _missing(why: str) -> dict[str, Any]:
    return {"bench": "reconcile", "rows": [common.row("reconcile", "-", "-", "-", why)]}


def run_one(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """One benchmark, with the machine's load before and after (a noisy machine shows)."""
    load_before = os.getloadavg()
    started = time.perf_counter()
    result = reconcile(args) if name == "reconcile" else BENCHES[name].run(args)
    result["machine"] = common.machine()
    result["load_average_before"] = [round(x, 2) for x in load_before]
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    result["wall_seconds"] = time.perf_counter() - started
    return result


def table(results: dict[str, dict[str, Any]]) -> str:
    """The markdown results table, with the machine and date of each benchmark."""
    lines = [
        "| benchmark | case | figure | value | notes |",
        "|---|---|---|---:|---|",
    ]
    footnotes = []
    for name in ORDER:
        result = results.get(name)
        if result is None:
            continue
        lines.extend(
            f"| {r['bench']} | {r['case']} | {r['figure']} | {r['value']} | {r['notes']} |"
            for r in result["rows"]
        )
        machine = result.get("machine", {})
        if machine:
            footnotes.append(
                f"- {name}: {machine['date']}, {machine['cpu']} ({machine['cores']} cores, "
                f"{machine['ram_gib']} GiB), {machine['os']}, Python {machine['python']}; "
                f"load average {result['load_average_before'][0]} before, "
                f"{result['load_average_after'][0]} after; wall {result['wall_seconds']:.0f} s"
            )
    return "\n".join([*lines, "", *footnotes])


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    common.stop_on_sigterm()
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if args.bench == "reconcile":
        args.argv = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.bench == "all":
        skip = {s.strip() for s in args.skip.split(",") if s.strip()}
        names = [n for n in ORDER if n not in skip]
        todo = [(n, _defaults(n, out, args.quick)) for n in names]
    else:
        todo = [(args.bench, args)]
    path = out / "results.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    merged: dict[str, Any] = stored.get("benches", {})
    now: dict[str, dict[str, Any]] = {}
    for name, bench_args in todo:
        print(f"== {name}", flush=True)
        now[name] = run_one(name, bench_args)
        merged[name] = now[name]
        path.write_text(json.dumps({"benches": merged}, indent=2, default=str))
    text = table(now)
    (out / "results.md").write_text(table(merged) + "\n")
    print()
    print(text)
    print(f"\nresults: {path} and {out / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Returns end to end against the three simulators, on SQLite and on PostgreSQL.

    python -m bench.pipeline [--returns 10000] [--configs sqlite:1,postgres:1,postgres:2,postgres:4]

Each configuration (database, workers) runs in a fresh process on a fresh database:
`start_world` starts the ZigZag, Khaos Control and gateway simulators with `--latency`
(FaultSpec `latency_ms`) on every request in this process, our web app and polling sweep
in a process of its own and the workers as `returnsync worker` processes (`postgres:4` is
four worker processes of one thread each, as PostgreSQL deployments scale out;
`postgres:4t` is four worker threads in this process, with our web app and sweep, all
sharing its GIL with the simulators), seeds the month and
posts the ZigZag scenario; then returns flow: webhooks -> sync -> staged for KCC -> KCC
pulls and processes them -> credit notes pushed to us -> refund at the gateway -> ZigZag
told. Progress is read beside the run (a read-only connection, so SQLite's write lock is
not taken by the measurement).

Figures per configuration:

- returns/s: returns settled (terminal, or held on a person) / seconds from the first
  webhook we stored to the moment the last return settled; also the rate between 10 %
  and 90 % settled (the steady state, without start-up and tail).
- outside-system calls per return: every HTTP request except the simulators' admin API
  (`/_sim/...`), split by direction: our calls to ZigZag and to the gateway, counted where
  the simulators receive them (their fault middleware; the workers are other processes);
  ZigZag's webhook deliveries and KCC's config/pull/push calls to us, counted at
  `httpx.Client.send` in this process (all clients here are httpx).
- stock-update lag: for each StockStatuses push Khaos raised after the first webhook,
  from the moment Khaos queued it (its stock had just moved; taken by wrapping the
  simulator's `Outbox.put`) to our `inbox.processed_at` for that body, which is when the
  `stock_levels` rows were written (same transaction, same clock). Split into the channel
  part (raised -> we stored it) and our queue part (stored -> applied).
- PostgreSQL: `pg_stat_user_tables` for `jobs` and `serial_locks` (dead tuples, HOT
  updates), sampled during the run and read once more after it.
- CPU (cores used): this process (the three simulators; about 1.0 core is its GIL's
  ceiling), our web process (webhooks, KCC channel endpoints, sweep) and the workers, each
  also shown on its own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import tempfile
import threading
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench import common
from returnsync.domain.states import TERMINAL, ReturnState
from returnsync.simulators.demo.world import WorldOptions, start_world
from returnsync.simulators.khaos import outbox
from returnsync.simulators.runtime import FaultInjector

DEFAULT_CONFIGS = "sqlite:1,postgres:1,postgres:2,postgres:4"
SUMMARY_KEYS = (
    "returns_by_state",
    "credit_notes",
    "refunds_by_returnsync",
    "duplicate_credit_notes",
    "duplicate_refunds",
    "refunds_without_credit_note",
    "khaos_import_failures",
    "exceptions_by_kind",
)
# Staged for KCC, never served, yet a later seq of the same tenant was: the pull cursor
# (last seq served) has passed it, so KCC will never import it.
SKIPPED_SQL = """
SELECT COUNT(*) FROM staged_returns s
WHERE s.pulled_at IS NULL
  AND s.seq < (SELECT MAX(t.seq) FROM staged_returns t
               WHERE t.tenant = s.tenant AND t.pulled_at IS NOT NULL)
"""
VERSION = re.compile(r"^v\d+$")  # /v1/refunds keeps its v1; other digits are ids


# -- instrumentation (installed in the measuring process only) ---------------------------------


class CallCounter:
    """Counts every httpx request by destination port, method and path shape."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[int, str, str]] = Counter()
        self._lock = threading.Lock()

    def install(self, *, servers: set[int]) -> None:
        """Count requests to the simulators on `servers` (their ports) where they arrive (the
        senders may be other processes), and every other httpx request where it is sent."""
        original = httpx.Client.send
        original_call = FaultInjector.__call__
        counter = self

        def send(client: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
            if (request.url.port or 0) not in servers:
                counter.add(request.url.port or 0, request.method, request.url.path)
            return original(client, request, **kwargs)

        async def call(injector: FaultInjector, scope: Any, receive: Any, send: Any) -> None:
            server = scope.get("server") or ("", 0)
            if scope["type"] == "http" and server[1] in servers:
                counter.add(server[1], scope["method"], scope["path"])
            await original_call(injector, scope, receive, send)

        httpx.Client.send = send  # type: ignore[method-assign]
        FaultInjector.__call__ = call  # type: ignore[method-assign]

    def add(self, port: int, method: str, path: str) -> None:
        """Count one request (the simulators' admin API is not counted)."""
        if path.startswith("/_sim"):
            return
        shape = "/".join(
            "{id}" if any(ch.isdigit() for ch in part) and not VERSION.match(part) else part
            for part in path.split("/")
        )
        with self._lock:
            self.counts[(port, method, shape)] += 1

    def snapshot(self) -> Counter[tuple[int, str, str]]:
        """A copy of the counts now."""
        with self._lock:
            return Counter(self.counts)


class PushClock:
    """When Khaos queued each StockStatuses push (wall clock), keyed by its exact body."""

    def __init__(self) -> None:
        self.raised: list[tuple[str, float]] = []
        self._lock = threading.Lock()

    def install(self) -> None:
        """Wrap the Khaos simulator's `Outbox.put`."""
        original = outbox.Outbox.put
        clock = self

        def put(box: Any, kind: str, payload: dict[str, Any], items: int, at: str) -> Any:
            job = original(box, kind, payload, items, at)
            if kind == "StockStatuses":
                with clock._lock:
                    clock.raised.append((job.body.decode("utf-8"), time.time()))
            return job

        outbox.Outbox.put = put  # type: ignore[method-assign]


# -- one configuration (runs in a fresh process) ------------------------------------------------


def measure(cfg: dict[str, Any]) -> dict[str, Any]:
    """Run one world to settled (or to the deadline) and measure it."""
    tally = common.LogTally(Path(cfg["log_path"]))
    calls = CallCounter()
    simulators: set[int] = set()  # ZigZag's and the gateway's ports, once they listen
    calls.install(servers=simulators)
    pushes = PushClock()
    pushes.install()
    proc = psutil.Process()
    t_start = time.time()
    world = start_world(_options(cfg))
    t_world = time.time()
    expected = sum(len(ids) for ids in world.return_ids.values())
    simulators.update({_port(world.zigzag.url), _port(world.gateway.url)})
    ports = {
        _port(world.zigzag.url): "zigzag",
        _port(world.gateway.url): "gateway",
        _port(world.khaos.url): "khaos",
        _port(world.url): "ours",
    }
    reader = common.Reader(cfg["url"])
    cpu0 = _cpu_parts(proc, world)
    watch = _watch(
        reader, expected, pg=cfg["database"] == "postgres", until=t_world + cfg["max_seconds"]
    )
    t_end = time.time()
    cpu = {k: v - cpu0[k] for k, v in _cpu_parts(proc, world).items()}
    counts = calls.snapshot()
    first = reader.scalar("SELECT MIN(received_at) FROM inbox WHERE source = 'zigzag_webhook'")
    t0 = common.epoch(first) if first is not None else t_world
    ages = [
        common.epoch(updated) - common.epoch(created)
        for created, updated in reader.all(
            "SELECT created_at, updated_at FROM returns "
            "WHERE state IN ('closed', 'nothing_to_credit', 'cancelled')"
        )
    ]
    skipped = reader.scalar(SKIPPED_SQL)
    t_done = next(t for t, n in watch["samples"] if n == watch["settled"])
    result = {
        "label": cfg["label"],
        "database": cfg["database"],
        "workers": cfg["workers"],
        "worker_threads": cfg["threads"],
        "returns": expected,
        "settled": watch["settled"],
        "complete": watch["t_settled"] is not None,
        # queued or running when the last return settled: work that trails the returns
        "jobs_waiting_at_settled": watch["jobs_waiting_at_settled"],
        "setup_seconds": t_world - t_start,
        "seconds": t_done - t0,
        "drain_seconds": t_end - t0,
        "returns_per_s": watch["settled"] / max(t_done - t0, 1e-9),
        "staged_skipped_by_cursor": int(skipped or 0),
        "returns_per_s_10_90": _steady_rate(watch["samples"], expected),
        "return_age_p50_s": common.percentile(ages, 50),
        "return_age_p95_s": common.percentile(ages, 95),
        "calls": _calls(counts, ports, expected),
        "stock_lag": _stock_lag(reader, pushes.raised, t0),
        "cpu_cores_used": sum(cpu.values()) / max(t_end - t_world, 1e-9),
        "cpu_cores_by_part": {k: v / max(t_end - t_world, 1e-9) for k, v in cpu.items()},
        "cpu_seconds_by_part": cpu,
        "summary": {k: v for k, v in world.summary().items() if k in SUMMARY_KEYS},
    }
    world.stop()
    jobs_total = int(reader.scalar("SELECT COUNT(*) FROM jobs") or 0)
    result["jobs_total"] = jobs_total
    result["jobs_per_return"] = jobs_total / max(expected, 1)
    result["pg"] = {
        "autovacuum": None,
        "max_dead_seen": watch["dead_max"],
        "final": {},
        "standin_vacuums": watch["vacuums"],
    }
    if cfg["database"] == "postgres":
        result["pg"]["autovacuum"] = reader.scalar("SHOW autovacuum")
        result["pg"]["final"] = _pg_stats(reader)
    reader.close()
    result["log"] = dict(tally.counts)
    return result


def _options(cfg: dict[str, Any]) -> WorldOptions:
    per_tenant = math.ceil(cfg["returns"] / cfg["tenants"])
    latency = f"latency_ms={cfg['latency']}" if cfg["latency"] else None
    return WorldOptions(
        db_url=cfg["url"],
        seed=cfg["seed"],
        tenants=cfg["tenants"],
        # every return needs units left on an order; a fifth more orders than returns is ample
        orders_per_tenant=max(120, per_tenant + per_tenant // 5 + 10),
        returns_per_tenant=per_tenant,
        worker_threads=cfg["workers"],
        worker_processes=0 if cfg["threads"] else cfg["workers"],
        web_process=not cfg["threads"],
        workdir=Path(cfg["workdir"]),
        poll_interval_seconds=cfg["poll_seconds"],
        settled_sync_delay_seconds=cfg["settled_sync_seconds"],
        zigzag_faults=latency,
        khaos_faults=latency,
        gateway_faults=latency,
    )


def _watch(reader: common.Reader, expected: int, *, pg: bool, until: float) -> dict[str, Any]:
    """Poll until every return is settled and the job queue is idle, or `until` passes.

    On a PostgreSQL server whose autovacuum is off, stand in for it (`_AutovacuumStandIn`)
    so the run measures a server configured as docs/operator.md asks.
    """
    settled_names = {s.value for s in TERMINAL} | {ReturnState.HELD.value}
    samples: list[tuple[float, int]] = []
    dead_max: dict[str, int] = {}
    t_settled: float | None = None
    busy_at_settled: int | None = None
    next_pg = 0.0
    settled = 0
    autovacuum_off = pg and reader.scalar("SHOW autovacuum") == "off"
    standin = _AutovacuumStandIn(reader) if autovacuum_off else None
    while True:
        now = time.time()
        states = reader.all("SELECT state, COUNT(*) FROM returns GROUP BY state")
        settled = sum(int(n) for s, n in states if s in settled_names)
        busy = reader.scalar("SELECT COUNT(*) FROM jobs WHERE status IN ('pending', 'running')")
        samples.append((now, settled))
        if settled >= expected and t_settled is None:
            t_settled, busy_at_settled = now, int(busy or 0)
        if pg and now >= next_pg:
            for name, stats in _pg_stats(reader).items():
                dead_max[name] = max(dead_max.get(name, 0), stats["n_dead_tup"])
            if standin is not None:
                standin.tick(now)
            next_pg = now + 2.0
        if (settled >= expected and not busy) or now > until:
            break
        time.sleep(0.5)
    return {
        "samples": samples,
        "settled": settled,
        "t_settled": t_settled,
        "jobs_waiting_at_settled": busy_at_settled,
        "dead_max": dead_max,
        "vacuums": standin.runs if standin is not None else None,
    }


class _AutovacuumStandIn:
    """What PostgreSQL's autovacuum does at its defaults, for a server that has it off:
    every `autovacuum_naptime` (60 s), VACUUM each table whose dead tuples exceed
    `autovacuum_vacuum_threshold` (50) + `autovacuum_vacuum_scale_factor` (0.2) x live
    tuples."""

    NAPTIME = 60.0
    THRESHOLD = 50
    SCALE = 0.2

    def __init__(self, reader: common.Reader) -> None:
        self.reader = reader
        self.runs: list[dict[str, Any]] = []
        self._next = time.time() + self.NAPTIME

    def tick(self, now: float) -> None:
        """VACUUM what is due, if a naptime has passed."""
        if now < self._next:
            return
        self._next = now + self.NAPTIME
        due = self.reader.all(
            "SELECT relname, n_dead_tup FROM pg_stat_user_tables "
            "WHERE n_dead_tup > :threshold + :scale * n_live_tup",
            {"threshold": self.THRESHOLD, "scale": self.SCALE},
        )
        for table, dead in due:
            started = time.time()
            self.reader.vacuum(str(table))
            self.runs.append({"table": table, "dead": dead, "seconds": time.time() - started})


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _cpu_parts(proc: Any, world: Any) -> dict[str, float]:
    """CPU seconds so far of this process (the simulators, plus our web app and worker
    threads when they run here), our web process and the worker processes or threads."""
    here = sum(proc.cpu_times()[:2])
    web = workers = 0.0
    for child in world.processes:
        if child.popen is not None:
            with contextlib.suppress(psutil.Error):
                used = sum(psutil.Process(child.popen.pid).cpu_times()[:2])
                if child.name == "web":
                    web += used
                else:
                    workers += used
    if not world.processes:
        workers = _worker_threads_cpu(proc)
        here -= workers
    return {"simulators": here, "web": web, "workers": workers}


def _worker_threads_cpu(proc: Any) -> float:
    names = {t.native_id: t.name for t in threading.enumerate()}
    return sum(
        t.user_time + t.system_time
        for t in proc.threads()
        if names.get(t.id, "").startswith("worker-")
    )


def _steady_rate(samples: list[tuple[float, int]], expected: int) -> float | None:
    start = next(((t, n) for t, n in samples if n >= 0.1 * expected), None)
    end = next(((t, n) for t, n in samples if n >= 0.9 * expected), None)
    if start is None or end is None or end[0] <= start[0]:
        return None
    return (end[1] - start[1]) / (end[0] - start[0])


def _calls(
    counts: Counter[tuple[int, str, str]], ports: dict[int, str], returns: int
) -> dict[str, Any]:
    groups: Counter[str] = Counter()
    endpoints: Counter[str] = Counter()
    for (port, method, shape), n in counts.items():
        target = ports.get(port, f"port {port}")
        if target == "ours":
            group = "zigzag->ours (webhooks)" if shape.startswith("/webhooks") else "kcc->ours"
        elif target in {"zigzag", "gateway"}:
            group = f"ours->{target}"
        else:
            group = f"other->{target}"
        groups[group] += n
        endpoints[f"{group}: {method} {shape}"] += n
    outbound = groups["ours->zigzag"] + groups["ours->gateway"]
    inbound = sum(n for g, n in groups.items() if "->ours" in g)
    per = max(returns, 1)
    return {
        "per_return_outbound": outbound / per,
        "per_return_inbound": inbound / per,
        "per_return_total": (outbound + inbound) / per,
        "groups": dict(groups),
        "per_return_by_group": {g: round(n / per, 2) for g, n in groups.items()},
        "endpoints": dict(endpoints.most_common()),
    }


def _stock_lag(reader: common.Reader, raised: list[tuple[str, float]], t0: float) -> dict[str, Any]:
    when: dict[str, deque[float]] = {}
    for body, at in raised:
        when.setdefault(body, deque()).append(at)
    total, channel, queue = [], [], []
    unprocessed = 0
    for payload, received, processed in reader.all(
        "SELECT payload, received_at, processed_at FROM inbox "
        "WHERE source = 'kcc_stock-status' ORDER BY id"
    ):
        times = when.get(str(payload))
        if not times:
            continue
        at = times.popleft()
        if at < t0:
            continue
        if processed is None:
            unprocessed += 1
            continue
        got, done = common.epoch(received), common.epoch(processed)
        total.append(done - at)
        channel.append(got - at)
        queue.append(done - got)
    return {
        "pushes": len(total),
        "unprocessed": unprocessed,
        "p50_s": common.percentile(total, 50),
        "p95_s": common.percentile(total, 95),
        "max_s": max(total) if total else None,
        "channel_p95_s": common.percentile(channel, 95),
        "queue_p95_s": common.percentile(queue, 95),
    }


def _pg_stats(reader: common.Reader) -> dict[str, dict[str, int]]:
    rows = reader.all(
        "SELECT relname, n_live_tup, n_dead_tup, n_tup_ins, n_tup_upd, n_tup_hot_upd, "
        "n_tup_del, autovacuum_count + vacuum_count FROM pg_stat_user_tables "
        "WHERE relname IN ('jobs', 'serial_locks', 'inbox')"
    )
    keys = ("n_live_tup", "n_dead_tup", "ins", "upd", "hot_upd", "del", "vacuums")
    return {str(r[0]): dict(zip(keys, map(int, r[1:]), strict=True)) for r in rows}


# -- the benchmark ---------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `python -m bench pipeline`."""
    parser.add_argument("--returns", type=int, default=10_000, help="returns per configuration")
    parser.add_argument(
        "--configs",
        default=DEFAULT_CONFIGS,
        help="comma-separated database:workers (sqlite or postgres; N worker processes, "
        "or Nt worker threads in the measuring process)",
    )
    parser.add_argument("--tenants", type=int, default=3)
    parser.add_argument("--latency", default="5:20", help="simulator latency_ms min:max")
    parser.add_argument("--poll-seconds", type=float, default=5.0, help="ZigZag sweep interval")
    parser.add_argument(
        "--settled-sync-seconds",
        type=float,
        default=2.0,
        help="wait of a sync of a return past ZigZag's part (30 s deployed; 0: none)",
    )
    parser.add_argument(
        "--max-seconds", type=float, default=900.0, help="per configuration; then partial"
    )
    parser.add_argument("--seed", type=int, default=7)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run every configuration; returns the figures (and table rows)."""
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    wall0 = time.perf_counter()
    results: list[dict[str, Any]] = []
    skipped: list[str] = []
    have_pg = common.pg_admin_url() is not None
    for spec in args.configs.split(","):
        database, _, workers = spec.strip().partition(":")
        threads = workers.endswith("t")
        count = int(workers.removesuffix("t") or 1)
        label = f"{database}-{count}{'t' if threads else 'w'}"
        if database == "postgres" and not have_pg:
            skipped.append(f"{label}: PostgreSQL not reachable")
            continue
        with (
            tempfile.TemporaryDirectory(dir=out) as workdir,
            common.fresh_database(database, Path(workdir)) as url,
        ):
            cfg = {
                "label": label,
                "database": database,
                "url": url,
                "workers": count,
                "threads": threads,
                "workdir": workdir,
                "returns": args.returns,
                "tenants": args.tenants,
                "latency": args.latency,
                "poll_seconds": args.poll_seconds,
                "settled_sync_seconds": args.settled_sync_seconds,
                "max_seconds": args.max_seconds,
                "seed": args.seed,
                "log_path": str(out / f"pipeline-{label}.log"),
            }
            started = time.perf_counter()
            result = common.isolated(measure, cfg)
            result["wall_seconds"] = time.perf_counter() - started
        results.append(result)
        print(_line(result))
    return _figures(args, results, skipped, time.perf_counter() - wall0)


def _line(r: dict[str, Any]) -> str:
    lag = r["stock_lag"]
    dead = r["pg"]["final"].get("jobs", {}).get("n_dead_tup")
    return (
        f"pipeline {r['label']:12} {r['settled']:,}/{r['returns']:,} settled"
        f"{'' if r['complete'] else ' (PARTIAL)'} in {r['seconds']:.1f}s: "
        f"{r['returns_per_s']:.2f} returns/s (10-90% {common.fmt(r['returns_per_s_10_90'], 2)})"
        f"; calls/return {r['calls']['per_return_total']:.1f}; stock lag p95 "
        f"{common.fmt(lag['p95_s'], 2)}s; jobs dead tuples {dead}; "
        f"CPU {r['cpu_cores_used']:.2f} cores; log {r['log']}"
    )


def _figures(
    args: argparse.Namespace, results: list[dict[str, Any]], skipped: list[str], wall: float
) -> dict[str, Any]:
    rows = []
    by_label = {r["label"]: r for r in results}
    for r in results:
        lag = r["stock_lag"]
        calls = r["calls"]
        groups = calls["per_return_by_group"]
        db = "SQLite" if r["database"] == "sqlite" else "PostgreSQL"
        notes = [
            f"{r['settled']:,}/{r['returns']:,} settled in {r['seconds']:.0f} s"
            + ("" if r["complete"] else f" (PARTIAL: {args.max_seconds:.0f} s limit)"),
            f"10-90 % rate {common.fmt(r['returns_per_s_10_90'], 2)}/s",
            (
                f"calls/return {calls['per_return_outbound']:.1f} out "
                f"(zigzag {groups.get('ours->zigzag', 0)}, gateway "
                f"{groups.get('ours->gateway', 0)}) + {calls['per_return_inbound']:.1f} in"
            ),
            (
                f"stock lag p50 {common.fmt(lag['p50_s'], 2)} s / "
                f"p95 {common.fmt(lag['p95_s'], 2)} s ({lag['pushes']} pushes)"
            ),
            f"CPU {r['cpu_cores_used']:.2f} cores ("
            + ", ".join(f"{k} {v:.2f}" for k, v in r["cpu_cores_by_part"].items())
            + ")",
        ]
        if r["database"] == "postgres":
            jobs = r["pg"]["final"].get("jobs", {})
            notes.append(
                f"jobs: {jobs.get('n_dead_tup', 0):,} dead / {jobs.get('n_live_tup', 0):,} live "
                f"tuples, HOT {jobs.get('hot_upd', 0):,}/{jobs.get('upd', 0):,} updates, "
                f"autovacuum={r['pg']['autovacuum']}" + _standin_note(r["pg"]["standin_vacuums"])
            )
        if r["staged_skipped_by_cursor"]:
            notes.append(
                f"{r['staged_skipped_by_cursor']} staged returns passed over by the KCC cursor"
            )
        if r["log"].get("deadlock detected"):
            notes.append(f"{r['log']['deadlock detected']} deadlocks in job claim")
        rows.append(
            common.row(
                "pipeline",
                f"{db}, {r['workers']} worker "
                + ("thread" if r.get("worker_threads") else "process")
                + ("" if r["workers"] == 1 else ("s" if r.get("worker_threads") else "es")),
                "returns/s",
                common.fmt(r["returns_per_s"], 2),
                "; ".join(notes),
            )
        )
    one, four = by_label.get("postgres-1w"), by_label.get("postgres-4w")
    scaling = None
    if one and four:
        scaling = four["returns_per_s"] / one["returns_per_s"]
        rows.append(
            common.row(
                "pipeline",
                "PostgreSQL 4 workers / 1 worker",
                "ratio",
                f"{scaling:.2f}",
                f"target >= 1.6; 10-90 % rates give "
                f"{_ratio(four['returns_per_s_10_90'], one['returns_per_s_10_90'])}"
                + ("" if one["complete"] and four["complete"] else "; a run was PARTIAL"),
            )
        )
    for r in results:
        if r["returns"] < 10_000 or not r["complete"]:
            rate = r["returns_per_s"]
            rows.append(
                common.row(
                    "pipeline",
                    f"{r['label']}: 10,000 returns (EXTRAPOLATED)",
                    "seconds",
                    common.fmt(10_000 / rate if rate else None),
                    f"linear extrapolation from {r['settled']:,} returns at {rate:.2f}/s; "
                    "not measured",
                )
            )
    return {
        "bench": "pipeline",
        "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "results": results,
        "skipped": skipped,
        "scaling_4_over_1": scaling,
        "wall_seconds": wall,
        "rows": rows,
    }


def _standin_note(vacuums: list[dict[str, Any]] | None) -> str:
    if vacuums is None:
        return ""
    seconds = sum(v["seconds"] for v in vacuums)
    return f" (the bench stood in for it: {len(vacuums)} VACUUMs, {seconds:.1f} s)"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "-"


def main() -> None:
    """`python -m bench.pipeline`: run and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--out", type=Path, default=common.OUT)
    result = run(parser.parse_args())
    with contextlib.suppress(BrokenPipeError):
        print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))


if __name__ == "__main__":
    main()

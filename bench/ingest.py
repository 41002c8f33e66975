"""A burst of ZigZag webhook deliveries through the real HTTP server, beside a no-op handler.

    python -m bench.ingest [--events 20000] [--duplicates 0.3] [--concurrency 64]

Our app (`create_app`, no workers, no scheduler) runs under uvicorn in its own process on a
fresh SQLite file (or `--database postgres`). The same app carries one extra route,
`/bench/noop/zigzag/{tenant}`, that reads the body and answers 200 without storing
anything: the baseline, measured in the same run against the same server. The load
generator is another process (so it never takes the server's GIL): `--concurrency`
keep-alive HTTP/1.1 connections on asyncio, each sending its next request when the last
one is answered (`--client httpx` uses httpx.AsyncClient instead of the minimal client).
Latency is per request, from the first byte written to the last byte of the answer.
The durable route is the production endpoint, `POST /webhooks/zigzag/{tenant}`, which stores
by group commit (docs/decisions/0007-group-commit.md): each 200 follows the commit of the
transaction holding its event. `--single` adds a bench-only route running the path it replaced,
`intake.accept_zigzag_webhook` in the thread pool, one transaction and commit per delivery.

The burst: `--events` Z-9 envelopes over `--tenants` retailers, `--duplicates` of them
re-deliveries of an earlier eventId (same body), shuffled. Afterwards the database is
read: every eventId answered 2xx must be in the inbox, and the inbox must hold exactly
the distinct eventIds sent (the durability check).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from fastapi import Request  # noqa: TC002 - FastAPI reads the handlers' annotations at runtime
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from bench import common
from returnsync.services import intake

if TYPE_CHECKING:
    from fastapi import FastAPI

    from returnsync.services.context import Context

ROUTES = {
    "noop": "/bench/noop/zigzag",  # the baseline: same server, nothing stored
    "durable": "/webhooks/zigzag",  # the real endpoint (group commit)
    "single": "/bench/single/zigzag",  # --single only: one commit per request, as before
}
EVENT_TYPES = ("ReturnCreated", "ReturnApproved", "ReturnReceived", "ReturnItemsInspected")
SKUS = ("TEE-BLK-M", "HOODIE-NVY-L", "JEANS-BLK-32", "CAP-RED-OS", "SCARF-GRN-OS")


# -- the burst -----------------------------------------------------------------------------


def _snapshot(rng: random.Random, tenant: int, return_id: str, event_type: str) -> dict[str, Any]:
    inspected = event_type == "ReturnItemsInspected"
    received = event_type in {"ReturnReceived", "ReturnItemsInspected"}
    items = []
    for line in range(rng.choice((1, 1, 2))):
        qty = rng.choice((1, 1, 2))
        items.append(
            {
                "returnItemId": f"{return_id}-{line + 1}",
                "sku": rng.choice(SKUS),
                "quantity": qty,
                "unitPrice": rng.choice(("9.99", "24.99", "49.95")),
                "returnReasonId": 2,
                "returnReason": "Too big",
                "returnOption": "Refund",
                "receivedQuantity": qty if received else 0,
                "inspections": [
                    {
                        "quantity": qty,
                        "condition": "A_NEW",
                        "disposition": "RESALEABLE",
                        "inspectedAt": "2026-10-06T14:03:11Z",
                        "notes": "",
                    }
                ]
                if inspected
                else [],
            }
        )
    return {
        "returnId": return_id,
        "returnOrderId": rng.randint(1000, 999_999),
        "retailerCode": common.retailer_code(tenant),
        "orderNumber": f"ORD-{return_id}",
        "dcWarehouse": "GB0064",
        "status": "Processed" if inspected else "Approved",
        "currency": "GBP",
        "createdAt": "2026-10-03T09:12:00Z",
        "updatedAt": "2026-10-06T14:03:11Z",
        "customer": {"email": "a.customer@example.com", "firstName": "Ada", "lastName": "Lovelace"},
        "items": items,
        "statusHistory": [{"status": "PendingApproval", "at": "2026-10-03T09:12:00Z"}],
        "refund": None,
    }


def burst(
    *, events: int, duplicates: float, tenants: int, seed: int, prefix: str
) -> list[tuple[int, str, bytes]]:
    """The deliveries, shuffled: (tenant index, eventId, body). Pure and seeded."""
    rng = random.Random(f"{seed}:{prefix}")
    distinct = max(1, events - round(events * duplicates))
    originals: list[tuple[int, str, bytes]] = []
    for i in range(distinct):
        tenant = i % tenants
        return_id = f"{prefix}R{i // len(EVENT_TYPES):07d}"
        event_type = EVENT_TYPES[i % len(EVENT_TYPES)]
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        envelope = {
            "eventId": event_id,
            "eventType": event_type,
            "occurredAt": "2026-10-06T14:03:12Z",
            "retailerCode": common.retailer_code(tenant),
            "returnId": return_id,
            "orderNumber": f"ORD-{return_id}",
            "data": _snapshot(rng, tenant, return_id, event_type),
        }
        body = json.dumps(envelope, separators=(",", ":")).encode()
        originals.append((tenant, event_id, body))
    deliveries = originals + [rng.choice(originals) for _ in range(events - distinct)]
    rng.shuffle(deliveries)
    return deliveries


# -- server side: benchmark-only routes (installed in the server process) ----------------------


async def noop_webhook(tenant_id: str, request: Request) -> JSONResponse:
    """The baseline: read the body and answer 200 like the webhook endpoint, storing nothing."""
    await request.body()
    return JSONResponse({"status": "noop", "tenant": tenant_id}, status_code=200)


async def single_webhook(tenant_id: str, request: Request) -> JSONResponse:
    """The path group commit replaced: one transaction and one commit per delivery, in the
    thread pool (`intake.accept_zigzag_webhook`, still the behaviour reference)."""
    body = await request.body()
    ctx: Context = request.app.state.ctx
    receipt = await run_in_threadpool(
        intake.accept_zigzag_webhook, ctx, tenant_id, dict(request.headers), body
    )
    status = 401 if receipt.status == 404 else receipt.status
    return JSONResponse(
        {"status": receipt.message, "inbox_id": receipt.inbox_id}, status_code=status
    )


def install_routes(app: FastAPI, ctx: Context) -> None:  # noqa: ARG001 - the setup signature
    """Add the no-op baseline and the one-commit-per-request route to our app (server process)."""
    app.add_api_route(f"{ROUTES['noop']}/{{tenant_id}}", noop_webhook, methods=["POST"])
    app.add_api_route(f"{ROUTES['single']}/{{tenant_id}}", single_webhook, methods=["POST"])


# -- the load generator (runs in its own process) --------------------------------------------


def _raw_request(host: str, path: str, key: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"User-Agent: ZigZag-Webhooks (bench)\r\nX-ZigZag-Api-Key: {key}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, close = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "connection" and value.strip().lower() == "close":
            close = True
    if length:
        await reader.readexactly(length)
    return status, close


async def _raw_load(
    host: str, port: int, requests: list[bytes], concurrency: int
) -> tuple[list[float], list[int]]:
    latencies = [0.0] * len(requests)
    statuses = [0] * len(requests)
    order = iter(range(len(requests)))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for i in order:
                started = time.perf_counter()
                try:
                    writer.write(requests[i])
                    status, close = await _read_response(reader)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    status, close = -1, True
                latencies[i] = time.perf_counter() - started
                statuses[i] = status
                if close:
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return latencies, statuses


async def _httpx_load(
    base: str, requests: list[tuple[str, dict[str, str], bytes]], concurrency: int
) -> tuple[list[float], list[int]]:

    latencies = [0.0] * len(requests)
    statuses = [0] * len(requests)
    order = iter(range(len(requests)))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60.0) as client:

        async def connection() -> None:
            for i in order:
                path, headers, body = requests[i]
                started = time.perf_counter()
                try:
                    response = await client.post(path, content=body, headers=headers)
                    status = response.status_code
                except httpx.HTTPError:
                    status = -1
                latencies[i] = time.perf_counter() - started
                statuses[i] = status

        await asyncio.gather(*(connection() for _ in range(concurrency)))
    return latencies, statuses


def load(
    base: str, route: str, spec: dict[str, Any], concurrency: int, client: str
) -> dict[str, Any]:
    """Fire one burst at `route` (a key of ROUTES); runs in a spawned process."""
    deliveries = burst(**spec)
    host_port = base.removeprefix("http://")
    host, _, port = host_port.partition(":")
    prefix = ROUTES[route]
    if client == "httpx":
        wire = [
            (
                f"{prefix}/{common.tenant_id(t)}",
                {
                    "Content-Type": "application/json",
                    "X-ZigZag-Api-Key": common.webhook_key(t),
                },
                body,
            )
            for t, _, body in deliveries
        ]
        started, cpu0 = time.perf_counter(), time.process_time()
        latencies, statuses = asyncio.run(_httpx_load(base, wire, concurrency))
    else:
        raw = [
            _raw_request(host_port, f"{prefix}/{common.tenant_id(t)}", common.webhook_key(t), body)
            for t, _, body in deliveries
        ]
        started, cpu0 = time.perf_counter(), time.process_time()
        latencies, statuses = asyncio.run(_raw_load(host, int(port), raw, concurrency))
    seconds = time.perf_counter() - started
    client_cpu = time.process_time() - cpu0
    acked = sorted(
        {eid for (_, eid, _), s in zip(deliveries, statuses, strict=True) if 200 <= s < 300}
    )
    return {
        "route": route,
        "requests": len(deliveries),
        "distinct_events": len({eid for _, eid, _ in deliveries}),
        "seconds": seconds,
        "requests_per_s": len(deliveries) / seconds,
        "p50_ms": common.ms(common.percentile(latencies, 50)),
        "p99_ms": common.ms(common.percentile(latencies, 99)),
        "max_ms": common.ms(max(latencies)),
        "statuses": {str(k): v for k, v in sorted(Counter(statuses).items())},
        "client_cpu_share": client_cpu / seconds,
        "acked_ids": acked if route != "noop" else [],
    }


# -- the benchmark ---------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `python -m bench ingest`."""
    parser.add_argument("--events", type=int, default=20_000, help="deliveries per burst")
    parser.add_argument("--duplicates", type=float, default=0.30, help="share re-delivered")
    parser.add_argument("--concurrency", type=int, default=64, help="open connections")
    parser.add_argument("--tenants", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=1, help="bursts per route, alternating")
    parser.add_argument("--warmup", type=int, default=500, help="requests per route before")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--single",
        action="store_true",
        help="also measure one commit per request (the path group commit replaced)",
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark; returns the figures (and table rows)."""
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    wall0 = time.perf_counter()
    routes = ("noop", "durable", "single") if args.single else ("noop", "durable")
    runs: list[dict[str, Any]] = []
    sent: set[str] = set()
    acked: set[str] = set()
    with (
        tempfile.TemporaryDirectory(dir=out) as workdir,
        common.fresh_database(args.database, Path(workdir)) as url,
    ):
        with common.server(url, tenant_count=args.tenants, setup=install_routes) as (base, pid):
            bursts = [(route, f"warm-{route}", args.warmup) for route in routes]
            bursts += [
                (route, f"{route}-{rep}", args.events)
                for rep in range(args.repeat)
                for route in routes
            ]
            for route, prefix, events in bursts:
                spec = _spec(args, prefix, events)
                cpu0 = common.process_cpu(pid)
                result = common.isolated(load, base, route, spec, args.concurrency, args.client)
                result["server_cpu_share"] = (common.process_cpu(pid) - cpu0) / result["seconds"]
                if route != "noop":
                    sent |= {eid for _, eid, _ in burst(**spec)}
                    acked |= set(result["acked_ids"])
                del result["acked_ids"]
                if prefix.startswith("warm-"):
                    continue
                runs.append(result)
                print(
                    f"ingest {route:11} {result['requests_per_s']:8,.0f} req/s  "
                    f"p50 {result['p50_ms']} ms  p99 {result['p99_ms']} ms  "
                    f"statuses {result['statuses']}  server CPU "
                    f"{result['server_cpu_share']:.2f}  client CPU "
                    f"{result['client_cpu_share']:.2f}"
                )
        durability = _durability(url, sent, acked)
    return _figures(args, runs, durability, time.perf_counter() - wall0)


def _spec(args: argparse.Namespace, prefix: str, events: int) -> dict[str, Any]:
    return {
        "events": events,
        "duplicates": args.duplicates,
        "tenants": args.tenants,
        "seed": args.seed,
        "prefix": prefix,
    }


def _durability(url: str, sent: set[str], acked: set[str]) -> dict[str, Any]:
    reader = common.Reader(url)
    try:
        stored = {
            str(key)
            for (key,) in reader.all("SELECT dedupe_key FROM inbox WHERE source = 'zigzag_webhook'")
        }
        quarantined = reader.scalar("SELECT COUNT(*) FROM inbox WHERE status = 'quarantined'")
        jobs = reader.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'sync_return'")
    finally:
        reader.close()
    return {
        "distinct_event_ids_sent": len(sent),
        "acked_2xx_distinct": len(acked),
        "inbox_rows": len(stored),
        "sync_jobs": int(jobs or 0),
        "quarantined": int(quarantined or 0),
        "acked_but_missing": len(acked - stored),
        "ok": stored == sent and acked <= stored and int(jobs or 0) == len(stored),
    }


def _figures(
    args: argparse.Namespace,
    runs: list[dict[str, Any]],
    durability: dict[str, Any],
    wall: float,
) -> dict[str, Any]:
    def median(route: str, key: str) -> float:
        return statistics.median(float(r[key]) for r in runs if r["route"] == route)

    noop, durable = median("noop", "requests_per_s"), median("durable", "requests_per_s")
    distinct = median("durable", "distinct_events")
    seconds = median("durable", "seconds")
    ratio = durable / noop
    db = "SQLite file" if args.database == "sqlite" else "PostgreSQL"
    size = f"{args.events:,} deliveries, {args.duplicates:.0%} duplicates, c={args.concurrency}"
    rows = [
        common.row(
            "ingest",
            "no-op handler (baseline)",
            "requests/s",
            common.fmt(noop),
            f"p50 {median('noop', 'p50_ms'):.1f} ms, p99 {median('noop', 'p99_ms'):.1f} ms; "
            f"server CPU {median('noop', 'server_cpu_share'):.2f} core "
            f"({noop / median('noop', 'server_cpu_share'):,.0f} req per server CPU-s); {size}",
        ),
        common.row(
            "ingest",
            f"durable ({db}, group commit; the production webhook route)",
            "requests/s",
            common.fmt(durable),
            f"p50 {median('durable', 'p50_ms'):.1f} ms, p99 {median('durable', 'p99_ms'):.1f} ms;"
            f" {distinct / seconds:,.0f} new events stored/s; server CPU "
            f"{median('durable', 'server_cpu_share'):.2f} core "
            f"({durable / median('durable', 'server_cpu_share'):,.0f} req per server CPU-s)",
        ),
        common.row(
            "ingest",
            "durable / no-op",
            "ratio",
            f"{ratio:.2f}",
            f"target >= 0.50; durability check "
            f"{'OK' if durability['ok'] else 'FAILED'}: inbox {durability['inbox_rows']:,} rows "
            f"= {durability['distinct_event_ids_sent']:,} distinct eventIds, "
            f"{durability['acked_but_missing']} acked-but-missing",
        ),
    ]
    if args.single:
        single = median("single", "requests_per_s")
        rows.append(
            common.row(
                "ingest",
                "one commit per request (the path replaced; bench-only route)",
                "requests/s",
                common.fmt(single),
                f"{single / noop:.2f} of no-op; p50 {median('single', 'p50_ms'):.1f} ms, "
                f"p99 {median('single', 'p99_ms'):.1f} ms; server CPU "
                f"{median('single', 'server_cpu_share'):.2f} core",
            )
        )
    return {
        "bench": "ingest",
        "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "runs": runs,
        "noop_requests_per_s": noop,
        "durable_requests_per_s": durable,
        "durable_new_events_per_s": distinct / seconds,
        "ratio": ratio,
        "durability": durability,
        "wall_seconds": wall,
        "rows": rows,
    }


def main() -> None:
    """`python -m bench.ingest`: run and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--out", type=Path, default=common.OUT)
    result = run(parser.parse_args())
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))


if __name__ == "__main__":
    main()

"""What the benchmarks share: machine facts, percentiles, databases, tenants, a server process.

Nothing here measures anything; each benchmark module (`ingest`, `pipeline`, `catalog`)
does its own timing and returns a JSON-ready dict with a `rows` list for the results table.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
import platform
import signal
import socket
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import psutil
import uvicorn
from pydantic import SecretStr
from sqlalchemy import create_engine, text

from returnsync.bootstrap import build
from returnsync.config import GatewayTenant, KhaosTenant, Settings, Tenant, ZigZagTenant
from returnsync.simulators.demo.world import REASONS, RETURN_URN
from returnsync.storage import migrations
from returnsync.storage.db import Database
from returnsync.web.app import create_app

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from fastapi import FastAPI

    from returnsync.services.context import Context

    Setup = Callable[[FastAPI, Context], None]

OUT = Path("bench/out")
DEFAULT_PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SPAWN = multiprocessing.get_context("spawn")
T = TypeVar("T")


# -- figures -------------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float | None:
    """The `pct` percentile (0..100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * pct / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def ms(seconds: float | None) -> float | None:
    """Seconds to milliseconds, rounded to 0.01 ms (None stays None)."""
    return None if seconds is None else round(seconds * 1000.0, 2)


def fmt(value: float | None, digits: int = 0) -> str:
    """A figure for the table: thousands separators, `-` for nothing."""
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def row(bench: str, case: str, figure: str, value: str, notes: str = "") -> dict[str, str]:
    """One line of the results table."""
    return {"bench": bench, "case": case, "figure": figure, "value": value, "notes": notes}


def machine() -> dict[str, Any]:
    """Where and when the figures were taken."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": model,
        "cores": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


# -- processes -----------------------------------------------------------------------------


def isolated(fn: Callable[..., T], *args: Any) -> T:
    """Run `fn(*args)` in a fresh spawned interpreter and return its result.

    Each measured world gets its own process, so one run's threads, caches and GIL
    contention never leak into the next.
    """
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=SPAWN) as pool:
        future = pool.submit(fn, *args)
        try:
            return future.result()
        except BaseException:  # Ctrl-C or SIGTERM (see `stop_on_sigterm`): leave nothing behind
            stop_descendants()
            raise


def stop_descendants(grace: float = 5.0) -> None:
    """Terminate every process this one started, and theirs (the simulators and worker
    processes run in sessions of their own, so a signal to our group misses them); kill
    what is still alive after `grace` seconds. Taken as one snapshot first: a child that
    dies first would hand its own children to init, out of reach."""
    family = [p for p in psutil.Process().children(recursive=True) if not _tracker(p)]
    for proc in family:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(family, timeout=grace)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()


def _tracker(proc: psutil.Process) -> bool:
    """multiprocessing's resource tracker: it exits with us, and complains if terminated."""
    with contextlib.suppress(psutil.Error):
        return "multiprocessing.resource_tracker" in " ".join(proc.cmdline())
    return False


def stop_on_sigterm() -> None:
    """Make SIGTERM unwind like Ctrl-C, so `isolated` stops the run's processes and the
    fresh databases are dropped."""

    def _raise(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _raise)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    """Wait until GET `url` answers 200."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f}s")
        time.sleep(0.05)


def _serve(db_url: str, port: int, tenant_count: int, setup: Setup | None) -> None:
    """Child process: our real app (no workers, no scheduler) under uvicorn on 127.0.0.1.

    `setup(app, ctx)`, a module-level function, may add benchmark-only routes (the ingest
    baseline); the real routes are untouched.
    """
    logging.basicConfig(level=logging.WARNING)
    settings = Settings(database_url=db_url, public_url=f"http://127.0.0.1:{port}")
    ctx = build(settings, tenants=tenants(tenant_count), migrate=False)
    app = create_app(ctx)
    if setup is not None:
        setup(app, ctx)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


@contextlib.contextmanager
def server(
    db_url: str, *, tenant_count: int, setup: Setup | None = None
) -> Iterator[tuple[str, int]]:
    """Our app in its own process for the block: yields (base URL, pid)."""
    port = free_port()
    proc = SPAWN.Process(target=_serve, args=(db_url, port, tenant_count, setup), daemon=True)
    proc.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/health", timeout=60.0)
        yield base, int(proc.pid or 0)
    finally:
        proc.terminate()
        proc.join(timeout=15)
        if proc.is_alive():
            proc.kill()
            proc.join()


class LogTally:
    """Warnings and errors of the run: counted here, written in full to a log file."""

    def __init__(self, path: Path) -> None:

        self.counts: Counter[str] = Counter()
        tally = self

        class _Count(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                text = record.getMessage()
                if record.exc_info and record.exc_info[1] is not None:
                    text += f" {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
                tally.counts[record.levelname] += 1
                if "claim failed" in text:
                    tally.counts["worker claim failed"] += 1
                if "database is locked" in text:
                    tally.counts["sqlite database is locked"] += 1
                if "DeadlockDetected" in text or "deadlock detected" in text:
                    tally.counts["deadlock detected"] += 1
                if record.name.endswith("notify.console"):
                    tally.counts["alerts (console notifier)"] += 1
                if " dead: " in text:
                    tally.counts["jobs buried (dead)"] += 1

        root = logging.getLogger()
        root.setLevel(logging.WARNING)
        for handler in list(root.handlers):
            root.removeHandler(handler)
        file_handler = logging.FileHandler(path, mode="w")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(threadName)s %(message)s"))
        root.addHandler(file_handler)
        root.addHandler(_Count(level=logging.WARNING))


# -- databases -----------------------------------------------------------------------------


def pg_admin_url() -> str | None:
    """The admin URL of a reachable PostgreSQL, or None.

    `RETURNSYNC_BENCH_PG_DSN`, else `RETURNSYNC_TEST_PG_DSN`, else postgres@127.0.0.1:5432.
    """
    url = (
        os.environ.get("RETURNSYNC_BENCH_PG_DSN")
        or os.environ.get("RETURNSYNC_TEST_PG_DSN")
        or DEFAULT_PG_ADMIN
    )
    url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception:
        return None
    return url


@contextlib.contextmanager
def fresh_database(kind: str, workdir: Path) -> Iterator[str]:
    """A migrated, empty database for the block: `sqlite` (a file) or `postgres`; yields its URL.

    The PostgreSQL database is created for the run and dropped afterwards.
    """
    if kind == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="db-", dir=workdir))
        url = f"sqlite:///{folder / 'bench.db'}"
        _migrate(url)
        try:
            yield url
        finally:
            for path in folder.iterdir():
                path.unlink()
            folder.rmdir()
        return
    admin_url = pg_admin_url()
    if admin_url is None:
        raise RuntimeError("PostgreSQL is not reachable (set RETURNSYNC_BENCH_PG_DSN)")
    name = f"returnsync_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        _migrate(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _migrate(url: str) -> None:
    db = Database(url)
    try:
        migrations.upgrade(db)
    finally:
        db.dispose()


class Reader:
    """Read-only queries beside a running service (`Database.read()`: on SQLite it never
    takes the write lock, so a progress poll does not slow the workers it watches)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._db = Database(url)

    def all(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of one query (`:name` parameters)."""
        with self._db.read() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params or {}).all()]

    def scalar(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        """The first column of the first row."""
        rows = self.all(sql, params)
        return rows[0][0] if rows else None

    def vacuum(self, table: str) -> None:
        """PostgreSQL: `VACUUM table` (outside a transaction, as VACUUM must be)."""
        with self._db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'VACUUM "{table}"'))

    def close(self) -> None:
        """Close the pooled connections."""
        self._db.dispose()


def epoch(value: Any) -> float:
    """A stored timestamp as epoch seconds (SQLite gives naive-UTC text, PostgreSQL datetimes)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


# -- tenants -------------------------------------------------------------------------------


def tenant_id(n: int) -> str:
    """The id of bench tenant `n` (0-based)."""
    return f"bench-{n + 1}"


def retailer_code(n: int) -> str:
    """The ZigZag retailer code of bench tenant `n`."""
    return f"BR{100 + n}"


def webhook_key(n: int) -> str:
    """The X-ZigZag-Api-Key of bench tenant `n`."""
    return f"whk-bench-{n + 1}"


def channel_auth(n: int) -> tuple[str, str]:
    """The KCC channel Basic auth (user, password) of bench tenant `n`."""
    return f"kcc-bench-{n + 1}", f"kcc-secret-bench-{n + 1}"


def tenants(count: int) -> dict[str, Tenant]:
    """`count` bench tenants, configured like the demo world's."""
    out: dict[str, Tenant] = {}
    for n in range(count):
        user, password = channel_auth(n)
        out[tenant_id(n)] = Tenant(
            id=tenant_id(n),
            name=f"Bench Retailer {n + 1}",
            zigzag=ZigZagTenant(
                retailer_code=retailer_code(n),
                username=f"{tenant_id(n)}-api",
                password=SecretStr(f"zz-secret-{tenant_id(n)}"),
                webhook_key=SecretStr(webhook_key(n)),
            ),
            khaos=KhaosTenant(
                channel_username=user,
                channel_password=SecretStr(password),
                return_urn=RETURN_URN,
                default_site_id=1,
                sites={"GB0064": 1},
                return_reasons={d: r[0] for d, r in REASONS.items()},
            ),
            gateway=GatewayTenant(api_key=SecretStr(f"sk_test_bench{n + 1}")),
        )
    return out


def process_cpu(pid: int) -> float:
    """User + system CPU seconds used so far by process `pid` (0.0 if it is gone)."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)

"""The fuzz harness: a real Context on a SQLite file behind a real uvicorn; run sizes; strategies.

Two tenants are configured (`acme`, the one under test, and `beta`, whose valid credentials must
not open acme's endpoints). The ZigZag and gateway factories raise: the web layer never calls
them (webhooks only store and enqueue), and the worker is drained only to process KCC pushes.
A credit note for one of the staged returns does enqueue the saga's `advance`, which then fails
on the gateway factory and waits for a retry that the fixed clock never reaches: by design.

Every property test runs twice (`fuzz_run`): "default", small and derandomized (about 500
bodies to the webhook and channel endpoints plus about 1,000 schemathesis cases), and "chaos"
(`make chaos`, `--run-chaos`). `BODIES` counts every request sent, per endpoint; the terminal
summary prints it, and each chaos test asserts it sent its share. The shares add up to more than
the 10,000 bodies the issue asks for: webhook 1,200 bytes + 1,200 JSON + 2,500 near-valid + 50
huge + 800 forged + 400 replayed; pushes 700 + 700 + 3 x 700 + 40 + 700; pulls 800 + 200 (11,390),
before schemathesis' 250 per operation.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import os
import tempfile
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
import hypothesis
import pytest
from hypothesis import HealthCheck
from hypothesis import strategies as st
from sqlalchemy import func, select

from returnsync.bootstrap import build
from returnsync.config import Settings, Tenant
from returnsync.engine.handlers import HANDLERS
from returnsync.engine.worker import Worker
from returnsync.simulators.runtime import ServerThread
from returnsync.storage import tables
from returnsync.testing.tenants import make_tenant
from returnsync.web.app import create_app

if TYPE_CHECKING:
    from collections.abc import Iterator

    from returnsync.services.context import Context

HERE = Path(__file__).parent
FIXTURES = HERE.parent / "fixtures"

TENANT = "acme"
OTHER_TENANT = "beta"
RETAILER = "GL123"  # the retailer code of the ZigZag fixtures (tests/fixtures/zigzag)
OTHER_RETAILER = "BE456"

CHAOS_TIMEOUT = 3600  # seconds; a chaos test (and its shrinking) outlives pytest's default 300
BODIES: Counter[str] = Counter()
"""Request bodies sent by the property tests in this session, per endpoint."""


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if BODIES:
        per_endpoint = ", ".join(f"{path}: {n}" for path, n in sorted(BODIES.items()))
        terminalreporter.write_line(
            f"fuzz: {sum(BODIES.values())} generated bodies sent ({per_endpoint})"
        )


class FixedClock:
    """A clock that stands still (time is not what is being fuzzed)."""

    def __init__(self) -> None:
        self.current = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        """The fixed time."""
        return self.current

    def advance(self, **kwargs: float) -> None:
        """Move forward."""
        self.current += timedelta(**kwargs)


class _NeverCalled:
    def __init__(self, what: str) -> None:
        self.what = what

    def __call__(self, tenant: Tenant) -> Any:
        raise AssertionError(f"the fuzz tests reach no {self.what} (tenant {tenant.id})")


class _Recorder:
    """ASGI middleware keeping the traceback of every unhandled exception, before the 500 goes out.

    Python 3.11 formats tracebacks with `ast` (for the ^^^ markers), and its AST constructor is not
    thread-safe (CPython gh-106905: "AST constructor recursion depth mismatch"). So tracebacks are
    formatted here, while the test thread waits for the answer, and uvicorn's own logging of them
    after the answer (racing pytest's report in the test thread) is switched off.
    """

    errors: ClassVar[list[str]] = []

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception:
            self.errors.append(traceback.format_exc())
            raise


@dataclass(frozen=True)
class Marks:
    """The highest inbox and job ids at some moment."""

    inbox: int
    job: int


@dataclass
class Harness:
    """The app over real HTTP plus direct views of its database."""

    ctx: Context
    app: Any
    server: ServerThread
    http: httpx.Client
    recorder: type[_Recorder]
    tenant: str = TENANT
    other_tenant: str = OTHER_TENANT
    retailer: str = RETAILER
    sent: Counter[str] = field(default_factory=Counter)

    @staticmethod
    def webhook_headers(tenant_id: str = TENANT) -> dict[str, str]:
        """The valid X-ZigZag-Api-Key header of a tenant (plus a JSON content type)."""
        return {"X-ZigZag-Api-Key": f"whk-{tenant_id}", "Content-Type": "application/json"}

    @staticmethod
    def basic(user: str, password: str) -> str:
        """An HTTP Basic Authorization value (credentials encoded as UTF-8)."""
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def kcc_headers(self, tenant_id: str = TENANT) -> dict[str, str]:
        """The valid KCC channel Basic auth header of a tenant (plus a JSON content type)."""
        return {
            "Authorization": self.basic(f"kcc-{tenant_id}", f"kcc-secret-{tenant_id}"),
            "Content-Type": "application/json",
        }

    def count(self, endpoint: str) -> None:
        """Count one generated body sent to `endpoint`."""
        self.sent[endpoint] += 1
        BODIES[endpoint] += 1

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, Any] | None = None,
        count: str | None = None,
    ) -> httpx.Response:
        """Send one request; `count` names the endpoint whose generated bodies are counted."""
        self.recorder.errors.clear()
        response = self.http.request(method, path, content=body, headers=headers)
        if count is not None:
            self.count(count)
        return response

    def explain(self, response: httpx.Response) -> str:
        """The status, the answer and any server-side traceback, for assertion messages."""
        errors = "\n".join(self.recorder.errors)
        return f"{response.status_code} {response.text[:500]}\n{errors}"

    def counts(self) -> dict[str, int]:
        """Rows in the tables an inbound request may write: inbox, jobs, exceptions, audit."""
        with self.ctx.db.begin() as conn:
            return {
                table.name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                for table in (tables.inbox, tables.jobs, tables.exceptions, tables.audit_log)
            }

    def max_id(self, table: Any) -> int:
        """The highest id in a table (0 when empty)."""
        with self.ctx.db.begin() as conn:
            return int(conn.execute(select(func.max(table.c.id))).scalar() or 0)

    def marks(self) -> Marks:
        """Where the inbox and the job queue stand now (to find what a request added)."""
        return Marks(inbox=self.max_id(tables.inbox), job=self.max_id(tables.jobs))

    def inbox_row(self, message_id: int) -> dict[str, Any] | None:
        """One inbox row."""
        rows = self.inbox_rows(message_id=message_id)
        return rows[0] if rows else None

    def inbox_rows(
        self,
        *,
        message_id: int | None = None,
        after_id: int | None = None,
        source: str | None = None,
        payload: str | None = None,
        dedupe_key: str | None = None,
    ) -> list[dict[str, Any]]:
        """Inbox rows, filtered."""
        column = tables.inbox.c
        where = [
            test
            for value, test in (
                (message_id, column.id == message_id),
                (after_id, column.id > (after_id or 0)),
                (source, column.source == source),
                (payload, column.payload == payload),
                (dedupe_key, column.dedupe_key == dedupe_key),
            )
            if value is not None
        ]
        with self.ctx.db.begin() as conn:
            rows = conn.execute(select(tables.inbox).where(*where).order_by(column.id))
            return [dict(r) for r in rows.mappings()]

    def invalid_payload_exception(self, message_id: int) -> dict[str, Any] | None:
        """The open `invalid_payload` exception raised for an inbox message, if any."""
        stmt = select(tables.exceptions).where(
            tables.exceptions.c.kind == "invalid_payload",
            tables.exceptions.c.subject == f"inbox:{message_id}",
            tables.exceptions.c.status == "open",
        )
        with self.ctx.db.begin() as conn:
            row = conn.execute(stmt).mappings().first()
        return None if row is None else dict(row)

    def jobs(self, *, after_id: int = 0, **where: Any) -> list[dict[str, Any]]:
        """Jobs with an id above `after_id`, filtered by column equality."""
        stmt = select(tables.jobs).where(tables.jobs.c.id > after_id)
        for column, value in where.items():
            stmt = stmt.where(tables.jobs.c[column] == value)
        with self.ctx.db.begin() as conn:
            return [dict(r) for r in conn.execute(stmt.order_by(tables.jobs.c.id)).mappings()]

    def drain(self) -> int:
        """Run every runnable job in this thread (a fresh Worker, as the issue prescribes)."""
        return Worker(self.ctx, HANDLERS, name="t").drain()


def _harness(directory: Path) -> Iterator[Harness]:
    tenants = {
        TENANT: make_tenant(TENANT, RETAILER),
        OTHER_TENANT: make_tenant(OTHER_TENANT, OTHER_RETAILER),
    }
    settings = Settings(
        database_url=f"sqlite:///{directory / 'fuzz.db'}",
        tenants_file=directory / "absent.toml",
        zigzag_base_url="http://127.0.0.1:9",  # unreachable: nothing may call out
        gateway_base_url="http://127.0.0.1:9",
    )
    ctx = build(settings, tenants=tenants, clock=FixedClock())
    ctx.platform_factory = _NeverCalled("ZigZag platform")
    ctx.gateway_factory = _NeverCalled("refund gateway")
    app = create_app(ctx)
    app.add_middleware(_Recorder)  # inside Starlette's ServerErrorMiddleware
    server = ServerThread(app)
    uvicorn_errors = logging.getLogger("uvicorn.error")
    uvicorn_errors.disabled = True  # _Recorder keeps the tracebacks (see there why)
    server.start()
    http = httpx.Client(base_url=server.url, timeout=60.0)
    try:
        yield Harness(ctx=ctx, app=app, server=server, http=http, recorder=_Recorder)
    finally:
        http.close()
        server.stop()
        uvicorn_errors.disabled = False
        ctx.db.dispose()


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """A fresh database and server per test module.

    The SQLite file goes on tmpfs when there is one: with `synchronous=FULL` every commit is an
    fsync (30 ms on a slow disk, four per push), and durability is not what is fuzzed here.
    """
    shm = Path("/dev/shm")  # noqa: S108 (a private directory is made inside it)
    if shm.is_dir() and os.access(shm, os.W_OK):
        with tempfile.TemporaryDirectory(prefix="returnsync-fuzz-", dir=shm) as directory:
            yield from _harness(Path(directory))
    else:
        yield from _harness(tmp_path_factory.mktemp("fuzz"))


# Run sizes: every property test takes `fuzz_run` and is collected twice, "default" (small,
# derandomized: the same examples on every CI run) and "chaos" (large, random; `--run-chaos`).


@dataclass(frozen=True)
class FuzzRun:
    """How many examples a property test generates in this run."""

    chaos: bool

    def examples(self, default: int, chaos: int) -> int:
        """`default` in the ordinary run, `chaos` in the chaos run."""
        return chaos if self.chaos else default

    def settings(self, max_examples: int) -> hypothesis.settings:
        """Hypothesis settings for this run: derandomized unless chaos, no deadline."""
        return hypothesis.settings(
            max_examples=max_examples,
            deadline=None,
            derandomize=not self.chaos,
            database=None,
            print_blob=True,
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.data_too_large,
                HealthCheck.large_base_example,
                HealthCheck.filter_too_much,
            ],
        )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "fuzz_run" in metafunc.fixturenames:
        metafunc.parametrize(
            "fuzz_run",
            [
                pytest.param(FuzzRun(chaos=False), id="default"),
                pytest.param(
                    FuzzRun(chaos=True),
                    id="chaos",
                    marks=[pytest.mark.chaos, pytest.mark.timeout(CHAOS_TIMEOUT)],
                ),
            ],
        )


# Strategies shared by the test modules (handed out by the `gen` fixture).

RAW = "@@raw{}@@"  # a placeholder string replaced, after json.dumps, by raw JSON text


class Gen:
    """Strategies for bad and near-valid bodies."""

    def __init__(self) -> None:
        scalars = (
            st.none()
            | st.booleans()
            | st.integers()
            | st.integers(min_value=-(10**40), max_value=10**40)
            | st.floats()
            | st.text()
            | st.text(st.characters(codec="utf-8"), max_size=50)
        )
        self.json_values = st.recursive(
            scalars,
            lambda children: (
                st.lists(children, max_size=6)
                | st.dictionaries(st.text(max_size=12), children, max_size=6)
            ),
            max_leaves=25,
        )
        # raw JSON text no Python value dumps to: deep nesting, lone surrogates, odd numbers
        self.raw_json = st.one_of(
            st.integers(1, 200_000).map(lambda n: "[" * n + "]" * n),
            st.integers(1, 50_000).map(lambda n: '{"a":' * n + "0" + "}" * n),
            st.integers(900, 5_000).map(lambda n: '{"x":[' * n + "null" + "]}" * n),
            st.integers(25, 520).map(lambda n: '{"x":[' * n + "null" + "]}" * n),  # 50..1040
            st.sampled_from(
                [
                    '"\\ud800"',
                    '"\\udfff\\ud800"',
                    '"\\u0000"',
                    '"a\\u0000b"',
                    "NaN",
                    "Infinity",
                    "-Infinity",
                    "1e999999",
                    "-0",
                    "1E-999999",
                    "0.1e1",
                    "9" * 4301,
                    "9" * 400,
                    "123456789012345678901234567890.123456789",
                    '"' + "\\n" * 10 + '"',
                ]
            ),
        )

    def json_text(
        self, value_strategy: st.SearchStrategy[Any] | None = None
    ) -> st.SearchStrategy[bytes]:
        """Any JSON value, dumped with or without ASCII escapes, sometimes pretty-printed."""
        return st.builds(
            lambda value, ascii_only, indent: json.dumps(
                value, ensure_ascii=ascii_only, indent=indent
            ).encode("utf-8"),
            value_strategy or self.json_values,
            st.booleans(),
            st.sampled_from([None, 2]),
        )

    def mutated(
        self, documents: st.SearchStrategy[Any], *, max_mutations: int = 4
    ) -> st.SearchStrategy[bytes]:
        """Bodies near a valid document: 0..max_mutations of delete, retype, huge, deep, unicode."""
        return st.builds(
            self._mutate,
            documents,
            st.lists(
                st.builds(
                    Mutation,
                    st.integers(min_value=0),
                    st.sampled_from(MUTATIONS),
                    self.json_values,
                    self.raw_json,
                    st.text(st.characters(codec="utf-8"), min_size=1, max_size=40),
                    st.integers(10_000, 400_000),
                ),
                max_size=max_mutations,
            ),
            st.sampled_from(["", "", "", " trailing", "\n", "{}", "]"]),
            st.booleans(),
        )

    def huge(self, documents: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
        """Bodies over 1 MB: a valid document padded by a huge field, or junk."""
        return st.one_of(
            st.builds(
                _padded, documents, st.integers(1_000_001, 2_500_000), st.sampled_from("x€\u00e9 ")
            ),
            st.builds(
                lambda chunk, n: (chunk * (n // max(1, len(chunk)) + 1))[:n],
                st.binary(min_size=1, max_size=64),
                st.integers(1_000_001, 2_500_000),
            ),
            st.integers(1_000_001, 1_400_000).map(lambda n: b"[" * n),
        )

    @staticmethod
    def _mutate(document: Any, mutations: list[Mutation], suffix: str, bom: bool) -> bytes:
        doc = copy.deepcopy(document)
        raws: list[str] = []
        for mutation in mutations:
            doc = mutation.apply(doc, raws)
        body = json.dumps(doc)
        for i, raw in enumerate(raws):
            body = body.replace(json.dumps(RAW.format(i)), raw, 1)
        encoded = (body + suffix).encode("utf-8")
        return (b"\xef\xbb\xbf" + encoded) if bom else encoded


MUTATIONS = (
    "delete",
    "retype",
    "null",
    "huge",
    "raw",
    "unicode",
    "empty",
    "add_key",
    "number_as_string",
    "wrap_in_list",
)


def _slots(doc: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) of `doc`, depth first; the root is (None, None)."""
    found: list[tuple[Any, Any]] = [(None, None)]
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, child in node.items():
                found.append((node, key))
                stack.append(child)
        elif isinstance(node, list):
            for i, child in enumerate(node):
                found.append((node, i))
                stack.append(child)
    return found


@dataclass(frozen=True)
class Mutation:
    """One edit of a document: what to do at which slot, with the material it may need."""

    pick: int
    kind: str
    value: Any
    raw: str
    text: str
    size: int

    def apply(self, doc: Any, raws: list[str]) -> Any:
        """`doc` with this mutation applied (in place where possible)."""
        slots = _slots(doc)
        parent, key = slots[self.pick % len(slots)]
        current = doc if parent is None else parent[key]
        if self.kind == "delete":
            if parent is None:
                return self.value
            del parent[key]
            return doc
        if self.kind == "add_key":
            if isinstance(current, dict):
                current[self.text] = self.value
            return doc
        new = self._replacement(current, raws)
        if parent is None:
            return new
        parent[key] = new
        return doc

    def _replacement(self, current: Any, raws: list[str]) -> Any:
        if self.kind == "raw":
            raws.append(self.raw)
            return RAW.format(len(raws) - 1)
        makers = {
            "retype": lambda: self.value,
            "null": lambda: None,
            "huge": lambda: (self.text * (self.size // len(self.text) + 1))[: self.size],
            "unicode": lambda: self.text,
            "empty": lambda: type(current)() if isinstance(current, dict | list | str) else "",
            "number_as_string": lambda: (
                json.dumps(current) if isinstance(current, dict | list) else str(current)
            ),
            "wrap_in_list": lambda: [current],
        }
        return makers[self.kind]()


def _padded(document: Any, size: int, char: str) -> bytes:
    doc = copy.deepcopy(document) if isinstance(document, dict) else {"doc": document}
    doc["padding"] = ""
    base = len(json.dumps(doc, ensure_ascii=False).encode("utf-8"))
    width = len(char.encode("utf-8"))
    doc["padding"] = char * ((size - base) // width + 1)
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


@pytest.fixture(scope="session")
def gen() -> Gen:
    """The shared strategies."""
    return Gen()

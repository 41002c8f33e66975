"""Shared fixtures: databases (a real SQLite file; PostgreSQL when reachable) and a fixed clock."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, text

from returnsync.storage import migrations
from returnsync.storage.db import Database

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def pytest_addoption(parser: pytest.Parser) -> None:
    """`--run-chaos`: also run the tests marked `chaos` (the large runs of `make chaos`)."""
    parser.addoption(
        "--run-chaos",
        action="store_true",
        default=False,
        help="run the tests marked chaos (10,000 seeds, 10,000+ fuzzed bodies, big chaos runs)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip every test marked `chaos` unless `--run-chaos` was given."""
    if config.getoption("--run-chaos"):
        return
    skip = pytest.mark.skip(reason="chaos run: pass --run-chaos (make chaos)")
    for item in items:
        if "chaos" in item.keywords:
            item.add_marker(skip)


class FixedClock:
    """A clock that only moves when told."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 10, 1, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        """The current fixed time."""
        return self.current

    def advance(self, **kwargs: float) -> None:
        """Move forward by a timedelta's keyword arguments."""
        self.current += timedelta(**kwargs)


@pytest.fixture
def clock() -> FixedClock:
    """A fixed clock at 2026-10-01 09:00 UTC."""
    return FixedClock()


def _pg_admin_url() -> str | None:
    explicit = os.environ.get("RETURNSYNC_TEST_PG_DSN")
    url = explicit or DEFAULT_PG
    url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception:
        if explicit:
            raise  # CI asked for PostgreSQL: being unable to reach it is a failure, not a skip
        return None
    return url


@pytest.fixture(scope="session")
def pg_admin_url() -> str | None:
    """The admin DSN of a reachable PostgreSQL, or None (tests then skip)."""
    return _pg_admin_url()


def fresh_pg_database(admin_url: str) -> tuple[str, object]:
    """Create an empty database; returns its URL and a function dropping it."""
    name = f"returnsync_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


@pytest.fixture(scope="session")
def pg_database_factory() -> object:
    """`fresh_pg_database` for tests that need their own PostgreSQL database."""
    return fresh_pg_database


@pytest.fixture(params=["sqlite", "postgres"])
def db(
    request: pytest.FixtureRequest, tmp_path: Path, pg_admin_url: str | None
) -> Iterator[Database]:
    """A migrated, empty database: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'test.db'}")
        migrations.upgrade(database)
        yield database
        database.dispose()
        return
    if pg_admin_url is None:
        pytest.skip("PostgreSQL not reachable (set RETURNSYNC_TEST_PG_DSN)")
    url, drop = fresh_pg_database(pg_admin_url)
    database = Database(url)
    migrations.upgrade(database)
    yield database
    database.dispose()
    drop()  # type: ignore[operator]

"""Chaos over real processes: returns through the real servers, every fault on, SIGKILLs.

The small runs belong to the normal suite (about a minute each); the large ones (2,000
returns, at least 100 worker kills, 4 worker processes) run with `--run-chaos` (`make chaos`).
Every figure comes from the simulators' own state (see `returnsync.simulators.demo.chaos`).
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import pytest

from returnsync.simulators.demo.chaos import ChaosOptions, format_line, run_chaos, scratch_postgres

if TYPE_CHECKING:
    from pathlib import Path


def _database(stack: ExitStack, backend: str, tmp_path: Path, pg_admin_url: str | None) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'chaos.db'}"
    if pg_admin_url is None:
        pytest.skip("PostgreSQL not reachable (set RETURNSYNC_TEST_PG_DSN)")
    return stack.enter_context(scratch_postgres(pg_admin_url))


def _check(summary: dict[str, Any]) -> None:
    print(format_line(summary))  # noqa: T201 - the figures belong in the test log
    brief = {k: v for k, v in summary.items() if k != "options"}
    detail = json.dumps(brief, indent=1, sort_keys=True, default=str)
    assert summary["settled"], f"did not settle:\n{detail}"
    assert summary["returns"] == summary["options"]["returns"], detail
    assert summary["lost"] == 0, detail
    assert summary["duplicate_credit_notes"] == 0, detail
    assert summary["duplicate_refunds"] == 0, detail
    assert summary["refunds_without_credit_note"] == 0, detail
    assert summary["acknowledged_lost"] == 0, detail
    assert summary["acknowledged_unprocessed"] == 0, detail
    assert summary["credit_notes_unobserved"] == 0, detail
    assert summary["amount_mismatches"] == 0, detail
    assert summary["closed_not_told_zigzag"] == 0, detail
    assert summary["unexpected_exits"] == 0, detail
    assert summary["kills"] >= summary["options"]["kills"], detail
    assert summary["acknowledged"] > 0, detail
    assert summary["returns_by_state"].get("closed", 0) > 0, detail


# The small run, on SQLite and PostgreSQL, is inside `make test`; 2,000 returns with 4 workers
# is `make chaos`.
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_small_chaos_run_loses_and_duplicates_nothing(
    backend: str, tmp_path: Path, pg_admin_url: str | None
) -> None:
    """60 returns, 2 worker processes, 8+ worker kills and a web kill, every fault on."""
    with ExitStack() as stack:
        url = _database(stack, backend, tmp_path, pg_admin_url)
        summary = run_chaos(
            ChaosOptions(
                db_url=url,
                returns=60,
                tenants=3,
                workers=2,
                kills=8,
                web_kill_every=4,
                seed=5,
                chaos_until_settled=0.3,
                max_chaos_seconds=60,
                settle_timeout=120,
                workdir=tmp_path,
            ),
            log=print,
        )
    _check(summary)
    assert summary["web_kills"] >= 1
    assert summary["acknowledged_probes"] >= 1


@pytest.mark.chaos
@pytest.mark.timeout(4 * 3600)
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_large_chaos_run(backend: str, tmp_path: Path, pg_admin_url: str | None) -> None:
    """2,000 returns, 4 worker processes, at least 100 worker kills (`make chaos`)."""
    with ExitStack() as stack:
        url = _database(stack, backend, tmp_path, pg_admin_url)
        summary = run_chaos(
            ChaosOptions(
                db_url=url,
                returns=2000,
                workers=4,
                kills=100,
                settle_timeout=7200,
                workdir=tmp_path,
            ),
            log=print,
        )
    _check(summary)

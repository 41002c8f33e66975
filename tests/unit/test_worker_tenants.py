"""Workers claim the jobs of their own tenants (docs/decisions/0010-workers-by-tenant.md).

A worker process claims only jobs of the tenants in its tenants file, or of the tenants it
is pinned to (`returnsync worker --for-tenant`, `RETURNSYNC_WORKER_TENANTS`): a job of a
tenant it has no configuration for would fail there and be buried.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from returnsync.bootstrap import runtime
from returnsync.config import Settings
from returnsync.engine.worker import Worker, for_tenants
from returnsync.errors import ConfigError
from returnsync.simulators.demo.tenantsfile import tenants_toml
from returnsync.storage import jobqueue
from returnsync.testing.tenants import make_tenant, tenants_context

if TYPE_CHECKING:
    from pathlib import Path

    from returnsync.storage.db import Database


def test_a_worker_claims_for_its_tenants_file_or_the_tenants_it_is_pinned_to() -> None:
    assert for_tenants({"acme": 1, "beta": 2}) == {"acme", "beta"}
    assert for_tenants(["acme", "beta"], ["beta"]) == {"beta"}
    with pytest.raises(ConfigError, match=r"\['gamma'\] are not in the tenants file"):
        for_tenants(["acme", "beta"], ["beta", "gamma"])


def test_the_setting_takes_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETURNSYNC_WORKER_TENANTS", " acme, beta ,")
    assert Settings().worker_tenants == ["acme", "beta"]
    monkeypatch.delenv("RETURNSYNC_WORKER_TENANTS")
    assert Settings().worker_tenants == []


def test_a_worker_leaves_other_tenants_jobs_pending(db: Database, clock: Any) -> None:
    """A worker configured for acme only never claims (and so never buries) beta's job."""
    ctx = tenants_context(db, clock, "acme", "beta", worker_tenants=["acme"])
    with db.begin() as conn:
        for tenant in ("beta", "acme"):
            jobqueue.enqueue(
                conn,
                tenant=tenant,
                kind="probe",
                serial_key=f"return:{tenant}:R1",
                payload={},
                now=clock.now(),
            )
    ran: list[str] = []
    worker = runtime(ctx).worker
    worker.handlers = {"probe": lambda _ctx, job: ran.append(job.tenant)}
    assert worker.tenants == {"acme"}
    assert worker.run_once()
    assert not worker.run_once()  # beta's job is older, and not this worker's
    assert ran == ["acme"]
    everyone = Worker(ctx, {"probe": lambda _ctx, job: ran.append(job.tenant)}, name="all")
    assert everyone.run_once()
    assert ran == ["acme", "beta"]


def test_a_worker_that_meets_another_tenants_job_leaves_it_and_filters_from_then_on(
    db: Database, clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Not pinned, a worker claims unfiltered (cheapest) until a job of a tenant missing
    from its file turns up: that claim is rolled back (the job untouched) and the worker
    claims only its own tenants' jobs from then on, with one warning."""
    ctx = tenants_context(db, clock, "acme")  # this machine's file lacks beta
    with db.begin() as conn:
        for tenant in ("beta", "acme", "acme"):
            jobqueue.enqueue(
                conn,
                tenant=tenant,
                kind="probe",
                serial_key=f"return:{tenant}:R{clock.now().second}",
                payload={},
                now=clock.now(),
            )
            clock.advance(seconds=1)
    ran: list[str] = []
    worker = runtime(ctx).worker
    worker.handlers = {"probe": lambda _ctx, job: ran.append(job.tenant)}
    assert worker.run_once()  # met beta's job first, left it, then ran acme's
    assert ran == ["acme"]
    assert "met job 1 of tenant 'beta'" in caplog.text
    assert worker.run_once()
    assert not worker.run_once()
    assert ran == ["acme", "acme"]
    assert caplog.text.count("met job") == 1
    with db.begin() as conn:
        [beta] = [j for j in jobqueue.listing(conn) if j["tenant"] == "beta"]
    assert (beta["status"], beta["attempts"], beta["locked_by"]) == ("pending", 0, None)


def test_the_worker_command_refuses_a_tenant_it_has_no_configuration_for(
    tmp_path: Path,
) -> None:
    tenants = tmp_path / "tenants.toml"
    tenants.write_text(tenants_toml({"acme": make_tenant("acme")}), encoding="utf-8")
    env = {
        **os.environ,
        "RETURNSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}",
        "RETURNSYNC_TENANTS_FILE": str(tenants),
    }
    done = subprocess.run(
        [sys.executable, "-m", "returnsync", "worker", "--for-tenant", "acmee"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "['acmee'] are not in the tenants file (it has acme)" in " ".join(done.stderr.split())

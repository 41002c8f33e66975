"""Our service processes (web, workers) are configured through RETURNSYNC_* variables."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from returnsync.config import Settings
from returnsync.simulators.demo.processes import service_env

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def test_a_service_process_reads_back_every_setting_the_world_chose(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What a test world sets differently from the defaults must reach its processes."""
    chosen = Settings(
        database_url=f"sqlite:///{tmp_path}/x.db",
        tenants_file=tmp_path / "t.toml",
        public_url="http://127.0.0.1:9",
        zigzag_base_url="http://127.0.0.1:10",
        gateway_base_url="http://127.0.0.1:11",
        worker_threads=3,
        job_lease_seconds=7.5,
        poll_interval_seconds=2.5,
        settled_sync_delay_seconds=1.5,
    )
    for name in [k for k in os.environ if k.startswith("RETURNSYNC_")]:
        monkeypatch.delenv(name)
    for name, value in service_env(chosen).items():
        if name.startswith("RETURNSYNC_"):
            monkeypatch.setenv(name, value)
    read = Settings()
    changed = {k for k, v in chosen.model_dump().items() if v != Settings.model_fields[k].default}
    assert changed, "the test must choose settings away from their defaults"
    assert {k: getattr(read, k) for k in changed} == {k: getattr(chosen, k) for k in changed}

"""The benchmarks run end to end at tiny sizes and report figures (never judged on speed).

Each runs as `python -m bench <name>` from the repository root, as `make bench` does, with
its results in a temporary folder; only completion and the presence of numbers (and the
correctness checks the benchmarks make themselves) are asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bench(tmp_path: Path, *argv: str) -> dict:
    done = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "bench", "--out", str(tmp_path), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "| benchmark | case | figure | value | notes |" in done.stdout
    results = json.loads((tmp_path / "results.json").read_text())["benches"]
    assert (tmp_path / "results.md").exists()
    return results[argv[0]]


def _number(value: object) -> bool:
    return isinstance(value, int | float) and value > 0


def test_ingest_smoke(tmp_path):
    result = _bench(tmp_path, "ingest", "--events", "200", "--warmup", "20", "--concurrency", "8")
    assert _number(result["noop_requests_per_s"])
    assert _number(result["durable_requests_per_s"])
    assert _number(result["ratio"])
    assert result["durability"]["ok"], result["durability"]
    assert result["durability"]["distinct_event_ids_sent"] == 140 + 14
    assert all(r["value"] not in {"", "-"} for r in result["rows"])


def test_pipeline_smoke(tmp_path, pg_admin_url):
    configs = "sqlite:2,postgres:2" if pg_admin_url else "sqlite:2"
    result = _bench(
        tmp_path,
        "pipeline",
        "--returns",
        "20",
        "--tenants",
        "1",
        "--configs",
        configs,
        "--max-seconds",
        "150",
    )
    assert [r["label"] for r in result["results"]] == [
        f"{c.split(':')[0]}-{c.split(':')[1]}w" for c in configs.split(",")
    ]
    for run in result["results"]:
        assert run["returns"] == 20
        assert run["settled"] > 0
        assert _number(run["returns_per_s"])
        assert _number(run["calls"]["per_return_total"])
        assert run["summary"]["duplicate_refunds"] == 0
        assert run["summary"]["duplicate_credit_notes"] == 0
        # our web app ran in its own process (it answered every webhook and KCC call)
        assert run["cpu_seconds_by_part"]["web"] > 0
        if run["database"] == "postgres":
            assert "jobs" in run["pg"]["final"]


def test_catalog_smoke(tmp_path):
    result = _bench(tmp_path, "catalog", "--items", "500", "--max-seconds", "120")
    assert result["accept"]["statuses"] == {"200": 5}
    assert _number(result["accept"]["items_per_s"])
    assert result["process"]["posts_processed"] > 0
    assert _number(result["process"]["items_per_s"])


def test_claim_smoke(tmp_path, pg_admin_url):
    databases = "sqlite,postgres" if pg_admin_url else "sqlite"
    result = _bench(
        tmp_path, "claim", "--backlog", "200", "--claims", "10", "--database", databases
    )
    assert list(result["median_us"]) == databases.split(",")
    for medians in result["median_us"].values():
        assert list(medians) == [
            "every tenant",
            "all four named",
            "300 named",
            "small only",
            "tiny only",
            "passing over big",
        ]
        assert all(_number(us) for us in medians.values())
    assert len(result["rows"]) == 6 * len(result["median_us"])


def test_readers_smoke(tmp_path, pg_admin_url):
    databases = "sqlite,postgres" if pg_admin_url else "sqlite"
    argv = ("--seconds", "0.3", "--history", "300", "--pollers", "2", "--database", databases)
    result = _bench(tmp_path, "readers", *argv)
    assert list(result["figures"]) == databases.split(",")
    for cases in result["figures"].values():
        assert list(cases) == ["alone", "idle workers", "dashboard"]
        for figures in cases.values():
            assert all(_number(figures[k]) for k in ("writes_per_second", "p50_ms", "p99_ms"))
    assert len(result["rows"]) == 3 * len(result["figures"])


@pytest.mark.skipif(
    not (ROOT / "bench" / "reconcile.py").exists(), reason="bench/reconcile.py not present"
)
def test_reconcile_delegation_smoke(tmp_path):
    result = _bench(tmp_path, "reconcile", "--lines", "5000", "--repeat", "1")
    assert result["rows"]
    assert "figures" in result, result["rows"]
    assert _number(result["figures"]["ratio"])

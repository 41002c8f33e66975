"""Deterministic simulation (returnsync.testing.dst): seeded scenarios in the normal suite,
replay is exact, the harness catches a known bug class, and the 10,000-seed chaos run."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from returnsync.domain.money import Money
from returnsync.services import refunds
from returnsync.storage import jobqueue, khaos, returns
from returnsync.testing import dst, faults

if TYPE_CHECKING:
    from returnsync.ports import GatewayRefund
    from returnsync.services.context import Context

SUITE_SEEDS = range(200)  # ~0.35 s of CPU each: about 40 s on two cores
CHAOS_SEEDS = 10_000
JOBS = max(1, min(2, os.cpu_count() or 1))
REPLAY_SEEDS = (3, 17, 29)

# Production bugs the simulation found that are reported but not fixed yet: violations
# containing the text are tolerated by the seed runs below, and each entry gets a strict-xfail
# `test_known_bug_*` that starts failing once the fix lands. None open today (seed 172 found
# a retry colliding with a pending duplicate; fixed in jobqueue.retry).
KNOWN_BUGS: dict[str, str] = {}


def _unexpected(result: dst.Summary) -> list[str]:
    return [v for v in result.violations if not any(k in v for k in KNOWN_BUGS.values())]


def _report(results: list[dst.Summary]) -> str:
    failing = [r for r in results if _unexpected(r)]
    lines = [f"{len(failing)} of {len(results)} seeds failed:"]
    lines += [f"  seed {r.seed}: {_unexpected(r)[0]}" for r in failing[:20]]
    lines.append("replay: python -m returnsync.testing.dst --seed N --verbose")
    return "\n".join(lines)


@pytest.mark.timeout(900)  # ~40 s on two idle cores; the mark only guards against a hang
def test_seeded_scenarios_hold_every_invariant() -> None:
    results = dst.run_many(list(SUITE_SEEDS), jobs=JOBS)
    assert len(results) == len(SUITE_SEEDS)
    assert not any(_unexpected(r) for r in results), _report(results)


def test_seed_172_retry_meets_a_pending_duplicate_and_holds() -> None:
    """The seed that found the retry-vs-pending-duplicate bug now keeps every invariant."""
    outcome = dst.run_seed(172)
    assert not outcome.violations, outcome.violations[:3]


def test_a_seed_replays_exactly() -> None:
    fired = 0
    for seed in REPLAY_SEEDS:
        first = dst.run_seed(seed)
        second = dst.run_seed(seed)
        assert first.trace == second.trace, f"seed {seed} diverged"
        fired += sum(n for k, n in first.stats.items() if k.startswith("fault:"))
    assert fired, "no fault fired: the replay check proves nothing about faults"


def test_a_seed_replays_in_a_fresh_interpreter_with_another_hash_seed() -> None:
    seed = REPLAY_SEEDS[0]
    here = dst.run_seed(seed)
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run(  # noqa: S603 (our own interpreter and module, fixed arguments)
        [sys.executable, "-m", "returnsync.testing.dst", "--seed", str(seed)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert done.returncode in {0, 1}, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"trace {here.digest}" in done.stdout.splitlines()[-1]


def test_the_command_runs_seeds_on_every_cpu_unless_told(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--seeds N` spreads the runs over one process per CPU by default, `--jobs` sets it;
    it reports the rate and exits 0 when every seed held."""
    asked: list[int] = []
    real = dst.run_many

    def counting(seeds: list[int], **kwargs: Any) -> list[dst.Summary]:
        asked.append(kwargs["jobs"])
        return real(seeds, **{**kwargs, "jobs": 1})

    monkeypatch.setattr(dst, "run_many", counting)
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert dst.main(["--seeds", "2", "--start", "5"]) == 0
    assert dst.main(["--seeds", "1", "--jobs", "1"]) == 0
    assert asked == [3, 1]
    out = capsys.readouterr().out
    assert "ran 2 scenarios (seeds 5..6)" in out
    assert "(3 processes)" in out
    assert "(1 process)" in out


def test_some_scenarios_run_workers_pinned_to_their_tenants() -> None:
    """Some scenarios claim through the tenant filter (ADR 0010), the others without it:
    read off the worker each scenario ran, not off its trace."""
    kinds = set()
    with dst.Runner() as runner:
        for seed in range(1, 7):
            runner.db.restore(runner.template)
            sim = dst.Simulation(seed, db=runner.db)
            assert sim.run().ok
            kinds.add(sim.worker.tenants == frozenset(sim.worlds))
            assert sim.worker.tenants in (None, frozenset(sim.worlds))
    assert kinds == {True, False}


def test_some_scenarios_give_tenants_turns() -> None:
    """Two-tenant scenarios whose workers take tenant turns (ADR 0011) do pass over a tenant
    (counted by the workers themselves); scenarios with turns off never do."""
    given: dict[bool, int] = {True: 0, False: 0}
    with dst.Runner() as runner:
        for seed in range(60):
            runner.db.restore(runner.template)
            sim = dst.Simulation(seed, db=runner.db)
            assert sim.run().ok
            if len(sim.worlds) > 1:
                given[sim.turn > 0] += sim.turns_given
            else:
                assert sim.turns_given == 0  # one tenant: nobody to give a turn to
    assert given[True] > 0
    assert given[False] == 0


def test_the_simulation_catches_an_idle_look_that_misses_a_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A quarter of the scenarios (seed divisible by 4) look before claiming when idle, as
    worker threads do (ADR 0012); a look that misses a runnable job fails them, and only
    them."""
    monkeypatch.setattr(jobqueue, "anything_due", lambda *_a, **_k: False)
    failed = set()
    with dst.Runner() as runner:
        for seed in range(8):
            runner.db.restore(runner.template)
            result = dst.Simulation(seed, db=runner.db).run()
            if not result.ok:
                assert any("anything_due saw nothing due" in v for v in result.violations)
                failed.add(seed)
    assert failed == {0, 4}


def test_fault_points_do_nothing_unless_armed() -> None:
    faults.maybe_crash("anything")  # not armed: a no-op
    assert not faults.buggify("anything")
    import random  # noqa: PLC0415

    plan = faults.FaultPlan(random.Random(1), enable_chance=1.0, rates={"*": (1.0,)})
    with faults.armed(plan), pytest.raises(faults.SimulatedCrash):
        faults.maybe_crash("x.after_apply")
    assert plan.fired["x.after_apply"] == 1
    # A crash unwinds like a killed process: the worker's `except Exception` cannot record it.
    assert not issubclass(faults.SimulatedCrash, Exception)
    faults.maybe_crash("x.after_apply")  # disarmed again


def test_the_simulation_catches_a_refund_retried_blindly(monkeypatch: pytest.MonkeyPatch) -> None:
    """The FoundationDB `commit_unknown_result` bug: pay again with a fresh key after an
    unknown outcome, without looking for the first refund. The simulation must see it."""
    calls = [0]

    def naive(ctx: Context, tenant_id: str, return_ref: str) -> GatewayRefund | None:
        with ctx.db.begin() as conn:
            row: Any = returns.row(conn, tenant_id, return_ref)
            notes = khaos.credit_notes_for(conn, tenant_id, row["associated_ref"])
        note = next(n for n in notes if n["code"] == row["credit_note"])
        gateway = ctx.gateway(tenant_id)
        payment = gateway.find_payment(row["order_ref"])
        if payment is None:
            return None
        calls[0] += 1
        paid = gateway.refund(
            payment.payment_ref,
            amount=Money(Decimal(note["gross"]), note["currency"]),
            idempotency_key=f"naive:{calls[0]}",
            metadata={"return_ref": return_ref, "credit_note": note["code"], "tenant": tenant_id},
        )
        key = refunds.refund_key(tenant_id, return_ref, note["code"])
        refunds._done(ctx, tenant_id, return_ref, key=key, paid=paid, how="paid")
        return paid

    monkeypatch.setattr(refunds, "refund", naive)
    with dst.Runner() as runner:
        for seed in range(60):
            outcome = runner.run(seed)
            if any("refunds for return" in v for v in outcome.violations):
                return
    pytest.fail("60 seeds never caught a double refund from a blind retry")


@pytest.mark.chaos
@pytest.mark.timeout(0)
def test_chaos_ten_thousand_seeds() -> None:
    start = int(os.environ.get("RETURNSYNC_DST_START", "0"))
    count = int(os.environ.get("RETURNSYNC_DST_SEEDS", str(CHAOS_SEEDS)))
    results = dst.run_many(list(range(start, start + count)), jobs=os.cpu_count() or 1)
    assert len(results) == count
    assert not any(_unexpected(r) for r in results), _report(results)

"""BUGGIFY-style fault points: named places where a simulation may inject a failure.

A fault point is a call such as `maybe_crash("gateway.refund.after_apply")`. Outside a
simulation it does nothing (one global read). Inside one, the armed `FaultPlan` decides,
from the simulation's seeded RNG, whether the point fires. The activation model is
FoundationDB's: the first time a run meets a point, the point is switched on or off for the
whole run (50/50), and an enabled point then fires with a probability drawn once per run
from its class of rates. So most runs exercise a few points hard instead of all points
rarely, and a seed replays exactly.

A crash is `SimulatedCrash`, a BaseException: the worker's `except Exception` does not
catch it, so it unwinds like a killed process. Open transactions roll back, the claimed job
keeps its lease until the lease expires, and nothing after the point runs.
"""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import random
    from collections.abc import Iterator

# Rates by point pattern (fnmatch; the longest matching pattern wins). Database points are
# met on every commit, so they fire rarely; remote calls are met a few times per return, so
# they fire often; and the dangerous ones (the call was applied but we do not know it) more.
DEFAULT_RATES: dict[str, tuple[float, ...]] = {
    "*": (0.05, 0.15, 0.3),
    "db.*": (0.003, 0.01, 0.03),
    "job.*": (0.01, 0.03, 0.08),
    "*.lost_response": (0.2, 0.4, 0.6),
    "*.after_apply": (0.2, 0.4, 0.6),
}
ENABLE_CHANCE = 0.5


class SimulatedCrash(BaseException):
    """The simulated process died at a fault point (never caught by `except Exception`)."""

    def __init__(self, point: str) -> None:
        super().__init__(f"simulated crash at {point}")
        self.point = point


class FaultPlan:
    """Which fault points fire in one run, decided lazily from the run's RNG."""

    def __init__(
        self,
        rng: random.Random,
        *,
        rates: dict[str, tuple[float, ...]] | None = None,
        enable_chance: float = ENABLE_CHANCE,
    ) -> None:
        self._rng = rng
        self._rates = rates or DEFAULT_RATES
        self._enable_chance = enable_chance
        self._sites: dict[str, float] = {}
        self.enabled = True
        self.fired: Counter[str] = Counter()

    def chance(self, point: str) -> float:
        """The firing probability of `point` in this run (0.0 when the point is off)."""
        if point not in self._sites:
            pattern = max((p for p in self._rates if fnmatchcase(point, p)), key=len, default="")
            rates = self._rates.get(pattern, (0.0,))
            on = self._rng.random() < self._enable_chance
            self._sites[point] = self._rng.choice(rates) if on else 0.0
        return self._sites[point]

    def fire(self, point: str) -> bool:
        """Whether `point` fires now. Consumes randomness only while the plan is enabled."""
        if not self.enabled:
            return False
        chance = self.chance(point)
        if chance <= 0.0 or self._rng.random() >= chance:
            return False
        self.fired[point] += 1
        return True

    @contextmanager
    def suspended(self) -> Iterator[None]:
        """No point fires inside the block (the simulation's own bookkeeping)."""
        previous, self.enabled = self.enabled, False
        try:
            yield
        finally:
            self.enabled = previous

    def sites(self) -> dict[str, float]:
        """Every point met so far and its firing probability (0.0 = off), by name."""
        return dict(sorted(self._sites.items()))


_plan: FaultPlan | None = None


def buggify(point: str) -> bool:
    """True when an armed simulation decides that `point` misbehaves now; else False."""
    return _plan is not None and _plan.fire(point)


def maybe_crash(point: str) -> None:
    """Raise SimulatedCrash when an armed simulation fires `point`; otherwise do nothing."""
    if buggify(point):
        raise SimulatedCrash(point)


@contextmanager
def armed(plan: FaultPlan) -> Iterator[FaultPlan]:
    """Arm `plan` for the block (one simulation at a time, in one thread)."""
    global _plan  # noqa: PLW0603 (the hook is process-wide by design, like FDB's BUGGIFY)
    previous, _plan = _plan, plan
    try:
        yield plan
    finally:
        _plan = previous

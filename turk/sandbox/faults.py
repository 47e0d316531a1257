"""Fault injection for the Requester API: throttling, service faults, slow and lost replies."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

from turk.sandbox.errors import SandboxError

THROTTLE = "throttle"
FAULT = "fault"
LOST = "lost"


@dataclass
class FaultPlan:
    """How often the API misbehaves, drawn from a seeded generator (deterministic order).

    Attributes:
        throttle: Share of calls answered ``ThrottlingException`` (nothing done).
        fault: Share of calls answered ``ServiceFault`` (HTTP 500, nothing done).
        lost: Share of calls whose operation is done but whose reply is cut off after the
            headers (the client sees a dropped connection and retries).
        slow: Seconds every reply is delayed.
        seed: Seed of the generator.
    """

    throttle: float = 0.0
    fault: float = 0.0
    lost: float = 0.0
    slow: float = 0.0
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for name in (THROTTLE, FAULT, LOST):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise SandboxError(f"faults: {name}={rate} is not a rate; use a number from 0 to 1")
        if self.throttle + self.fault + self.lost > 1.0:
            raise SandboxError("faults: throttle + fault + lost exceed 1; lower the rates")
        if self.slow < 0:
            raise SandboxError(f"faults: slow={self.slow} is negative; use seconds >= 0")
        self._rng = random.Random(self.seed)

    def draw(self) -> str | None:
        """Decide the fate of the next API call.

        Returns:
            ``throttle``, ``fault``, ``lost`` or None (answered normally).
        """
        with self._lock:
            roll = self._rng.random()
        if roll < self.throttle:
            return THROTTLE
        if roll < self.throttle + self.fault:
            return FAULT
        if roll < self.throttle + self.fault + self.lost:
            return LOST
        return None

    @property
    def active(self) -> bool:
        """True when any fault or delay is configured."""
        return bool(self.throttle or self.fault or self.lost or self.slow)


def parse_faults(spec: str | None, seed: int = 0) -> FaultPlan:
    """Parse ``throttle=RATE,fault=RATE,lost=RATE,slow=SECONDS`` (any subset, any order).

    Args:
        spec: The spec, or None / empty for no faults.
        seed: Seed of the plan's generator (``seed=N`` in the spec overrides it).

    Returns:
        The plan.

    Raises:
        SandboxError: An unknown key or a value that is not a number.
    """
    values: dict[str, float] = {}
    for part in (spec or "").split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, raw = part.partition("=")
        key = key.strip()
        if not sep or key not in (THROTTLE, FAULT, LOST, "slow", "seed"):
            raise SandboxError(
                f"faults: {part!r} is not KEY=VALUE with KEY one of "
                "throttle, fault, lost, slow, seed"
            )
        try:
            values[key] = float(raw)
        except ValueError:
            raise SandboxError(f"faults: {key}={raw!r} is not a number") from None
    plan_seed = int(values.pop("seed", seed))
    return FaultPlan(seed=plan_seed, **values)

"""A circuit breaker that stops a drainer hammering a broker that is down.

Closed: batches are published. After ``threshold`` consecutive failed batches it opens: the
drainer claims nothing (no row is charged an attempt) until the cool-down has passed. Then it
is half-open: the drainer first *probes* (connects without publishing); a failed probe
re-opens it with a doubled cool-down (capped), a good probe lets one real batch through, and
that batch's success closes it. One breaker per process: each drainer process learns on its
own that the broker is back, at most ``max_cooldown`` seconds late.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable


class CircuitBreaker:
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"

    def __init__(
        self,
        *,
        threshold: int = 3,
        cooldown: float = 1.0,
        max_cooldown: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.base_cooldown = cooldown
        self.max_cooldown = max_cooldown
        self._monotonic = monotonic
        self.state = self.CLOSED
        self.failures = 0
        self.opened = 0  # consecutive openings: the cool-down doubles with each
        self._retry_at = 0.0

    def allows(self) -> bool:
        """May the drainer try now? Moves open to half-open once the cool-down is over."""
        if self.state == self.OPEN and self._monotonic() >= self._retry_at:
            self.state = self.HALF_OPEN
        return self.state != self.OPEN

    @property
    def probing(self) -> bool:
        return self.state == self.HALF_OPEN

    def seconds_until_retry(self) -> float:
        return max(0.0, self._retry_at - self._monotonic()) if self.state == self.OPEN else 0.0

    def record_success(self) -> None:
        self.state, self.failures, self.opened = self.CLOSED, 0, 0

    def record_failure(self) -> None:
        self.failures += 1
        if self.state == self.HALF_OPEN or self.failures >= self.threshold:
            cooldown = min(self.max_cooldown, self.base_cooldown * 2**self.opened)
            # Jitter: drainers that saw the broker go down together do not all probe at once.
            self._retry_at = self._monotonic() + cooldown * random.uniform(0.75, 1.0)  # noqa: S311
            self.opened += 1
            self.state = self.OPEN


_process_breaker: tuple[int, CircuitBreaker] | None = None


def default_breaker() -> CircuitBreaker:
    """This process's breaker (a forked child starts with a closed one of its own)."""
    global _process_breaker
    import os

    from django.conf import settings

    if _process_breaker is None or _process_breaker[0] != os.getpid():
        _process_breaker = (
            os.getpid(),
            CircuitBreaker(
                threshold=settings.OUTBOX_BREAKER_THRESHOLD,
                cooldown=settings.OUTBOX_BREAKER_COOLDOWN_SECONDS,
                max_cooldown=settings.OUTBOX_BREAKER_MAX_COOLDOWN_SECONDS,
            ),
        )
    return _process_breaker[1]

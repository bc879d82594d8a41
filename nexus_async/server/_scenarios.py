"""Delivery scenarios: webhook deliveries duplicated, delayed, reordered or dropped.

They let users' tests prove that a receiver drops duplicates, copes with results in
any order, and that their waits never depend on webhooks arriving. Set through the
one-liners of ``NexusCore`` (``duplicate_deliveries`` and so on); they apply to job
deliveries, not to the ``:test`` call, from the next delivery on.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ._clock import Clock

__all__ = ["DeliveryScenarios"]

R = TypeVar("R")


class DeliveryScenarios:
    """What happens to each job delivery on its way out; all off at first."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Turn every scenario off."""
        self.copies = 0  # extra sends of each accepted delivery
        self.delay = 0.0  # seconds every delivery is held
        self.window = 0.0  # plus a random hold within this many seconds
        self.drop_every = 0  # every n-th delivery is lost (0: none)
        self._random = random.Random(0)
        self._count = 0

    def reorder(self, window: float, seed: int) -> None:
        """Hold each delivery a random time within ``window`` seconds, drawn from ``seed``."""
        self.window = window
        self._random = random.Random(seed)

    async def run(
        self,
        send: Callable[[], Awaitable[R]],
        clock: Clock,
        *,
        accepted: Callable[[R], bool],
        dropped: R,
    ) -> R:
        """Deliver through ``send`` as the scenarios say; return what counts as the outcome.

        Args:
            send: makes the delivery (every attempt its webhook's policy allows).
            clock: the server's clock, for delays.
            accepted: whether an outcome was a success (duplicates follow successes).
            dropped: the outcome reported for a dropped delivery (a success: the server
                believes it delivered).
        """
        self._count += 1
        wait = self.delay + (self._random.uniform(0.0, self.window) if self.window else 0.0)
        if wait > 0:
            await clock.sleep(wait)
        if self.drop_every and self._count % self.drop_every == 0:
            return dropped
        result = await send()
        if accepted(result):
            for _ in range(self.copies):  # the same deliveryId: receivers must drop them
                await send()
        return result

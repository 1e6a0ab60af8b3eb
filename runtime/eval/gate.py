"""A gate per running environment: at most its declared concurrency of leases at once.

One running environment (the local daemon, a container) serves one rollout at a time
unless it declares more: rollouts would share its /workspace, and its daemon refuses a
`tasks.start` beyond that. The local and attach placements take a slot from `open()`
until the lease closes, so a group against one container runs its members in turn.
"""

from __future__ import annotations

import asyncio
import weakref


class Gate:
    """At most `limit` leases at once on one running environment.

    The limit starts at 1 and is raised to what the environment declares once it is
    known (`learn`), so the first lease on a container reads its manifest alone.
    `release` and `learn` never wait, so a cancelled rollout cannot leak its slot.
    """

    def __init__(self) -> None:
        self.limit = 1
        self.active = 0
        self._waiters: list[asyncio.Future[None]] = []

    async def acquire(self) -> None:
        while self.active >= self.limit:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:  # cancelled: a wake-up it may have had goes to the next
                self._waiters.remove(waiter)
                self._wake()
                raise
            self._waiters.remove(waiter)
        self.active += 1

    async def release(self) -> None:
        self.active -= 1
        self._wake()

    async def learn(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._wake()

    def _wake(self) -> None:
        # the first waiters, one per free slot, in arrival order; each checks again
        for waiter in self._waiters[:max(0, self.limit - self.active)]:
            if not waiter.done():
                waiter.set_result(None)


# one gate per target per event loop, so that every placement in this process attached to
# one container shares it (asyncio primitives belong to one loop)
_GATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Gate]] = (
    weakref.WeakKeyDictionary())


def gate_for(target: str) -> Gate:
    gates = _GATES.setdefault(asyncio.get_running_loop(), {})
    return gates.setdefault(target, Gate())


def at_once(concurrency: int | None) -> str:
    """How many rollouts a running environment serves at once, for `describe()`."""
    if concurrency is None:
        return "rollouts one at a time unless the env declares more"
    return "one rollout at a time" if concurrency == 1 else f"{concurrency} rollouts at once"

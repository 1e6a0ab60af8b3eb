"""`WarmPool`: environments started ahead of demand, each serving exactly one rollout.

`Taskset.run(..., warm=N)` wraps its placement in a pool, so a container starts while
agents work instead of after a rollout asks for it. The rules, and why:

- Supply. The pool keeps `N` leases ready (or opening) beyond the rollouts already
  waiting for one, and never more than the rollouts that will still ask (`demand`,
  raised by `expect()` for each retry): at the end of a job nothing is left running
  that nobody will use. It does not count against `max_concurrent`, which bounds
  rollouts (agents), not environments: at most `max_concurrent + N` containers live.
- One rollout each. A lease is handed out once; the rollout closes it (the docker
  placement removes the container) and the pool opens a fresh one. A rollout never
  sees another's state.
- Readiness. A lease counts only once `Placement.open()` returns it (its contract: a
  daemon that answered). An open that raises is replaced, never handed out, logged
  (warning) and counted (`stats.failed`). After `max_failures` failures in a row the
  pool gives up: every waiting and later `open()` raises one `InfraError` that names
  the placement and the last error, and `Taskset.run` raises it, so a broken image
  fails the job instead of looping.
- Labels. A pool lease is opened before the rollout that takes it exists, so its
  rollout id (the docker placement's `org.hud.rollout` label) is a pool id,
  `warm-<hex>`; the hand-out records it in the lease's info (`warm_lease`), which the
  rollout's trace and `Run.placement` keep. The job id, and with it the `org.hud.job`
  label that `hud prune` finds, is the job's own.
- Shutdown. `close()` (the taskset's `finally`, on success, error or Ctrl-C) fails the
  waiters, closes every ready lease, and waits for opens in flight to finish (at most
  `CLOSE_GRACE` seconds, then cancels them) to close what they return: cancelling a
  `docker run` midway could leave a container nobody knows the id of. A crash (SIGKILL)
  cannot clean up: `hud prune` removes the pool's containers by their job label.

Placements with one running environment (local, attach) have nothing to start ahead:
a pool over them is a `ConfigError` rather than a silent no-op.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass

from hud.errors import ConfigError, HudError, InfraError
from hud.eval.placement import AttachPlacement, Lease, LocalPlacement, Placement, new_id

log = logging.getLogger("hud.eval")

#: the prefix of a pool lease's id (the docker placement's `org.hud.rollout` label)
WARM_PREFIX = "warm-"
#: seconds `close()` lets opens in flight finish before it cancels them
CLOSE_GRACE = 30.0

_Ready = tuple[str, Lease]


@dataclass
class PoolStats:
    """What a pool did: leases opened ready, served, failed their readiness check while
    the pool was in use (replaced, or the last before it gave up), discarded unused."""

    opened: int = 0
    served: int = 0
    failed: int = 0
    discarded: int = 0


class WarmPool(Placement):
    """Keep `size` environments of `placement` ready ahead of a job's rollouts.

    Args:
        placement: where the environments live (a fresh one per `open()`: docker, or
            any placement that is not local or attach).
        size: leases kept ready beyond the rollouts waiting for one (>= 1).
        job_id: the job every lease is opened for (its containers carry its label).
        demand: rollouts that will ask for a lease; `expect()` adds to it.
        max_failures: readiness failures in a row before the pool gives up
            [default: max(3, size)].

    Raises:
        ConfigError: a bad size, or a placement with nothing to start ahead.
    """

    def __init__(self, placement: Placement, size: int, *, job_id: str, demand: int,
                 max_failures: int | None = None) -> None:
        check_warm(size, placement)
        if size < 1:
            raise ConfigError(f"a warm pool holds at least 1 environment, got size={size}")
        if max_failures is not None and max_failures < 1:
            raise ConfigError(f"max_failures must be >= 1 (readiness failures in a row before "
                              f"the pool gives up), got {max_failures}")
        self.placement = placement
        self.size = size
        self.job_id = job_id
        self.max_failures = max_failures if max_failures is not None else max(3, size)
        self.name = placement.name
        self.stats = PoolStats()
        #: set once the pool gave up; every later `open()` raises it
        self.error: InfraError | None = None
        self._unclaimed = max(0, demand)
        self._ready: collections.deque[_Ready] = collections.deque()
        self._waiters: collections.deque[asyncio.Future[_Ready]] = collections.deque()
        self._opening: set[asyncio.Task[None]] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._in_a_row = 0
        self._closed = False

    def describe(self) -> str:
        return f"{self.placement.describe()}, warm pool of {self.size}"

    def start(self) -> None:
        """Begin opening leases ahead of demand (call from the job's event loop)."""
        self._top_up()

    def expect(self, count: int = 1) -> None:
        """`count` more rollouts will ask for a lease (a retry)."""
        self._unclaimed += count
        self._top_up()

    @property
    def ready(self) -> int:
        """Leases opened and waiting for a rollout."""
        return len(self._ready)

    @property
    def opening(self) -> int:
        """Opens in flight."""
        return len(self._opening)

    async def open(self, job_id: str, rollout_id: str) -> Lease:
        """A ready lease, never used before: at once if one waits, else the next to open.

        Raises:
            ConfigError: `job_id` is not the pool's job.
            InfraError: the pool gave up (readiness failed too often) or is closed.
        """
        if job_id != self.job_id:
            raise ConfigError(f"this warm pool opens environments for job {self.job_id!r}, "
                              f"not {job_id!r}; make one pool per job")
        self._raise_if_unusable()
        self._unclaimed = max(0, self._unclaimed - 1)
        if self._ready:
            pool_id, lease = self._ready.popleft()
            self._top_up()
            return self._serve(pool_id, lease, rollout_id)
        waiter: asyncio.Future[_Ready] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._top_up()
        try:
            pool_id, lease = await waiter
        except BaseException:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._park(*waiter.result())  # handed over as this caller was cancelled: unused
            raise
        return self._serve(pool_id, lease, rollout_id)

    async def close(self) -> None:
        """Close every lease the pool holds or is opening; waiters get an `InfraError`."""
        self._closed = True
        self._fail_waiters(InfraError(f"the warm pool of job {self.job_id} is closed"))
        while self._ready:
            self._discard(self._ready.popleft()[1])
        try:
            if self._opening:
                await asyncio.wait(set(self._opening), timeout=CLOSE_GRACE)
        finally:  # past the grace, or this close cancelled (a second Ctrl-C): stop waiting
            for task in self._opening:
                task.cancel()
        while self._opening or self._closing:
            await asyncio.gather(*self._opening, *self._closing, return_exceptions=True)
        if self.stats.failed and self.error is None:
            log.warning("warm pool of job %s: %d environment(s) failed their readiness check "
                        "and were replaced (%d opened, %d served)", self.job_id,
                        self.stats.failed, self.stats.opened, self.stats.served)

    async def shutdown(self) -> None:
        try:
            await self.close()
        finally:
            await self.placement.shutdown()

    def _raise_if_unusable(self) -> None:
        if self.error is not None:
            raise self.error
        if self._closed:
            raise InfraError(f"the warm pool of job {self.job_id} is closed")

    def _serve(self, pool_id: str, lease: Lease, rollout_id: str) -> Lease:
        self.stats.served += 1
        lease.info = {**lease.info, "warm_lease": pool_id}
        log.debug("warm pool: %s serves rollout %s", pool_id, rollout_id)
        return lease

    def _top_up(self) -> None:
        """Open leases until the waiters plus `size` ahead are covered, capped at demand."""
        if self._closed or self.error is not None:
            return
        want = len(self._waiters) + min(self.size, self._unclaimed)
        for _ in range(want - len(self._ready) - len(self._opening)):
            task = asyncio.get_running_loop().create_task(self._open_one())
            self._opening.add(task)
            task.add_done_callback(self._opening.discard)

    async def _open_one(self) -> None:
        pool_id = WARM_PREFIX + new_id()
        me = asyncio.current_task()
        assert me is not None
        try:
            lease = await self.placement.open(self.job_id, pool_id)
        except Exception as exc:  # noqa: BLE001 - any failure to open is a failed readiness
            self._opening.discard(me)
            self._failed(pool_id, exc)
            return
        self._opening.discard(me)
        self.stats.opened += 1
        self._in_a_row = 0
        self._park(pool_id, lease)

    def _failed(self, pool_id: str, exc: Exception) -> None:
        if self._closed or self.error is not None:  # cut off by the shutdown, not a verdict
            log.debug("warm pool: %s failed after the pool closed or gave up: %s", pool_id, exc)
            return
        self.stats.failed += 1
        self._in_a_row += 1
        what = str(exc) if isinstance(exc, HudError) else f"{type(exc).__name__}: {exc}"
        log.warning("warm pool: environment %s failed its readiness check (%d in a row; the "
                    "pool gives up at %d) and is replaced: %s", pool_id, self._in_a_row,
                    self.max_failures, what)
        if self._in_a_row < self.max_failures:
            self._top_up()
            return
        self.error = InfraError(
            f"warm pool of job {self.job_id}: {self._in_a_row} environments in a row failed "
            f"their readiness check on {self.placement.describe()}; the last: {what}\n"
            f"fix the image (start one by hand and read its log), or run without warm= to "
            f"see each rollout's own error; the runs so far are in the job's trace store")
        self._fail_waiters(self.error)
        while self._ready:
            self._discard(self._ready.popleft()[1])

    def _park(self, pool_id: str, lease: Lease) -> None:
        """A ready lease: to the first waiter, else onto the ready queue (closed if unusable)."""
        if self._closed or self.error is not None:
            self._discard(lease)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result((pool_id, lease))
                return
        self._ready.append((pool_id, lease))

    def _fail_waiters(self, error: InfraError) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)

    def _discard(self, lease: Lease) -> None:
        self.stats.discarded += 1
        task = asyncio.get_running_loop().create_task(_close_unused(lease))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


async def _close_unused(lease: Lease) -> None:
    try:
        await lease.close()
    except Exception as exc:  # noqa: BLE001 - logged; the other leases still close
        log.warning("warm pool: closing an unused environment (%s) failed: %s",
                    lease.source(), exc)


def check_warm(warm: object, placement: Placement | None = None) -> int:
    """`warm` as a validated count of environments to keep ready (0: no pool).

    Raises:
        ConfigError: not an int >= 0, or > 0 with a placement that has nothing to start
            ahead (local, attach: one running environment serves every rollout).
    """
    if isinstance(warm, bool) or not isinstance(warm, int) or warm < 0:
        raise ConfigError(f"warm must be a whole number >= 0 (environments kept ready ahead "
                          f"of demand), got {warm!r}")
    if warm and isinstance(placement, (LocalPlacement, AttachPlacement, WarmPool)):
        raise ConfigError(
            f"warm={warm} starts environments ahead of demand, but {placement.describe()} "
            f"has one running environment and nothing to start; use warm=0 there, or a "
            f"fresh container per rollout (runtime='docker:IMAGE', hud eval --runtime "
            f"docker:IMAGE)")
    return warm

"""`RayPlacement`: rollouts spread over a Ray cluster, each node on its own Docker engine.

    job = await taskset.run(agent, group=16, runtime="ray://10.0.0.5:6379", retries=2)

The driver (this process) keeps one long-lived slot actor per `hud_slots` of every node
(hud.eval.ray.slot), pinned to that node. A rollout is pulled by whichever slot is free
first, so a slow node never holds work another could do, and `max_concurrent` (the
Taskset's own bound) is global across the cluster. `spread="spread"` (the default) puts a
group's members on different nodes when it can (a node lost costs a group fewer
members), `"pack"` on the same node.

The whole rollout runs on the node (container, agent loop, grading); the driver receives
the `Run` with its trace events and writes `.hud/runs/` exactly as for a local job, and
`run.placement` records the node (Ray node id and host name). A node that is lost
mid-rollout makes that rollout `infra_error` ("node ... lost"), its slots leave the pool,
and `retries` re-run it on another node. A cancelled job (Ctrl-C) cancels its remote
rollouts, whose containers are removed on their nodes.

Images travel by ID, not by tag: before a node's first rollout, its slot asks its own
engine for the image ID, and a node without it receives `docker save` from the driver,
streamed through Ray in chunks into `docker load` (logged as it goes), once per node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from hud.agents.context import Agent
from hud.build import docker as hd
from hud.errors import ConfigError, DockerError, HudError, InfraError
from hud.eval.lease import Lease, Placement
from hud.eval.placement import DEFAULT_PIDS_LIMIT, new_id
from hud.eval.ray.agents import shippable
from hud.eval.ray.cluster import SLOT_RESOURCE, address_of, alive_nodes, connect, slot_nodes
from hud.eval.results import Run
from hud.eval.traces import ID_PATTERN, job_dir, redact
from hud.task import Task

log = logging.getLogger("hud.eval")

#: bytes of `docker save` output per Ray call when shipping an image to a node
CHUNK = 8 << 20
#: seconds for the slot actors to start
START_TIMEOUT = 120.0
#: seconds a cancelled remote rollout gets to close its lease and remove its container
CANCEL_GRACE = 30.0
#: seconds an idle slot on a node that just lost an actor has to answer, or it is dropped
PROBE_TIMEOUT = 5.0


@dataclass(eq=False)
class _Slot:
    actor: Any
    node: str
    host: str = ""
    busy: bool = False
    dead: bool = False


class RayPlacement(Placement):
    """Rollouts on a Ray cluster's nodes, one long-lived actor per docker slot.

    Args:
        image: the env image (tag or ID) on the driver's engine; nodes run it by ID.
        runtime: "ray" (RAY_ADDRESS, or the cluster this process joined) or
            "ray://HOST:PORT" (the head's GCS address).
        spread: "spread" a group's members over nodes, or "pack" them on one.
        keep_slots: keep the slot actors after a job (several jobs from one driver pay
            their start once); `close()` ends them.
        network, cpus, memory, pids_limit, extra_args, ready_timeout: the rollout
            containers' options, as `DockerPlacement`'s.

    Raises:
        ConfigError: `spread` is not "spread" or "pack", or the address is malformed.
    """

    name = "ray"

    def __init__(self, image: str, runtime: str = "ray", *,
                 spread: Literal["spread", "pack"] = "spread", keep_slots: bool = False,
                 network: str = "none", cpus: float | None = None, memory: str | None = None,
                 pids_limit: int = DEFAULT_PIDS_LIMIT, extra_args: list[str] | None = None,
                 ready_timeout: float = 120.0) -> None:
        if spread not in ("spread", "pack"):
            raise ConfigError(f"spread must be 'spread' or 'pack', got {spread!r}")
        self.image = image
        self.runtime = runtime
        self.address = address_of(runtime)
        self.spread = spread
        self.keep_slots = keep_slots
        self.docker_options: dict[str, Any] = {
            "network": network, "cpus": cpus, "memory": memory, "pids_limit": pids_limit,
            "extra_args": list(extra_args or []), "ready_timeout": ready_timeout}
        self.image_id: str | None = None
        self._ray: Any = None
        self._slots: list[_Slot] = []
        self._free = asyncio.Condition()
        self._start_lock = asyncio.Lock()
        self._node_locks: dict[str, asyncio.Lock] = {}
        self._has_image: set[str] = set()
        #: whether image_id was resolved for the current job (kept slots re-resolve it)
        self._image_fresh = False
        self._groups: dict[str, Counter[str]] = {}
        self._agents: dict[int, Any] = {}
        self._jobs: set[str] = set()
        self._interrupted = False

    def describe(self) -> str:
        where = self.address or "RAY_ADDRESS"
        return f"ray ({where}, image {self.image}, {self.spread}, network " \
               f"{self.docker_options['network']})"

    async def open(self, job_id: str, rollout_id: str) -> Lease:
        raise ConfigError("the Ray placement runs whole rollouts on its nodes and lends no "
                          "environment to this process; run it through Taskset.run")

    @property
    def nodes(self) -> dict[str, int]:
        """Live slots per node id (after the first rollout started them)."""
        return dict(Counter(s.node for s in self._slots if not s.dead))

    async def start(self) -> None:
        """Join the cluster, resolve the image ID, start a slot actor per node slot.

        Raises:
            ConfigError: no Ray, no cluster named, no node with slots, no such image.
            InfraError: the cluster cannot be reached, or the actors did not start.
        """
        async with self._start_lock:
            if self._slots and self._image_fresh:
                return
            info = await asyncio.to_thread(hd.inspect_image, self.image)
            if info is None:
                raise ConfigError(f"image {self.image!r} is not in this host's Docker engine, "
                                  f"from which the Ray nodes receive it; build it (`hud "
                                  f"build`) or load it (`hud images load FILE.tar`)")
            if self.image_id != str(info["Id"]):  # rebuilt since the last job (keep_slots)
                self._has_image.clear()
            self.image_id, self._image_fresh = str(info["Id"]), True
            if self._slots:
                return
            self._ray = ray = await asyncio.to_thread(connect, self.address)
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            from hud.eval.ray.slot import SlotWorker

            actor_class = ray.remote(SlotWorker)
            slots = []
            for node in await asyncio.to_thread(slot_nodes, ray):
                for _ in range(node.slots):
                    actor = actor_class.options(
                        num_cpus=0, resources={SLOT_RESOURCE: 1}, max_restarts=0,
                        max_task_retries=0, max_concurrency=8,
                        scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, soft=False),
                    ).remote(self.docker_options)
                    slots.append(_Slot(actor, node.node_id))
            try:
                where = await asyncio.wait_for(
                    asyncio.gather(*(s.actor.where.remote() for s in slots)), START_TIMEOUT)
            except (TimeoutError, ray.exceptions.RayError) as exc:
                for slot in slots:
                    ray.kill(slot.actor)
                raise InfraError(f"the Ray slot actors did not start within {START_TIMEOUT:g}s "
                                 f"({type(exc).__name__}: {exc}); is `hud-python` installed on "
                                 f"every node, in the same version as here?") from None
            for slot, place in zip(slots, where, strict=True):
                slot.host = place["host"]
            self._slots = slots
            log.info("ray: %d slots on %d nodes", len(slots), len(self.nodes))

    async def _acquire(self, group_id: str) -> _Slot:
        """The free slot this group's member should take (waits for one: work is pulled)."""
        async with self._free:
            while True:
                live = [s for s in self._slots if not s.dead]
                if not live:
                    raise InfraError("every node of the Ray cluster with hud_slots was lost; "
                                     "restart them (or add nodes) and re-run the job")
                free = [s for s in live if not s.busy]
                if free:
                    break
                await self._free.wait()
            members = self._groups.setdefault(group_id, Counter())
            idle = Counter(s.node for s in free)
            sign = 1 if self.spread == "spread" else -1
            slot = min(free, key=lambda s: (sign * members[s.node], -idle[s.node]))
            slot.busy = True
            members[slot.node] += 1
            return slot

    async def _release(self, slot: _Slot, group_id: str) -> None:
        async with self._free:
            slot.busy = False
            self._groups[group_id][slot.node] -= 1
            self._free.notify_all()

    async def _lost(self, slot: _Slot) -> None:
        """A slot's actor died: drop it, every slot of a node Ray no longer sees, and
        every idle slot of the same node that does not answer at once (Ray may take many
        seconds to declare a crashed node dead, and a retry must not be spent there)."""
        alive = await asyncio.to_thread(alive_nodes, self._ray)
        async with self._free:
            slot.dead = True
            for other in self._slots:
                if other.node not in alive:
                    other.dead = True
            suspects = [o for o in self._slots if o.node == slot.node and not o.dead
                        and not o.busy]
            for other in suspects:
                other.busy = True  # held while it is probed, so no rollout takes it
        answers = await asyncio.gather(*(self._answers(other) for other in suspects))
        async with self._free:
            for other, answered in zip(suspects, answers, strict=True):
                other.busy, other.dead = False, other.dead or not answered
            self._free.notify_all()

    @staticmethod
    async def _answers(slot: _Slot) -> bool:
        """Whether the slot's actor answers a cheap call within `PROBE_TIMEOUT` seconds."""
        try:
            await asyncio.wait_for(slot.actor.where.remote(), PROBE_TIMEOUT)
        except Exception:  # noqa: BLE001 - any failure to answer is the answer
            return False
        return True

    async def _ensure_image(self, slot: _Slot) -> None:
        """Ship the image to the slot's node unless its engine has that ID (once a node)."""
        assert self.image_id is not None
        lock = self._node_locks.setdefault(slot.node, asyncio.Lock())
        async with lock:
            if slot.node in self._has_image:
                return
            if not await slot.actor.has_image.remote(self.image_id):
                await self._ship(slot)
            self._has_image.add(slot.node)

    async def _ship(self, slot: _Slot) -> None:
        """Stream `docker save` of the image through Ray into the node's `docker load`.

        Raises:
            DockerError: saving here or loading there failed.
        """
        assert self.image_id is not None
        node = slot.node[:12]
        log.info("ray: node %s (%s) lacks image %s: sending it", node, slot.host, self.image_id[:19])
        save = await hd.spawn("save", self.image_id)
        assert save.stdout is not None
        sent = 0
        await slot.actor.load_begin.remote()
        try:
            while chunk := await _read_chunk(save.stdout):
                await slot.actor.load_chunk.remote(chunk)
                sent += len(chunk)
                log.info("ray: image %s → node %s: %d MiB", self.image_id[:19], node, sent >> 20)
        finally:
            err = await save.stderr.read() if save.stderr is not None else b""
            code = await save.wait()
            loaded = await slot.actor.load_end.remote(self.image_id)
        if code:
            raise DockerError(f"docker save {self.image_id} failed (exit {code}): "
                              f"{err.decode(errors='replace').strip()[-400:]}")
        if not loaded:
            raise InfraError(f"node {node} loaded the image but has no {self.image_id} after")
        log.info("ray: node %s has image %s (%d MiB sent)", node, self.image_id[:19], sent >> 20)

    def _shipped_agent(self, agent: Agent) -> Any:
        """The agent as sent to the nodes: checked once, then passed by value in each
        call. Never `ray.put`: an object pinned in the store can be spilled to a node's
        disk under memory pressure, and a provider agent's spec carries its key."""
        if id(agent) not in self._agents:
            self._agents[id(agent)] = (agent, shippable(agent))
        return self._agents[id(agent)][1]

    async def remote_rollout(self, task: Task, agent: Agent, *, job_id: str, group_id: str,
                             index: int, attempt: int = 1, timeout: float | None = None,
                             max_steps: int | None = None) -> Run:
        """Run one rollout on a free slot of the cluster; write its trace here; return it.

        Raises:
            ConfigError: no Ray, no cluster, no node with slots, no image, an agent
                that cannot be pickled.
        """
        await self.start()
        self._jobs.add(job_id)
        shipped = self._shipped_agent(agent)
        slot = await self._acquire(group_id)
        meta = {"job_id": job_id, "group_id": group_id, "index": index, "attempt": attempt,
                "timeout": timeout, "max_steps": max_steps}
        ref = None
        try:
            await self._ensure_image(slot)
            ref = slot.actor.rollout.remote(self.image_id, task.model_dump(mode="json"),
                                            shipped, meta)
            data, events = await ref
            run = _checked_run(data, task, meta)
            run.trace = events
        except asyncio.CancelledError:
            self._interrupted = True
            if ref is not None:
                self._ray.cancel(ref)
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(_settled(ref)), CANCEL_GRACE)
            raise
        except self._ray.exceptions.RayActorError as exc:
            await self._lost(slot)
            run = self._failed(task, meta, slot, f"node {slot.node[:12]} ({slot.host}) was "
                               f"lost mid-rollout: {type(exc).__name__}: {_first_line(exc)}")
        except (self._ray.exceptions.RayError, HudError) as exc:
            run = self._failed(task, meta, slot, f"ray: {type(exc).__name__}: {_first_line(exc)}")
        finally:
            await self._release(slot, group_id)
        self._write_trace(run, getattr(agent, "secrets", ()) or ())
        return run

    def _failed(self, task: Task, meta: dict[str, Any], slot: _Slot, error: str) -> Run:
        """An infra_error run made here (the node could not report one), with a trace."""
        run = Run(trace_id=new_id(), job_id=meta["job_id"], task=task, group_id=meta["group_id"],
                  index=meta["index"], attempt=meta["attempt"], status="infra_error",
                  error=error, placement={"placement": "ray", "node": slot.node,
                                          "host": slot.host})
        run.trace = [
            {"t": 0.0, "type": "rollout", "task": task.model_dump(mode="json"),
             "group_id": run.group_id, "index": run.index, "attempt": run.attempt},
            {"t": 0.0, "type": "error", "phase": "ray", "error": error},
            {"t": 0.0, "type": "end", "status": run.status, "reward": None, "timings": {}},
        ]
        return run

    @staticmethod
    def _write_trace(run: Run, secrets: tuple[str, ...]) -> None:
        """The run's events as its trace file in the driver's store (hud trace reads it).

        Raises:
            InfraError: the job or trace id is not a plain id (it would name a file
                outside the store).
        """
        if not (ID_PATTERN.fullmatch(run.job_id) and ID_PATTERN.fullmatch(run.trace_id)):
            raise InfraError(f"refusing to write a trace for job {run.job_id!r}, trace "
                             f"{run.trace_id!r}: not plain ids")
        path = job_dir(run.job_id) / f"{run.trace_id}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = (json.dumps(event, ensure_ascii=False, default=str) for event in run.trace)
        text = "".join(line + "\n" for line in lines)
        path.write_text(redact(text, tuple(s for s in secrets if len(s) >= 8)),
                        encoding="utf-8")

    async def shutdown(self) -> None:
        """After a job: every live slot waits for its container removals (and, when the
        job was interrupted, removes what its node has left with the job's label); the
        slot actors end unless `keep_slots`."""
        jobs, self._jobs = self._jobs, set()
        sweep, self._interrupted = self._interrupted, False
        self._image_fresh = False  # the next job looks the image up again
        live = [s for s in self._slots if not s.dead]
        calls = [s.actor.drain.remote(job, sweep) for s in live for job in jobs]
        if calls:
            results = await asyncio.gather(*(_settled(c) for c in calls))
            for error in (r for r in results if isinstance(r, BaseException)):
                log.warning("ray: a node could not clean up after the job: %s; `hud prune` "
                            "on that node removes what is left", _first_line(error))
        if not self.keep_slots:
            await self.close()

    async def close(self) -> None:
        """End the slot actors (their reapers remove any container they still hold)."""
        slots, self._slots = self._slots, []
        self._has_image.clear()
        self._agents.clear()
        for slot in slots:
            if not slot.dead:
                self._ray.kill(slot.actor)


async def _read_chunk(stream: asyncio.StreamReader) -> bytes:
    """Up to CHUNK bytes of the stream (fewer only at its end)."""
    parts: list[bytes] = []
    size = 0
    while size < CHUNK and (part := await stream.read(CHUNK - size)):
        parts.append(part)
        size += len(part)
    return b"".join(parts)


async def _settled(ref: Any) -> Any:
    """The ref's value, or the exception it raised (never raises but for a cancel)."""
    try:
        return await ref
    except Exception as exc:  # noqa: BLE001 - the caller sorts results from failures
        return exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _checked_run(data: Any, task: Task, meta: dict[str, Any]) -> Run:
    """A node's reply as a Run whose identity is the driver's: the job, group, index,
    attempt and task are what was sent (a faulty node cannot overwrite another member),
    and the trace id must be a plain id (it names a file in the driver's store).

    Raises:
        InfraError: the reply is not a run this hud can read (another hud version).
    """
    from pydantic import ValidationError

    try:
        run = Run.model_validate(data)
    except ValidationError as exc:
        raise InfraError(f"a node replied with something that is not a run ({exc.error_count()} "
                         f"problems; is it running another hud version?)") from None
    run.job_id, run.group_id = meta["job_id"], meta["group_id"]
    run.index, run.attempt, run.task = meta["index"], meta["attempt"], task
    if not ID_PATTERN.fullmatch(run.trace_id):
        run.trace_id = new_id()
    return run

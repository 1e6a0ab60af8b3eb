"""A docker slot on a Ray node: the long-lived actor that runs whole rollouts there.

One actor per slot (the node's `hud_slots`), pinned to its node, runs one rollout at a
time: its container on the node's own Docker engine (a `DockerPlacement`, exactly as on
one host), the agent loop next to it, and grading. An actor is used for many rollouts,
so nothing is paid per rollout but one Ray call (measured: a per-slot actor matches a
thread pool; a Ray task per rollout pays a cold Python worker now and then).

The trace is written to a node-local temporary store (HUD_RUNS_DIR of the actor's
process), then its events go back to the driver with the `Run` and the file is deleted:
the driver writes `.hud/runs/` as on one host.

Containers die with their slot: every container is labelled with the slot's id, and a
small reaper process (hud.eval.ray.reaper, in its own session) removes the slot's
containers (and its temporary trace store) when the actor's process ends for any reason:
the job ended it, the node was stopped, the worker was killed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from hud.build import docker as hd
from hud.errors import DockerError
from hud.eval.placement import DockerPlacement, new_id
from hud.eval.prune import sweep_job
from hud.eval.rollout import run_rollout
from hud.task import Task

#: the label that ties a container to the slot (actor) that started it
SLOT_LABEL = "org.hud.slot"


class SlotWorker:
    """The body of the slot actor (`ray.remote` is applied by the driver, lazily)."""

    def __init__(self, docker_options: dict[str, Any]) -> None:
        import ray

        self.node_id: str = ray.get_runtime_context().get_node_id()
        self.slot_id = new_id()
        self.options = docker_options
        self.store = Path(tempfile.mkdtemp(prefix="hud-ray-slot-"))
        os.environ["HUD_RUNS_DIR"] = str(self.store)  # this process's trace store
        self.placements: dict[str, DockerPlacement] = {}
        self.loading: asyncio.subprocess.Process | None = None
        # stdin is a pipe only this process holds: its end (any death) wakes the reaper
        self.reaper = subprocess.Popen(
            [sys.executable, "-m", "hud.eval.ray.reaper", f"{SLOT_LABEL}={self.slot_id}",
             str(self.store)],
            stdin=subprocess.PIPE, start_new_session=True)
        self.reaper.wait(timeout=30)  # it forks and exits at once; its child reaps

    def where(self) -> dict[str, str]:
        """This slot's node id, host name and slot id."""
        return {"node": self.node_id, "host": socket.gethostname(), "slot": self.slot_id}

    def _placement(self, image: str) -> DockerPlacement:
        if image not in self.placements:
            options = dict(self.options)
            extra = [*options.pop("extra_args", []), "--label", f"{SLOT_LABEL}={self.slot_id}"]
            self.placements[image] = DockerPlacement(image, extra_args=extra, **options)
        return self.placements[image]

    async def rollout(self, image: str, task: dict[str, Any], agent: Any,
                      meta: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Run one rollout on this node; return the Run (as JSON data) and its events."""
        placement = self._placement(image)
        try:
            run = await run_rollout(Task.model_validate(task), agent, placement,
                                    job_id=meta["job_id"], group_id=meta["group_id"],
                                    index=meta["index"], attempt=meta["attempt"],
                                    timeout=meta["timeout"], max_steps=meta["max_steps"])
        except asyncio.CancelledError:
            # the driver cancelled it (Ctrl-C): the lease is closed; wait for the removal
            await asyncio.shield(placement.shutdown())
            raise
        finally:
            shutil.rmtree(self.store / meta["job_id"], ignore_errors=True)
        run.placement = {**run.placement, "placement": "ray", **self.where()}
        return run.model_dump(mode="json"), run.trace

    async def drain(self, job_id: str, sweep: bool) -> list[str]:
        """After a job: wait for pending container removals; with `sweep` (the job was
        interrupted) remove whatever this node still has with the job's label."""
        for placement in self.placements.values():
            await placement.shutdown()
        return await sweep_job(job_id) if sweep else []

    async def has_image(self, image_id: str) -> bool:
        """Whether this node's Docker engine has the image with this ID."""
        done = await hd.adocker("image", "inspect", "--format", "{{.Id}}", image_id)
        return done.ok and done.stdout.strip() == image_id

    async def load_begin(self) -> None:
        """Start a `docker load` that the next `load_chunk` calls feed."""
        self.loading = await hd.spawn("load")

    async def load_chunk(self, chunk: bytes) -> None:
        """Feed one chunk of a `docker save` stream to the running `docker load`."""
        assert self.loading is not None and self.loading.stdin is not None
        self.loading.stdin.write(chunk)
        await self.loading.stdin.drain()

    async def load_end(self, image_id: str) -> bool:
        """Finish the `docker load`; whether the engine now has `image_id`.

        Raises:
            DockerError: docker load failed (its output is quoted).
        """
        proc, self.loading = self.loading, None
        assert proc is not None and proc.stdin is not None
        proc.stdin.close()
        out, err = await proc.communicate()
        if proc.returncode:
            raise DockerError(f"docker load on node {self.node_id[:12]} failed: "
                                 f"{(err or out).decode(errors='replace').strip()[-400:]}")
        return await self.has_image(image_id)

"""`Taskset`: the tasks of an eval, where they come from, and how they are run.

    Taskset(count_letter(word=w) for w in words)          an iterable of tasks
    Taskset.from_source("tasks.py") / ("env-dir/")         an environment's listed tasks
    Taskset.from_file("tasks.jsonl")                       JSON or JSON Lines of tasks

`run(agent, group=N)` rolls out every task N times, concurrently (bounded by
`max_concurrent`), on a placement, and returns a `Job`. The docker placement gives each
rollout its own container; one running environment (local, or attached) serves as many
rollouts at once as it declares (`concurrency`, default 1), and the placement holds the
rest until one ends, so group members never share a workspace. Infra failures are
retried when `retries` > 0, so a GRPO group is never silently smaller.

`warm=N` (docker, or any placement with a fresh environment per rollout) keeps N
environments started ahead of the rollouts that will ask for one (`hud.eval.pool`), so
a container starts while agents work; each serves one rollout. `max_concurrent` still
bounds the rollouts; the pool's N are on top of it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hud.agents.context import Agent
from hud.environment import Environment
from hud.errors import ConfigError, HudError
from hud.eval.placement import AttachPlacement, DockerPlacement, LocalPlacement, Placement, new_id
from hud.eval.pool import WarmPool, check_warm
from hud.eval.prune import sweep_job
from hud.eval.results import Job, Run
from hud.eval.rollout import run_rollout
from hud.eval.traces import write_job
from hud.task import Task

LOCK_FILE = "hud.lock.json"
#: seconds between rewrites of a running job's job.json
JOB_SAVE_EVERY = 2.0
#: seconds an interrupted job's rollouts get to tear down before they are cancelled again
SETTLE_GRACE = 10.0

log = logging.getLogger("hud.eval")


async def _sweep(job_id: str, placement: Placement) -> None:
    """After an interrupted job: remove its containers that no lease held (a `docker run`
    cut off before its id came back, by Ctrl-C or a cancelled open)."""
    if not isinstance(placement, DockerPlacement):
        return
    try:
        await sweep_job(job_id, placement.docker)
    except HudError as exc:
        log.warning("job %s was interrupted and its containers could not be listed: %s; "
                    "`hud prune --job %s` removes them", job_id, exc, job_id)


async def _settle(members: list[asyncio.Task[None]]) -> None:
    """Every member finished, its lease closed, before the placement shuts down (the job
    was cancelled, or a member raised, while others still run). Each is cancelled once,
    not twice at first (a second cancel cuts its lease's close short); one still running
    after `SETTLE_GRACE` (Python 3.11's `asyncio.wait_for` can swallow a cancel) is
    cancelled again, and the sweep after an interrupted job removes what that leaves."""
    for task in members:
        if not task.done() and not task.cancelling():
            task.cancel()
    pending = {task for task in members if not task.done()}
    while pending:
        _, pending = await asyncio.wait(pending, timeout=SETTLE_GRACE)
        for task in pending:
            task.cancel()


def _new_job_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + new_id()[:6]


class Taskset:
    """An ordered, de-duplicated set of tasks (by slug), maybe tied to an environment."""

    def __init__(self, tasks: Iterable[Task] = (), *, env: Environment | None = None,
                 source: Path | None = None) -> None:
        self.tasks: list[Task] = []
        seen: set[tuple[str, str]] = set()
        for task in tasks:
            if not isinstance(task, Task):
                raise ConfigError(f"a Taskset holds Tasks (call a template to mint one), got {task!r}")
            if (task.env, task.slug) not in seen:
                seen.add((task.env, task.slug))
                self.tasks.append(task)
        self.env = env
        self.source = source

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(self.tasks)

    def __repr__(self) -> str:
        return f"<Taskset {len(self.tasks)} tasks>"

    @classmethod
    def from_source(cls, source: str | Path) -> Taskset:
        """The listed tasks of the environment in a `.py` file or directory, or a task file.

        Raises:
            ConfigError: the source does not exist or cannot be loaded.
        """
        path = Path(source)
        if path.suffix in (".json", ".jsonl"):
            return cls.from_file(path)
        if not path.exists():
            raise ConfigError(f"task source {source} does not exist; pass tasks.py, an env "
                              f"directory, or a .json/.jsonl task file")
        from hud.serve.loader import load_environment

        env = load_environment(str(path))
        return cls(env.listed_tasks(), env=env, source=path)

    @classmethod
    def from_file(cls, path: str | Path) -> Taskset:
        """Tasks from JSON (a list) or JSON Lines (one task per line).

        Raises:
            ConfigError: unreadable file or an invalid task row (line number given).
        """
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read task file {path}: {exc}") from exc
        rows: list[Any]
        if path.suffix == ".json":
            rows = json.loads(text)
        else:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        tasks = []
        for number, row in enumerate(rows, 1):
            try:
                tasks.append(Task.model_validate(row))
            except Exception as exc:
                raise ConfigError(f"{path}: task {number} is invalid: {exc}") from exc
        return cls(tasks, source=path)

    def to_file(self, path: str | Path) -> Path:
        """Write the tasks as JSON Lines (or a JSON list for a .json path)."""
        path = Path(path)
        rows = [t.model_dump(mode="json") for t in self.tasks]
        if path.suffix == ".json":
            path.write_text(json.dumps(rows, indent=2))
        else:
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return path

    def filter(self, slugs: Iterable[str]) -> Taskset:
        """Only the tasks whose slug (or template id) is in `slugs`.

        Raises:
            ConfigError: a requested slug matches no task (the known ones are listed).
        """
        wanted = list(slugs)
        unknown = [s for s in wanted if not any(s in (t.slug, t.id) for t in self.tasks)]
        if unknown:
            raise ConfigError(f"no task {', '.join(map(repr, unknown))} in this taskset; tasks: "
                              f"{', '.join(t.slug for t in self.tasks)}")
        keep = [t for t in self.tasks if t.slug in wanted or t.id in wanted]
        return Taskset(keep, env=self.env, source=self.source)

    def default_placement(self) -> Placement:
        """docker when the source directory was built (hud.lock.json), else local."""
        image = self._built_image()
        if image is not None:
            return DockerPlacement(image)
        return LocalPlacement(self._environment())

    def _built_image(self) -> str | None:
        """The image `hud build` recorded in the source directory's hud.lock.json."""
        if self.source is None:
            return None
        base = self.source if self.source.is_dir() else self.source.parent
        lock = base / LOCK_FILE
        if not lock.is_file():
            return None
        data = json.loads(lock.read_text())
        image: str = data.get("tag") or data["image"]
        return image

    def _environment(self) -> Environment:
        if self.env is not None:
            return self.env
        envs = {t.env for t in self.tasks}
        from hud.environment import registered

        found = [registered(name) for name in envs]
        if len(envs) == 1 and found[0] is not None:
            return found[0]
        raise ConfigError(
            f"cannot run tasks of {sorted(envs)} locally: their environment is not loaded in "
            f"this process; pass runtime='docker:IMAGE', a container name, or tcp://HOST:PORT"
        )

    def placement(self, runtime: str | Placement | None) -> Placement:
        """Resolve `runtime=`: None, "local", "docker", "docker:IMAGE", a container, a URL.

        Raises:
            ConfigError: the runtime cannot be resolved for these tasks.
        """
        if isinstance(runtime, Placement):
            return runtime
        if runtime is None:
            return self.default_placement()
        if runtime == "local":
            return LocalPlacement(self._environment())
        if runtime == "docker":
            image = self._built_image()
            if image is not None:
                return DockerPlacement(image)
            names = {t.env for t in self.tasks}
            if len(names) != 1:
                raise ConfigError("runtime='docker' needs one environment; use docker:IMAGE")
            return DockerPlacement(names.pop())
        if runtime.startswith("docker:"):
            return DockerPlacement(runtime.split(":", 1)[1])
        return AttachPlacement(runtime)

    async def run(self, agent: Agent, group: int = 1, max_concurrent: int | None = None,
                  runtime: str | Placement | None = None, retries: int = 0,
                  timeout: float | None = None, max_steps: int | None = None,
                  on_run: Callable[[Run], object] | None = None, warm: int = 0) -> Job:
        """Roll out every task `group` times; return the `Job` (`on_run(run)` is called as
        each rollout ends). `warm=N` keeps N environments started ahead of demand.

        Raises:
            ConfigError: bad arguments, or no placement fits (warm > 0 needs a placement
                that starts an environment per rollout, such as docker).
            InfraError: the warm pool gave up: its environments kept failing their
                readiness check (the runs so far are written to the trace store).
        """
        if group < 1:
            raise ConfigError(f"group must be >= 1, got {group}")
        check_warm(warm)
        if not self.tasks:
            raise ConfigError("the taskset is empty: nothing to run")
        placement = self.placement(runtime)
        check_warm(warm, placement)
        job_id = _new_job_id()
        total = len(self.tasks) * group
        inner = placement
        pool = WarmPool(placement, warm, job_id=job_id, demand=total) if warm else None
        placement = pool or placement
        job = Job(id=job_id, agent=getattr(agent, "name", type(agent).__name__),
                  placement=placement.describe(), group=group, started_at=time.time())
        limit = asyncio.Semaphore(max_concurrent or total)
        # on disk from the start (finished_at 0 until it ends), so a job killed with
        # SIGKILL is still listed by `hud jobs` with the runs it finished
        write_job(job)
        saved = time.monotonic()

        async def member(task: Task, group_id: str, index: int) -> None:
            for attempt in range(1, retries + 2):
                if attempt > 1 and pool is not None:
                    if pool.error is not None:
                        return  # the pool gave up: the job raises its error
                    pool.expect(1)  # the retry is demand: start its environment now
                async with limit:
                    run: Run = await run_rollout(task, agent, placement, job_id=job.id,
                                                 group_id=group_id, index=index, attempt=attempt,
                                                 timeout=timeout, max_steps=max_steps)
                job.runs.append(run)
                nonlocal saved
                if time.monotonic() - saved >= JOB_SAVE_EVERY:  # not per run: O(n) each
                    write_job(job)
                    saved = time.monotonic()
                if on_run is not None:
                    on_run(run)
                if run.status != "infra_error":
                    return

        interrupted = True
        members: list[asyncio.Task[None]] = []
        try:
            if pool is not None:
                pool.start()
            for task in self.tasks:
                group_id = new_id()  # one per task, shared by its members
                members += [asyncio.ensure_future(member(task, group_id, i)) for i in range(group)]
            # not gather: cancelled, it waits for a member that swallowed its cancel (see
            # _settle), and this `finally` must run at once
            done, _ = await asyncio.wait(members, return_when=asyncio.FIRST_EXCEPTION)
            for finished in done:
                error = None if finished.cancelled() else finished.exception()
                if error is not None:
                    raise error  # a bug in hud: run_rollout classifies every rollout failure
            interrupted = False
        finally:
            try:
                await _settle(members)
                await placement.shutdown()
                if interrupted:
                    await _sweep(job.id, inner)
            finally:
                job.finished_at = time.time()
                write_job(job)
        if pool is not None and pool.error is not None:
            raise pool.error
        return job

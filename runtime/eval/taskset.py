"""`Taskset`: the tasks of an eval, where they come from, and how they are run.

    Taskset(count_letter(word=w) for w in words)          an iterable of tasks
    Taskset.from_source("tasks.py") / ("env-dir/")         an environment's listed tasks
    Taskset.from_source("my-env") / ("docker:my-env")      an image's tasks (its label)
    Taskset.from_file("tasks.jsonl")                       a task file (hud.eval.taskfile)

Where tasks come from, and why the host imports an environment only to run it in
process, is hud.eval.sources. `filter` selects by slug, template id, or glob.

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
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from functools import partial
from pathlib import Path

from hud.agents.context import Agent
from hud.environment import Environment
from hud.errors import ConfigError, HudError
from hud.eval.placement import AttachPlacement, DockerPlacement, LocalPlacement, Placement, new_id
from hud.eval.pool import WarmPool, check_warm
from hud.eval.prune import sweep_job
from hud.eval.results import Job, Run
from hud.eval.rollout import agent_name, run_rollout
from hud.eval.sources import LOCK_FILE, image_drift, lock_listing, resolve
from hud.eval.taskfile import ImageRef, TaskRow, read_rows, write_rows
from hud.eval.traces import write_job
from hud.task import Task

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
    """An ordered, de-duplicated set of tasks (by slug), maybe tied to an environment.

    `image` is the image the tasks were listed from (run by the docker placement by
    default); `target` the running container or daemon they were listed from (attached
    to by default).
    """

    def __init__(self, tasks: Iterable[Task] = (), *, env: Environment | None = None,
                 source: Path | None = None, image: ImageRef | None = None,
                 target: str | None = None) -> None:
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
        self.target = target
        # the image each task was listed from (a task file may mix images)
        self._images: dict[tuple[str, str], ImageRef] = {
            (t.env, t.slug): image for t in self.tasks} if image is not None else {}

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(self.tasks)

    def __repr__(self) -> str:
        return f"<Taskset {len(self.tasks)} tasks>"

    @property
    def images(self) -> list[ImageRef]:
        """The images the tasks were listed from, in order (none for minted tasks)."""
        return list(dict.fromkeys(self._images[(t.env, t.slug)] for t in self.tasks
                                  if (t.env, t.slug) in self._images))

    def _keep(self, tasks: list[Task]) -> Taskset:
        kept = Taskset(tasks, env=self.env, source=self.source, target=self.target)
        kept._images = {k: v for k, v in self._images.items()
                        if k in {(t.env, t.slug) for t in tasks}}
        return kept

    @classmethod
    def from_source(cls, source: str | Path, runtime: str | None = None) -> Taskset:
        """The tasks of `source`: a task file (.json/.jsonl), an env directory or `.py`
        file, an image (IMAGE or docker:IMAGE), a running container, or tcp://HOST:PORT.

        A built env directory (hud.lock.json), an image, a container and a daemon give
        the tasks they list; the environment module is imported on this host only for a
        `.py` task list, an env directory that was not built, or `runtime="local"`
        (see hud.eval.sources).

        Raises:
            ConfigError: the source does not exist or cannot be loaded.
            ProtocolError: an image's or container's manifest is invalid.
            InfraError: a container or daemon did not answer.
        """
        path = Path(source)
        if path.suffix in (".json", ".jsonl"):
            return cls.from_file(path)
        ray = runtime == "ray" or str(runtime).startswith("ray://")  # lists as docker does
        listing = resolve(str(source), "docker" if ray else runtime)
        if listing.load is not None:
            from hud.serve.loader import load_environment

            env = load_environment(str(listing.load))
            return cls(env.listed_tasks(), env=env, source=listing.load)
        image = listing.images[0] if listing.images else None
        return cls(listing.tasks, source=listing.source, image=image, target=listing.target)

    @classmethod
    def from_file(cls, path: str | Path) -> Taskset:
        """Tasks from a task file: JSON Lines (one task per line, hud.eval.taskfile), a
        JSON list of tasks, or what `hud task list --json` prints.

        Raises:
            ConfigError: unreadable file or an invalid task row (its line and the fix).
        """
        path = Path(path)
        rows = read_rows(path)
        taskset = cls([row.task() for row in rows], source=path)
        for row in rows:
            key = (row.env, row.task().slug)
            if row.image is not None and key not in taskset._images:
                taskset._images[key] = ImageRef(row.image, row.image_id, str(path))
        return taskset

    def to_file(self, path: str | Path) -> Path:
        """Write the tasks as JSON Lines (or a JSON list for a .json path), each with
        the image it was listed from."""
        return write_rows(path, self.rows())

    def rows(self) -> list[TaskRow]:
        """The tasks as task-file rows (hud.eval.taskfile)."""
        return [TaskRow.of(t, self._images.get((t.env, t.slug))) for t in self.tasks]

    def filter(self, patterns: Iterable[str]) -> Taskset:
        """The tasks each pattern selects, in this taskset's order. A pattern selects
        the task whose slug it is; else, when no slug is, every task of the template
        whose id it is; else every task whose slug matches it as a glob (`fnmatch`:
        `*`, `?`, `[abc]`).

        Raises:
            ConfigError: a pattern selects no task (the tasks and templates are listed).
        """
        keep: set[int] = set()
        for pattern in patterns:
            hits = ([i for i, t in enumerate(self.tasks) if t.slug == pattern]
                    or [i for i, t in enumerate(self.tasks) if t.id == pattern]
                    or [i for i, t in enumerate(self.tasks) if fnmatchcase(t.slug, pattern)])
            if not hits:
                raise ConfigError(f"no task {pattern!r} in this taskset (no slug, template id "
                                  f"or glob over slugs matches it); {self._known()}")
            keep.update(hits)
        return self._keep([t for i, t in enumerate(self.tasks) if i in keep])

    def _known(self, limit: int = 20) -> str:
        slugs = [t.slug for t in self.tasks]
        shown = ", ".join(slugs[:limit]) + (f", … ({len(slugs)} in all)" if len(slugs) > limit else "")
        templates = ", ".join(dict.fromkeys(t.id for t in self.tasks))
        return f"tasks: {shown or '(none)'}; templates: {templates or '(none)'}"

    def default_placement(self) -> Placement:
        """Where the tasks run unless told: attached to the container or daemon they were
        listed from; else docker, on the image they were listed from (or the image of the
        source directory's hud.lock.json); else local.

        Raises:
            ConfigError: none fits (tasks of several images, or an env not loaded here).
        """
        if self.target is not None:
            return AttachPlacement(self.target)
        image = self._built_image() or self._image()
        if image is not None:
            return DockerPlacement(image)
        return LocalPlacement(self._environment())

    def _image(self) -> str | None:
        """The one image the tasks were listed from (None: none recorded).

        Raises:
            ConfigError: they come from several images.
        """
        refs = list(dict.fromkeys(image.ref for image in self.images))
        if len(refs) > 1:
            raise ConfigError(f"the tasks were listed from {len(refs)} images ({', '.join(refs)}); "
                              f"run them on one with --runtime docker:IMAGE, or select one "
                              f"image's tasks with --task")
        return refs[0] if refs else None

    def _built_image(self) -> str | None:
        """The image `hud build` recorded in the source directory's hud.lock.json."""
        if self.source is None or self.source.suffix in (".json", ".jsonl"):
            return None
        base = self.source if self.source.is_dir() else self.source.parent
        lock = base / LOCK_FILE
        if not lock.is_file():
            return None
        image = lock_listing(lock, self.source).images[0].ref
        return image

    def _environment(self) -> Environment:
        """The environment for the local placement: loaded, or imported from the source
        directory or file now (the only placement that imports it)."""
        if self.env is not None:
            return self.env
        if self.source is not None and self.source.suffix not in (".json", ".jsonl"):
            from hud.serve.loader import load_environment

            self.env = load_environment(str(self.source))
            return self.env
        envs = {t.env for t in self.tasks}
        from hud.environment import registered

        found = [registered(name) for name in envs]
        if len(envs) == 1 and found[0] is not None:
            return found[0]
        origin = (f"they were listed from {self.images[0].origin}, and " if self.images
                  else "")
        raise ConfigError(
            f"cannot run tasks of {sorted(envs)} locally: {origin}their environment is not "
            f"loaded in this process; pass runtime='docker:IMAGE', a container name, or "
            f"tcp://HOST:PORT"
        )

    def placement(self, runtime: str | Placement | None) -> Placement:
        """Resolve `runtime=`: None, "local", "docker", "docker:IMAGE", a container, a URL,
        "ray" or "ray://HOST:PORT" (hud.eval.ray).

        Raises:
            ConfigError: the runtime cannot be resolved for these tasks.
        """
        if isinstance(runtime, Placement):
            return runtime
        if runtime is None:
            return self.default_placement()
        if runtime == "local":
            return LocalPlacement(self._environment())
        if runtime == "ray" or runtime.startswith("ray://"):  # hud.eval.ray
            from hud.eval.ray.placement import RayPlacement
            return RayPlacement(self._run_image(runtime), runtime)
        if runtime == "docker":
            return DockerPlacement(self._run_image(runtime))
        if runtime.startswith("docker:"):
            return DockerPlacement(runtime.split(":", 1)[1])
        return AttachPlacement(runtime)

    def _run_image(self, runtime: str) -> str:
        """The image to run: the built or listed one, else the one env's name."""
        image, names = self._built_image() or self._image(), {t.env for t in self.tasks}
        if image is None and len(names) != 1:
            raise ConfigError(f"runtime={runtime!r} needs one environment; use docker:IMAGE")
        return image or names.pop()

    def image_warning(self, placement: Placement) -> str | None:
        """One line when `placement` runs another image than the one the tasks were
        listed from (its ID changed since, or another image was named), naming both IDs
        and the fix; None when it is the same, or nothing was recorded.

        Raises:
            ConfigError: the docker placement's image is not on this host.
        """
        return image_drift(self.images, placement)

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
        remote = getattr(placement, "remote_rollout", None)  # whole rollouts elsewhere (ray)
        if warm and remote is not None:
            raise ConfigError(f"warm={warm}: {placement.describe()} has no pool; use warm=0")
        job_id = _new_job_id()
        total = len(self.tasks) * group
        inner = placement
        pool = WarmPool(placement, warm, job_id=job_id, demand=total) if warm else None
        placement = pool or placement
        job = Job(id=job_id, agent=agent_name(agent),
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
                    run: Run = await (remote or partial(run_rollout, placement=placement))(
                        task, agent, job_id=job.id, group_id=group_id, index=index,
                        attempt=attempt, timeout=timeout, max_steps=max_steps)
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

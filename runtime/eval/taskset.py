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
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hud.agents.context import Agent
from hud.environment import Environment
from hud.errors import ConfigError
from hud.eval.placement import AttachPlacement, DockerPlacement, LocalPlacement, Placement, new_id
from hud.eval.results import Job, Run
from hud.eval.rollout import run_rollout
from hud.eval.traces import write_job
from hud.task import Task

LOCK_FILE = "hud.lock.json"


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
                  on_run: Callable[[Run], object] | None = None) -> Job:
        """Roll out every task `group` times; return the `Job` (`on_run(run)` is called as
        each rollout ends).

        Raises:
            ConfigError: bad arguments, or no placement fits.
        """
        if group < 1:
            raise ConfigError(f"group must be >= 1, got {group}")
        if not self.tasks:
            raise ConfigError("the taskset is empty: nothing to run")
        placement = self.placement(runtime)
        job = Job(id=_new_job_id(), agent=getattr(agent, "name", type(agent).__name__),
                  placement=placement.describe(), group=group, started_at=time.time())
        limit = asyncio.Semaphore(max_concurrent or len(self.tasks) * group)

        async def member(task: Task, group_id: str, index: int) -> None:
            for attempt in range(1, retries + 2):
                async with limit:
                    run: Run = await run_rollout(task, agent, placement, job_id=job.id,
                                                 group_id=group_id, index=index, attempt=attempt,
                                                 timeout=timeout, max_steps=max_steps)
                job.runs.append(run)
                if on_run is not None:
                    on_run(run)
                if run.status != "infra_error":
                    return

        try:
            members = []  # one group id per task, shared by its members
            for task in self.tasks:
                group_id = new_id()
                members += [member(task, group_id, i) for i in range(group)]
            await asyncio.gather(*members)
        finally:
            await placement.shutdown()
            job.finished_at = time.time()
            write_job(job)
        return job

"""Agents that need no model and no key.

    oracle   answers with the task's reference solution (`@template.solution`), computed
             inside the environment, so it may act on the capabilities (fix a file...)
    nop      answers nothing (None): the floor every task should grade 0.0 on
    replay   re-sends the answers of a stored job, matched by task slug and group index
"""

from __future__ import annotations

from typing import Any

from hud.agents.context import RunContext
from hud.errors import ConfigError


class OracleAgent:
    """Runs the task's reference solution."""

    name = "oracle"

    async def __call__(self, run: RunContext) -> Any:
        answer = await run.solve()
        run.record("oracle", answer=answer)
        return answer


class NopAgent:
    """Answers nothing."""

    name = "nop"

    async def __call__(self, run: RunContext) -> Any:
        return None


class ReplayAgent:
    """Re-sends the answers of job `job_id`, per task slug, in group order."""

    name = "replay"

    def __init__(self, job_id: str) -> None:
        from hud.eval.traces import load_job  # the job files: read once, here

        job = load_job(job_id)
        self.job_id = job["id"]
        self._answers: dict[str, list[Any]] = {}
        for run in sorted(job["runs"], key=lambda r: (r["index"], r["attempt"])):
            if run["status"] == "completed":
                self._answers.setdefault(run["task"]["slug"], []).append(run["answer"])
        self._used: dict[str, int] = {}

    async def __call__(self, run: RunContext) -> Any:
        answers = self._answers.get(run.task.slug)
        if not answers:
            raise ConfigError(f"job {self.job_id} has no completed run of {run.task.slug!r} to replay")
        i = self._used.get(run.task.slug, 0)
        self._used[run.task.slug] = i + 1
        return answers[i % len(answers)]

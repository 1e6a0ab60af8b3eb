"""The local trace store: every rollout on disk, nothing sent anywhere.

    .hud/runs/<job_id>/job.json           job summary (agent, placement, per-run results)
    .hud/runs/<job_id>/<trace_id>.jsonl   one rollout: one JSON object per event

Events have a `type` (placement, start, agent, tool_call, tool_result, model_turn,
grade, error, teardown, ...) and a time offset `t` in seconds from the rollout's start.
`hud jobs` and `hud trace` read these files.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hud.errors import ConfigError

if TYPE_CHECKING:
    from hud.eval.results import Job

DEFAULT_ROOT = Path(".hud") / "runs"


def store_root() -> Path:
    return Path(os.environ.get("HUD_RUNS_DIR") or DEFAULT_ROOT)


class TraceWriter:
    """Appends one rollout's events to its JSON Lines file as they happen."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.t0 = time.monotonic()
        self.events: list[dict[str, Any]] = []
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open until close()

    def event(self, type: str, **data: Any) -> dict[str, Any]:
        record = {"t": round(time.monotonic() - self.t0, 4), "type": type, **data}
        self.events.append(record)
        self._fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._fh.flush()
        return record

    def close(self) -> None:
        self._fh.close()


def job_dir(job_id: str, root: Path | None = None) -> Path:
    return (root or store_root()) / job_id


def write_job(job: Job, root: Path | None = None) -> Path:
    """Write (or rewrite) the job summary."""
    path = job_dir(job.id, root) / "job.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(job.model_dump_json(indent=2))
    tmp.replace(path)
    return path


def list_jobs(root: Path | None = None, bad: list[str] | None = None) -> list[dict[str, Any]]:
    """Job summaries, newest first. A job.json that cannot be read, or is not a job
    summary (an id, agent and placement as strings, a list of runs), is skipped and named
    in `bad` ("PATH: why")."""
    base = root or store_root()
    if not base.is_dir():
        return []
    jobs = []
    for path in base.glob("*/job.json"):
        try:
            job = json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            why = f"unreadable ({type(exc).__name__}: {exc})"
        else:
            if isinstance(job, dict) and all(isinstance(job.get(k), str) for k in
                                             ("id", "agent", "placement")) \
                    and isinstance(job.get("runs", []), list) \
                    and isinstance(job.get("started_at", 0), (int, float)):
                jobs.append(job)
                continue
            why = "not a job summary (no string id, agent and placement, or runs not a list)"
        if bad is not None:
            bad.append(f"{path}: {why}")
    return sorted(jobs, key=lambda j: j.get("started_at", 0), reverse=True)


def load_job(job_id: str, root: Path | None = None) -> dict[str, Any]:
    """A job summary by id (or unique id prefix).

    Raises:
        ConfigError: no such job, or the prefix is ambiguous.
    """
    base = root or store_root()
    matches = sorted(p for p in base.glob(f"{job_id}*/job.json")) if base.is_dir() else []
    if not matches:
        raise ConfigError(f"no job {job_id!r} under {base}; `hud jobs` lists them")
    if len(matches) > 1:
        raise ConfigError(f"job id {job_id!r} is ambiguous: "
                          f"{', '.join(p.parent.name for p in matches)}")
    job: dict[str, Any] = json.loads(matches[0].read_text())
    return job


def find_trace(trace_id: str, root: Path | None = None) -> Path:
    """The JSON Lines file of a trace by id (or unique prefix), in any job.

    Raises:
        ConfigError: no such trace, or the prefix is ambiguous.
    """
    base = root or store_root()
    matches = sorted(base.glob(f"*/{trace_id}*.jsonl")) if base.is_dir() else []
    if not matches:
        raise ConfigError(f"no trace {trace_id!r} under {base}; `hud jobs JOB` lists a job's traces")
    if len(matches) > 1:
        raise ConfigError(f"trace id {trace_id!r} is ambiguous: {', '.join(p.stem for p in matches)}")
    return matches[0]


def read_trace(path: Path, bad: list[str] | None = None) -> list[dict[str, Any]]:
    """The events of a trace file, in order. A trace is untrusted text (a killed job
    leaves a torn last line; anyone can edit the file): a line that is not a JSON object
    is named in `bad` ("PATH:LINE: why") and skipped, or, with no `bad` list, raised.

    Raises:
        ConfigError: a line is not a JSON object (only when `bad` is None).
    """
    events: list[dict[str, Any]] = []
    text = path.read_bytes().decode("utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError as exc:
            why = f"not JSON ({exc})"
        else:
            if isinstance(event, dict):
                events.append(event)
                continue
            why = f"a JSON {type(event).__name__}, not an object"
        message = f"{path}:{number}: {why}"
        if bad is None:
            raise ConfigError(f"unreadable trace line {message}")
        bad.append(message)
    return events

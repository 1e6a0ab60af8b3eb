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
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hud.errors import ConfigError

if TYPE_CHECKING:
    from hud.eval.results import Job

DEFAULT_ROOT = Path(".hud") / "runs"


def store_root() -> Path:
    return Path(os.environ.get("HUD_RUNS_DIR") or DEFAULT_ROOT)


#: secrets shorter than this are not redacted (they would blank ordinary words)
MIN_SECRET = 8
REDACTED = "[redacted]"


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every secret (and its JSON-escaped form) replaced by "[redacted]"."""
    for secret in secrets:
        text = text.replace(secret, REDACTED)
        escaped = json.dumps(secret, ensure_ascii=False)[1:-1]
        if escaped != secret:
            text = text.replace(escaped, REDACTED)
    return text


class TraceWriter:
    """Appends one rollout's events to its JSON Lines file as they happen.

    `secrets` (the agent's provider key) never reach the file or `events`: a provider
    error that quotes the key it was sent (a proxy echoing the Authorization header) is
    stored with "[redacted]" in its place.
    """

    def __init__(self, path: Path, secrets: tuple[str, ...] = ()) -> None:
        self.path = path
        self.t0 = time.monotonic()
        self.events: list[dict[str, Any]] = []
        self.secrets = tuple(s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open until close()

    def event(self, type: str, **data: Any) -> dict[str, Any]:
        record = {"t": round(time.monotonic() - self.t0, 4), "type": type, **data}
        line = json.dumps(record, ensure_ascii=False, default=str)
        if self.secrets:
            clean = redact(line, self.secrets)
            if clean != line:
                line, record = clean, json.loads(clean)
        self.events.append(record)
        self._fh.write(line + "\n")
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


NOT_A_SUMMARY = "not a job summary (no string id, agent and placement, or runs not a list)"
#: what a job or trace id from a user may look like (no path, no glob)
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def _is_summary(job: Any) -> bool:
    return (isinstance(job, dict)
            and all(isinstance(job.get(k), str) for k in ("id", "agent", "placement"))
            and isinstance(job.get("runs", []), list)
            and isinstance(job.get("started_at", 0), (int, float)))


def _check_id(kind: str, value: str) -> None:
    if not ID_PATTERN.fullmatch(value):
        raise ConfigError(f"{value!r} is not a {kind} id (letters, digits, - and _); "
                          f"`hud jobs` lists them")


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
            if _is_summary(job):
                jobs.append(job)
                continue
            why = NOT_A_SUMMARY
        if bad is not None:
            bad.append(f"{path}: {why}")
    return sorted(jobs, key=lambda j: j.get("started_at", 0), reverse=True)


def load_job(job_id: str, root: Path | None = None) -> dict[str, Any]:
    """A job summary by id (or unique id prefix).

    Raises:
        ConfigError: not an id, no such job, the prefix is ambiguous, or its job.json
            cannot be read or is not a job summary (the file is named).
    """
    _check_id("job", job_id)
    base = root or store_root()
    matches = sorted(p for p in base.glob(f"{job_id}*/job.json")) if base.is_dir() else []
    if not matches:
        raise ConfigError(f"no job {job_id!r} under {base}; `hud jobs` lists them")
    if len(matches) > 1:
        raise ConfigError(f"job id {job_id!r} is ambiguous: "
                          f"{', '.join(p.parent.name for p in matches)}")
    try:
        job = json.loads(matches[0].read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{matches[0]}: unreadable ({type(exc).__name__}: {exc})") from None
    if not _is_summary(job):
        raise ConfigError(f"{matches[0]}: {NOT_A_SUMMARY}")
    summary: dict[str, Any] = job
    return summary


def find_trace(trace_id: str, root: Path | None = None) -> Path:
    """The JSON Lines file of a trace by id (or unique prefix), in any job.

    Raises:
        ConfigError: not an id, no such trace, or the prefix is ambiguous.
    """
    _check_id("trace", trace_id)
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

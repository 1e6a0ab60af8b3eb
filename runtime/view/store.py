"""The runs folder as the viewer reads it: validated ids, paths that stay inside, caches.

Everything under the folder is untrusted input: a job id or trace id from a URL, a
`job.json` someone edited, a trace with a torn last line or a 50 MB tool output. So:
- an id from a URL must match `ID` (letters, digits, `-`, `_`; no dots, no slashes)
  before it names a path, and every path is resolved and checked to lie inside the
  folder: anything else is `NotFound` (a 404), never a file outside;
- a job is read through `hud.eval.results.Job` (strict; never through a symlink) and
  cached by the file's size and mtime, so a page of a live job re-reads only what
  changed; a job.json that is not a job (any parse failure, even JSON nested too deep)
  is listed by `bad` with the reason, not a crash. A job is named by its folder, not by
  the id its file claims, and times or rewards that are not finite and sane are unknown;
- a trace is indexed once (`hud.view.traceindex`) under its own lock, so indexing a big
  trace stalls no other page, and its events are read a page at a time, so 10,000
  events or 50 MB open without loading it all into a page.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat as stats
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hud.errors import HudError
from hud.eval.results import Job
from hud.view.traceindex import TraceIndex, decode, seconds

#: what a job id, trace id or screenshot stem from a URL may be
ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
SHOT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}\.png")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: an unfinished job with no write for this long is shown as stopped, not running
STALE_SECONDS = 600.0
#: trace indexes kept in memory (the most recently used ones)
KEEP_INDEXES = 4
#: a job's start or finish time outside this range (seconds since the epoch) is unknown
MAX_TIMESTAMP = 1e11
#: a reward beyond this magnitude is shown as none
MAX_REWARD = 1e9


class NotFound(HudError):
    """No such job, run or file in the runs folder (or the id was not valid)."""


def valid_id(value: str) -> bool:
    return ID.fullmatch(value) is not None


@dataclass
class JobEntry:
    """One job folder: the job (None when its job.json is not one) and how it stands."""

    id: str
    folder: Path
    job: Job | None
    error: str | None
    state: str  # "running", "finished", "stopped", "unreadable"
    last_write: float
    envs: list[str] = field(default_factory=list)

    @property
    def tasks(self) -> frozenset[str]:
        return frozenset(run.slug for run in self.job.runs) if self.job else frozenset()


class Store:
    """The runs folder at `root`, read for the viewer (thread-safe: pages render in a
    thread pool)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._jobs: dict[str, tuple[tuple[int, int, int], Job | None, str | None]] = {}
        self._traces: OrderedDict[Path, TraceIndex] = OrderedDict()
        self._lock = threading.Lock()

    # ---- paths -------------------------------------------------------------------
    def inside(self, *parts: str) -> Path:
        """The path of `parts` under the root, each a valid id (or screenshot name).

        Raises:
            NotFound: a part is not a valid name, or the path leaves the root.
        """
        for part in parts:
            if not (valid_id(part) or SHOT.fullmatch(part) or part in ("job.json",)
                    or (part.endswith(".jsonl") and valid_id(part[:-6]))):
                raise NotFound(f"not a valid name: {part!r}")
        try:
            path = self.root.joinpath(*parts).resolve()
        except (OSError, RuntimeError):  # a symlink loop
            raise NotFound(f"{'/'.join(parts)} cannot be resolved (a symlink loop?)") from None
        if not path.is_relative_to(self.root) or path == self.root:
            raise NotFound(f"{path} is outside the runs folder {self.root}")
        return path

    def trace_path(self, job_id: str, trace_id: str) -> Path:
        """The trace file of run `trace_id` in job `job_id`.

        Raises:
            NotFound: no such trace (or an invalid id).
        """
        path = self.inside(job_id, f"{trace_id}.jsonl")
        if not path.is_file():
            raise NotFound(f"no trace {trace_id} in job {job_id}")
        return path

    def screenshot(self, job_id: str, name: str) -> bytes:
        """The bytes of screenshot `name` of job `job_id`: a PNG file in the job's folder.

        Raises:
            NotFound: no such file, an invalid name, or the file is not a PNG.
        """
        path = self.inside(job_id, name)
        try:
            data = path.read_bytes() if path.is_file() else b""
        except OSError:
            data = b""
        if not data.startswith(PNG_SIGNATURE):
            raise NotFound(f"no PNG screenshot {name} in job {job_id}")
        return data

    # ---- jobs --------------------------------------------------------------------
    def jobs(self, bad: list[str] | None = None) -> list[JobEntry]:
        """Every job folder (one with a job.json), newest first; unreadable ones are kept
        (state "unreadable") and named in `bad`."""
        if not self.root.is_dir():
            return []
        entries = []
        for folder in sorted(self.root.iterdir()):
            if not valid_id(folder.name):
                continue
            try:
                folder = self.inside(folder.name)
            except NotFound:
                continue  # a symlink out of the runs folder
            if (folder / "job.json").is_file():
                entry = self._entry(folder)
                if entry.error and bad is not None:
                    bad.append(f"{folder / 'job.json'}: {entry.error}")
                entries.append(entry)
        return sorted(entries, key=lambda e: e.job.started_at if e.job else 0.0, reverse=True)

    def job(self, job_id: str) -> JobEntry:
        """Job `job_id`.

        Raises:
            NotFound: no such job, or an invalid id.
        """
        folder = self.inside(job_id)
        if not (folder / "job.json").is_file():
            raise NotFound(f"no job {job_id} in {self.root}")
        return self._entry(folder)

    def _entry(self, folder: Path) -> JobEntry:
        path = folder / "job.json"
        try:
            info = path.lstat()
        except OSError as exc:
            return JobEntry(folder.name, folder, None, f"unreadable ({exc})", "unreadable", 0.0)
        if not stats.S_ISREG(info.st_mode):
            return JobEntry(folder.name, folder, None, "not read: job.json is a symlink or not "
                            "a regular file (write a real job.json in the job folder)",
                            "unreadable", 0.0)
        key = (info.st_size, info.st_mtime_ns, info.st_ino)
        with self._lock:
            cached = self._jobs.get(folder.name)
        if cached is None or cached[0] != key:
            job, error = _read_job(path, folder.name)
            cached = (key, job, error)
            with self._lock:
                self._jobs[folder.name] = cached
        _, job, error = cached
        if job is None:
            return JobEntry(folder.name, folder, None, error, "unreadable", info.st_mtime)
        last = info.st_mtime
        if job.finished_at:
            state = "finished"
        else:
            last = max([last, *(_mtime(p) for p in folder.glob("*.jsonl"))])
            state = "running" if time.time() - last < STALE_SECONDS else "stopped"
        return JobEntry(folder.name, folder, job, None, state, last,
                        sorted({run.task.env for run in job.runs}))

    def in_progress(self, entry: JobEntry) -> list[str]:
        """Trace ids of the job's rollouts still going (a trace with no run in job.json)."""
        if entry.job is None or entry.state == "finished":
            return []
        done = {run.trace_id for run in entry.job.runs}
        return sorted(p.stem for p in entry.folder.glob("*.jsonl")
                      if p.stem not in done and valid_id(p.stem))

    def stamp(self, job_id: str | None = None, trace_id: str | None = None) -> str:
        """A value that changes when what a page shows changes (for live pages)."""
        paths = [self.root] if job_id is None else [self.inside(job_id),
                                                     self.inside(job_id, "job.json")]
        if job_id is None:
            paths += sorted(self.root.glob("*/job.json"))
        if job_id is not None and trace_id is not None:
            paths.append(self.trace_path(job_id, trace_id))
        parts = []
        for path in paths:
            try:
                stat = path.stat()
            except OSError:
                continue
            parts.append(f"{stat.st_size}.{stat.st_mtime_ns}")
        return "-".join(parts)

    # ---- traces ------------------------------------------------------------------
    def index(self, path: Path) -> TraceIndex:
        """The index of trace file `path`, brought up to date with what was appended.

        Only this trace's index is locked while it is read, so other pages go on; the
        `KEEP_INDEXES` most recently used indexes are kept.

        Raises:
            NotFound: the trace is gone or cannot be read.
        """
        try:
            info = path.stat()
        except OSError as exc:
            raise NotFound(f"trace {path.name} cannot be read ({exc.strerror or exc})") from None
        with self._lock:
            index = self._traces.get(path)
            if index is None or info.st_size < index.end:
                index = self._traces[path] = TraceIndex()
            self._traces.move_to_end(path)
            while len(self._traces) > KEEP_INDEXES:
                self._traces.popitem(last=False)
        with index.lock:
            if index.stat != (info.st_size, info.st_mtime_ns):
                try:
                    index.extend(path)
                except OSError as exc:
                    raise NotFound(f"trace {path.name} cannot be read "
                                   f"({exc.strerror or exc})") from None
                index.stat = (info.st_size, info.st_mtime_ns)
            return index

    def events(self, path: Path, numbers: list[int]) -> dict[int, dict[str, Any]]:
        """Events `numbers` of trace `path` (by their place in the file), read by offset.

        Raises:
            NotFound: the trace is gone or cannot be read.
        """
        index = self.index(path)
        found: dict[int, dict[str, Any]] = {}
        try:
            with open(path, "rb") as fh:
                for number in numbers:
                    if 0 <= number < index.count:
                        fh.seek(index.offsets[number])
                        found[number] = decode(fh.read(index.lengths[number])) or {}
        except OSError as exc:
            raise NotFound(f"trace {path.name} cannot be read ({exc.strerror or exc})") from None
        return found


    def line(self, path: Path, number: int) -> str:
        """Event `number` of trace `path` as the text of its line.

        Raises:
            NotFound: no such event, or the trace cannot be read.
        """
        index = self.index(path)
        if not 0 <= number < index.count:
            raise NotFound(f"no event {number} in {path.name}")
        try:
            with open(path, "rb") as fh:
                fh.seek(index.offsets[number])
                return fh.read(index.lengths[number]).decode("utf-8", errors="replace")
        except OSError as exc:
            raise NotFound(f"trace {path.name} cannot be read ({exc.strerror or exc})") from None


def _mtime(path: Path) -> float:
    """The mtime of `path`; 0.0 when it is gone (deleted since listed, a dangling link)."""
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _read_job(path: Path, job_id: str) -> tuple[Job | None, str | None]:
    """The job in `path` (never through a symlink), named `job_id` after its folder
    whatever its file says, with odd numbers made unknown; or None and why not."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            if not stats.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return None, "not read: job.json is not a regular file"
            data = json.loads(fh.read())
    except OSError as exc:
        return None, f"unreadable ({type(exc).__name__}: {exc})"
    except RecursionError:
        return None, "unreadable (JSON nested too deep)"
    except (ValueError, MemoryError) as exc:
        return None, f"unreadable ({type(exc).__name__}: {str(exc)[:200]})"
    try:
        job = Job.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])[:200]
        return None, f"not a job summary this hud reads ({where}: {str(first['msg'])[:200]})"
    except (RecursionError, ValueError, TypeError, MemoryError) as exc:
        return None, f"not a job summary this hud reads ({type(exc).__name__})"
    return _sane(job, job_id), None


def _stamp(value: float) -> float:
    return value if math.isfinite(value) and 0 <= value <= MAX_TIMESTAMP else 0.0


def _sane(job: Job, job_id: str) -> Job:
    """`job` named `job_id`, with times and rewards that are not finite and in range
    made unknown (a start time 0, no timing, no reward)."""
    runs = []
    for run in job.runs:
        reward = run.reward
        if reward is not None and not (math.isfinite(reward) and abs(reward) <= MAX_REWARD):
            reward = None
        timings = {k: v for k, v in run.timings.items()
                   if (t := seconds(v)) is not None and t >= 0}
        runs.append(run.model_copy(update={"reward": reward, "timings": timings}))
    return job.model_copy(update={"id": job_id, "runs": runs,
                                  "started_at": _stamp(job.started_at),
                                  "finished_at": _stamp(job.finished_at)})

"""The runs folder as the viewer reads it: validated ids, paths that stay inside, caches.

Everything under the folder is untrusted input: a job id or trace id from a URL, a
`job.json` someone edited, a trace with a torn last line or a 50 MB tool output. So:
- an id from a URL must match `ID` (letters, digits, `-`, `_`; no dots, no slashes)
  before it names a path, and every path is resolved and checked to lie inside the
  folder: anything else is `NotFound` (a 404), never a file outside;
- a job is read through `hud.eval.results.Job` (strict) and cached by the file's
  size and mtime, so a page of a live job re-reads only what changed; a job.json that is
  not a job is listed by `bad` with the reason, not a crash;
- a trace is indexed once (offset, length, type and time of each line, by `TraceIndex`)
  and its events are read a page at a time, so 10,000 events or 50 MB open without
  loading it all into a page.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hud.errors import HudError
from hud.eval.results import Job

#: what a job id, trace id or screenshot stem from a URL may be
ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
SHOT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}\.png")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: an unfinished job with no write for this long is shown as stopped, not running
STALE_SECONDS = 600.0
#: a page of trace events ends at this many events or bytes of JSON, whichever is first
PAGE_EVENTS = 200
PAGE_BYTES = 2_000_000
#: event types the run page shows above the trace (first or last of each is kept)
SUMMARY_TYPES = ("rollout", "placement", "start", "answer", "grade", "error", "timeout", "end")


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


@dataclass
class TraceIndex:
    """Where each event of a trace file is, and what the run page needs from all of them."""

    offsets: list[tuple[int, int]] = field(default_factory=list)  # (offset, length)
    types: list[str] = field(default_factory=list)
    times: list[float | None] = field(default_factory=list)
    summary: dict[str, list[int]] = field(default_factory=dict)  # type -> event numbers
    usage: dict[str, int] = field(default_factory=dict)
    bad: list[str] = field(default_factory=list)
    pages: list[int] = field(default_factory=lambda: [0])  # first event of each page
    page_bytes: int = 0  # of the last page so far
    lines: int = 0  # lines indexed, blank and bad ones included
    end: int = 0  # bytes indexed (through the last complete line)
    stat: tuple[int, int] = (0, 0)


class Store:
    """The runs folder at `root`, read for the viewer (thread-safe: pages render in a
    thread pool)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._jobs: dict[str, tuple[tuple[int, int], Job | None, str | None]] = {}
        self._traces: dict[Path, TraceIndex] = {}
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
        path = self.root.joinpath(*parts).resolve()
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
            stat = path.stat()
        except OSError as exc:
            return JobEntry(folder.name, folder, None, f"unreadable ({exc})", "unreadable", 0.0)
        key = (stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._jobs.get(folder.name)
        if cached is None or cached[0] != key:
            job, error = _read_job(path)
            cached = (key, job, error)
            with self._lock:
                self._jobs[folder.name] = cached
        _, job, error = cached
        if job is None:
            return JobEntry(folder.name, folder, None, error, "unreadable", stat.st_mtime)
        last = stat.st_mtime
        if job.finished_at:
            state = "finished"
        else:
            last = max([last, *(p.stat().st_mtime for p in folder.glob("*.jsonl"))])
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
        """The index of trace file `path`, brought up to date with what was appended."""
        stat = path.stat()
        with self._lock:
            index = self._traces.get(path)
            if index is None or stat.st_size < index.end:
                index = self._traces[path] = TraceIndex()
            if index.stat != (stat.st_size, stat.st_mtime_ns):
                _extend(index, path)
                index.stat = (stat.st_size, stat.st_mtime_ns)
            return index

    def events(self, path: Path, numbers: list[int]) -> dict[int, dict[str, Any]]:
        """Events `numbers` of trace `path` (by their place in the file), read by offset."""
        index = self.index(path)
        found: dict[int, dict[str, Any]] = {}
        with open(path, "rb") as fh:
            for number in numbers:
                if 0 <= number < len(index.offsets):
                    offset, length = index.offsets[number]
                    fh.seek(offset)
                    found[number] = _decode(fh.read(length)) or {}
        return found


def _read_job(path: Path) -> tuple[Job | None, str | None]:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        return None, f"unreadable ({type(exc).__name__}: {exc})"
    try:
        return Job.model_validate(data), None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return None, f"not a job summary this hud reads ({where}: {first['msg']})"


def _decode(line: bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(line.decode("utf-8", errors="replace"))
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _extend(index: TraceIndex, path: Path) -> None:
    """Index the lines of `path` after `index.end`; a last line with no newline yet is
    left for the next call (a live rollout is writing it)."""
    with open(path, "rb") as fh:
        fh.seek(index.end)
        offset = index.end
        for line in fh:
            if not line.endswith(b"\n") and _decode(line) is None:
                break  # torn (a killed job) or still being written
            length = len(line)
            index.lines += 1
            event = _decode(line) if line.strip() else {}
            if event is None:
                index.bad.append(f"{path.name}:{index.lines}: not a JSON object")
            elif event:
                _add(index, offset, length, event)
            offset += length
        index.end = offset


def _add(index: TraceIndex, offset: int, length: int, event: dict[str, Any]) -> None:
    number = len(index.offsets)
    kind = event.get("type")
    kind = kind if isinstance(kind, str) else "?"
    t = event.get("t")
    index.offsets.append((offset, length))
    index.types.append(kind)
    index.times.append(float(t) if isinstance(t, (int, float)) and not isinstance(t, bool)
                       else None)
    if kind in SUMMARY_TYPES:
        index.summary.setdefault(kind, []).append(number)
    usage = event.get("usage")
    if kind == "model_turn" and isinstance(usage, dict):
        for key, value in usage.items():
            if isinstance(key, str) and isinstance(value, int) and not isinstance(value, bool):
                index.usage[key] = index.usage.get(key, 0) + value
    start = index.pages[-1]
    if number > start and (number - start >= PAGE_EVENTS
                           or index.page_bytes + length > PAGE_BYTES):
        index.pages.append(number)
        index.page_bytes = 0
    index.page_bytes += length

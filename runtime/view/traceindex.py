"""The index of one trace file: where each event is, its type and time, compactly stored.

A trace is untrusted text: a line may be torn, not JSON, nested 100,000 deep, or timed by
a 400-digit integer. Such a line is named in `bad` (or its time is unknown), never an
exception. The index holds about 26 bytes per event (`array` offsets, lengths and times,
interned type names), so a trace of a million events costs tens of megabytes, not a
hundred; `hud.view.store` keeps only the few most recently used indexes.
"""

from __future__ import annotations

import json
import math
import threading
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: a page of trace events ends at this many events or bytes of JSON, whichever is first
PAGE_EVENTS = 200
PAGE_BYTES = 2_000_000
#: event types the run page shows above the trace (first or last of each is kept)
SUMMARY_TYPES = ("rollout", "placement", "start", "answer", "grade", "error", "timeout", "end")
#: indexing lets other threads run every this many lines (a big trace stalls no page)
YIELD_LINES = 512
#: a time (seconds since the rollout began) beyond this is shown as unknown
MAX_SECONDS = 1e9


def seconds(value: Any) -> float | None:
    """`value` as a finite, sane number of seconds (0 to `MAX_SECONDS`), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int) and not -MAX_SECONDS <= value <= MAX_SECONDS:
        return None  # float() of a 400-digit integer overflows
    number = float(value)
    return number if math.isfinite(number) and abs(number) <= MAX_SECONDS else None


@dataclass
class TraceIndex:
    """Where each event of a trace file is, and what the run page needs from all of them."""

    offsets: array[int] = field(default_factory=lambda: array("q"))
    lengths: array[int] = field(default_factory=lambda: array("q"))
    types: list[str] = field(default_factory=list)  # interned: one string per type
    stamps: array[float] = field(default_factory=lambda: array("d"))  # NaN: unknown
    summary: dict[str, list[int]] = field(default_factory=dict)  # type -> event numbers
    usage: dict[str, int] = field(default_factory=dict)
    bad: list[str] = field(default_factory=list)
    pages: list[int] = field(default_factory=lambda: [0])  # first event of each page
    page_bytes: int = 0  # of the last page so far
    lines: int = 0  # lines indexed, blank and bad ones included
    end: int = 0  # bytes indexed (through the last complete line)
    stat: tuple[int, int] = (0, 0)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _kinds: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def count(self) -> int:
        return len(self.offsets)

    def time(self, number: int) -> float | None:
        """The time of event `number` (None: unknown)."""
        value = self.stamps[number]
        return None if math.isnan(value) else value

    @property
    def times(self) -> list[float | None]:
        return [None if math.isnan(t) else t for t in self.stamps]

    def extend(self, path: Path) -> None:
        """Index the lines of `path` after `end`; a last line with no newline yet is left
        for the next call (a live rollout is writing it).

        Raises:
            OSError: the file cannot be opened or read.
        """
        with open(path, "rb") as fh:
            fh.seek(self.end)
            offset = self.end
            for line in fh:
                event = decode(line) if line.strip() else {}
                if not line.endswith(b"\n") and (event is None or not line.strip()):
                    break  # torn (a killed job) or still being written
                length = len(line)
                self.lines += 1
                if self.lines % YIELD_LINES == 0:
                    time.sleep(0)  # let the other pages' threads have the GIL
                if event is None:
                    self.bad.append(f"{path.name}:{self.lines}: not a JSON object")
                elif event:
                    self._add(offset, length, event)
                offset += length
            self.end = offset

    def _add(self, offset: int, length: int, event: dict[str, Any]) -> None:
        number = len(self.offsets)
        kind = event.get("type")
        kind = kind if isinstance(kind, str) else "?"
        kind = self._kinds.setdefault(kind, kind)
        self.offsets.append(offset)
        self.lengths.append(length)
        self.types.append(kind)
        t = seconds(event.get("t"))
        self.stamps.append(math.nan if t is None else t)
        if kind in SUMMARY_TYPES:
            self.summary.setdefault(kind, []).append(number)
        usage = event.get("usage")
        if kind == "model_turn" and isinstance(usage, dict):
            for key, value in usage.items():
                if isinstance(key, str) and isinstance(value, int) and not isinstance(value, bool) \
                        and 0 <= value < 1 << 53:
                    self.usage[key] = self.usage.get(key, 0) + value
        start = self.pages[-1]
        if number > start and (number - start >= PAGE_EVENTS
                               or self.page_bytes + length > PAGE_BYTES):
            self.pages.append(number)
            self.page_bytes = 0
        self.page_bytes += length


def decode(line: bytes) -> dict[str, Any] | None:
    """One trace line as a JSON object; None for anything else (not JSON, nested too
    deep, a number too long, not an object)."""
    try:
        event = json.loads(line.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError, MemoryError):
        return None
    return event if isinstance(event, dict) else None

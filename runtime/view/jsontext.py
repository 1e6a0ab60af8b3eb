"""Indented JSON text of an untrusted value, bounded: the first N characters, and a count.

`json.dumps(value, indent=2)` of a 200 kB trace line of numbers nested 300 deep is about
120 MB of indentation, and of a value nested 100,000 deep a RecursionError. The viewer
only ever shows the first `CAP` characters, so `dump` walks the value iteratively (any
depth), writes the same text as `json.dumps(value, indent=2, ensure_ascii=False,
default=str)` up to `limit` characters, and past that only counts characters and lines
(arithmetically for indentation), so the work is proportional to the value's size and the
memory to `limit`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

_END = object()


@dataclass
class Dumped:
    """The first `limit` characters of a value's JSON text, and the size of the whole."""

    text: str
    chars: int
    lines: int


@dataclass
class _Out:
    limit: int
    parts: list[str] = field(default_factory=list)
    kept: int = 0
    chars: int = 0
    newlines: int = 0

    def add(self, text: str) -> None:
        self.chars += len(text)
        if self.kept < self.limit:
            piece = text[:self.limit - self.kept]
            self.parts.append(piece)
            self.kept += len(piece)

    def indent(self, depth: int) -> None:
        self.newlines += 1
        self.chars += 1 + 2 * depth
        if self.kept < self.limit:
            piece = ("\n" + " " * min(2 * depth, self.limit))[:self.limit - self.kept]
            self.parts.append(piece)
            self.kept += len(piece)


def _float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


def _scalar(value: Any) -> str | None:
    """The JSON text of a value that is not a container (None for a list or dict)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        try:
            return int.__repr__(value)
        except ValueError:  # more digits than Python converts
            return json.dumps(f"(an integer of about {value.bit_length() * 0.30103:.0f} digits)")
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, (list, tuple, dict)):
        return None
    return json.dumps(str(value), ensure_ascii=False)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return json.dumps(key, ensure_ascii=False)
    text = _scalar(key)
    return json.dumps(text.strip('"') if text is not None else str(key), ensure_ascii=False)


def dump(value: Any, limit: int, *, count: bool = True) -> Dumped:
    """The JSON text of `value` (indent 2) cut at `limit` characters, with the whole
    text's length and line count (with `count` False: the walk stops at `limit`, and the
    counts are only of what was walked)."""
    out = _Out(limit)
    # a frame: the container's items, whether it is a dict, its depth, and its id
    stack: list[tuple[Iterator[Any], bool, int, int]] = []
    open_ids: set[int] = set()

    def begin(item: Any, depth: int) -> bool:
        text = _scalar(item)
        if text is not None:
            out.add(text)
            return False
        if id(item) in open_ids:
            out.add('"(circular)"')
            return False
        is_dict = isinstance(item, dict)
        if not item:
            out.add("{}" if is_dict else "[]")
            return False
        out.add("{" if is_dict else "[")
        stack.append((iter(item.items() if is_dict else item), is_dict, depth + 1, id(item)))
        open_ids.add(id(item))
        return True

    first = begin(value, 0)
    while stack and (count or out.kept < limit):
        items, is_dict, depth, ident = stack[-1]
        nxt = next(items, _END)
        if nxt is _END:
            stack.pop()
            open_ids.discard(ident)
            out.indent(depth - 1)
            out.add("}" if is_dict else "]")
            first = False
            continue
        if not first:
            out.add(",")
        out.indent(depth)
        if is_dict:
            key, member = cast("tuple[Any, Any]", nxt)
            out.add(_key(key) + ": ")
            first = begin(member, depth)
        else:
            first = begin(nxt, depth)
    return Dumped("".join(out.parts), out.chars, out.newlines + 1)

"""Bounded indented JSON text: the same text as json.dumps, cut, at any depth."""

from __future__ import annotations

import json
from typing import Any

from hud.view.jsontext import dump

SAMPLE: Any = {"a": [1, 2.5, None, True, False, "x\ny", {}, []], "é": {"k": [[], [{"z": -0.0}]]},
               "big": 10 ** 40, "inf": float("inf"), "nan": float("nan"), "s": "\u202e"}


def test_the_text_is_what_json_dumps_writes() -> None:
    """Uncut, the text, its length and its line count are json.dumps(indent=2)'s."""
    expected = json.dumps(SAMPLE, indent=2, ensure_ascii=False)
    done = dump(SAMPLE, 10_000)
    assert (done.text, done.chars, done.lines) == (expected, len(expected),
                                                  expected.count("\n") + 1)


def test_a_cut_text_is_a_prefix_and_the_whole_is_still_counted() -> None:
    """Cut at any length, the text is that prefix and the counts are the whole's."""
    expected = json.dumps(SAMPLE, indent=2, ensure_ascii=False)
    for limit in range(len(expected) + 1):
        done = dump(SAMPLE, limit)
        assert done.text == expected[:limit]
        assert (done.chars, done.lines) == (len(expected), expected.count("\n") + 1)


def test_a_value_nested_deeper_than_the_recursion_limit_is_dumped() -> None:
    """A list nested 100,000 deep: its first characters, and its size counted."""
    root: list[Any] = []
    inner = root
    for _ in range(100_000):
        inner.append([])
        inner = inner[0]
    done = dump(root, 12)
    assert done.text == "[\n  [\n    [\n"[:12]
    assert done.lines == 2 * 100_000 + 1


def test_without_counting_the_walk_stops_at_the_limit() -> None:
    """count=False: the text is the same prefix, and the walk stops there."""
    value = list(range(100_000))
    done = dump(value, 20, count=False)
    assert done.text == json.dumps(value, indent=2)[:20]
    assert done.chars < 100

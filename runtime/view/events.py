"""Trace events shaped for the run page: labelled, folded, and plain text only.

Every value in a trace is untrusted text (the model's output, a tool's result, the task's
arguments). Nothing here produces markup: an `Item` holds plain strings and the page's
templates escape them (Jinja2 autoescape; no `|safe` anywhere). Control and bidi
characters are shown as `\\uXXXX`, so a trace cannot hide or reorder text.

Long values fold: a `Text` keeps a short `head` for the closed state and at most `CAP`
characters for the open one; the rest is counted, not sent (the served viewer links the
raw event, `hud trace ID --json` prints it). A page of 200 events therefore stays a few
megabytes at most, whatever the trace holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hud.view.jsontext import Dumped, dump
from hud.view.store import SHOT
from hud.view.traceindex import seconds

#: characters and lines shown before a value folds
HEAD_CHARS = 600
HEAD_LINES = 12
#: characters sent for an opened fold; the rest is only counted
CAP = 20_000
#: a chip (model name, finish reason, a placement field) is cut at this length
CHIP = 120
_HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def visible(text: str) -> str:
    """`text` with control, zero-width and bidi characters written as \\uXXXX."""
    return _HIDDEN.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def as_text(value: Any, limit: int = CAP, *, count: bool = True) -> Dumped:
    """A string as itself, anything else as indented JSON: its first `limit` characters,
    and the size of the whole (counted, not built, past `limit`; not at all unless
    `count`)."""
    if isinstance(value, str):
        return Dumped(value[:limit], len(value), value.count("\n") + 1 if count else 0)
    return dump(value, limit, count=count)


@dataclass
class Text:
    """A value to show: the whole (up to CAP), and a head when it folds."""

    full: str
    head: str | None  # None: short enough to show whole
    chars: int
    lines: int
    cut: int  # characters beyond CAP, not sent


def fold(value: Any) -> Text:
    """`value` (a string, or any JSON value) as a possibly folded `Text`."""
    whole = as_text(value)
    chars, lines = whole.chars, whole.lines
    shown = visible(whole.text)
    head = None
    if chars > HEAD_CHARS or lines > HEAD_LINES:
        head = "\n".join(shown[:HEAD_CHARS].split("\n")[:HEAD_LINES])
    return Text(shown, head, chars, lines, max(0, chars - CAP))


def chip(value: Any) -> str:
    """A short one-line label from an untrusted value."""
    text = visible(as_text(value, CHIP + 1, count=False).text.replace("\n", " "))
    return text if len(text) <= CHIP else text[:CHIP - 1] + "…"


@dataclass
class Block:
    """A labelled value inside an event (a prompt, a tool call's arguments...)."""

    label: str
    text: Text
    tone: str = ""  # "", "error", "call", "thinking"
    open: bool = False


@dataclass
class Item:
    """One event as the run page shows it."""

    number: int
    t: float | None
    kind: str  # the CSS class: model, tool, shot, action, start, answer, grade, error, info
    label: str
    chips: list[str] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    shot: str | None = None  # a validated screenshot file name in the job's folder


def _rest(event: dict[str, Any], *skip: str) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in ("t", "type", *skip)}


def _usage(usage: Any) -> list[str]:
    if not isinstance(usage, dict):
        return []
    names = {"input_tokens": "in", "output_tokens": "out", "prompt_tokens": "in",
             "completion_tokens": "out"}
    return [f"{names.get(str(k), chip(k))} {v:,}" for k, v in usage.items()
            if isinstance(v, int) and not isinstance(v, bool)]


def item(number: int, event: dict[str, Any]) -> Item:
    """The page's view of event `number`."""
    kind = event.get("type")
    label = chip(kind) if isinstance(kind, str) else "?"
    t = seconds(event.get("t"))
    shape = _SHAPES.get(label)
    out = Item(number, t, "info", label)
    if shape is not None:
        shape(out, event)
    else:
        rest = _rest(event)
        if rest:
            out.blocks.append(Block("event", fold(rest)))
    return out


def _model_turn(out: Item, event: dict[str, Any]) -> None:
    out.kind = "model"
    step = event.get("step")
    out.label = f"model turn {step}" if isinstance(step, int) else "model turn"
    out.chips = [chip(event[k]) for k in ("model", "finish") if event.get(k)]
    out.chips += _usage(event.get("usage"))
    if event.get("thinking"):
        out.blocks.append(Block("thinking", fold(event["thinking"]), "thinking"))
    if event.get("text"):
        out.blocks.append(Block("text", fold(event["text"])))
    calls = event.get("tool_calls")
    for call in calls if isinstance(calls, list) else []:
        if isinstance(call, dict):
            name = chip(call.get("name", "?"))
            out.blocks.append(Block(f"call {name}", fold(call.get("arguments")), "call"))


def _tool_result(out: Item, event: dict[str, Any]) -> None:
    out.kind = "tool"
    error = event.get("is_error") is True
    out.label = f"result of {chip(event.get('name', '?'))}"
    if error:
        out.kind, out.chips = "error", ["error"]
    took = seconds(event.get("seconds"))
    if took is not None:
        out.chips.append(f"{took:.2f} s")
    if isinstance(event.get("images"), int) and event["images"]:
        out.chips.append(f"{event['images']} image(s)")
    out.blocks.append(Block("output", fold(event.get("text", "")), "error" if error else ""))


def _screenshot(out: Item, event: dict[str, Any]) -> None:
    out.kind = "shot"
    name = event.get("file")
    out.shot = name if isinstance(name, str) and SHOT.fullmatch(name) else None
    out.chips = [chip(event[k]) for k in ("source",) if event.get(k)]
    if isinstance(event.get("bytes"), int):
        out.chips.append(f"{event['bytes']:,} bytes")
    if out.shot is None:
        out.blocks.append(Block("not shown (not a screenshot file name)", fold(name)))


def _action(out: Item, event: dict[str, Any]) -> None:
    out.kind = "action"
    rest = _rest(event)
    verb = rest.pop("action", None) or rest.pop("tool", None)
    out.label = chip(verb) if verb else out.label
    out.chips = [f"{chip(k)}={chip(v)}" for k, v in rest.items() if len(chip(v)) < 60]
    long = {k: v for k, v in rest.items() if len(chip(v)) >= 60}
    if long:
        out.blocks.append(Block("arguments", fold(long)))


def _start(out: Item, event: dict[str, Any]) -> None:
    out.kind = "start"
    out.blocks.append(Block("prompt", fold(event.get("prompt"))))
    if event.get("frame"):
        out.blocks.append(Block("start frame", fold(event["frame"])))


def _answer(out: Item, event: dict[str, Any]) -> None:
    out.kind = "answer"
    out.chips = [chip(event["stop_reason"])] if event.get("stop_reason") else []
    out.blocks.append(Block("answer", fold(event.get("answer"))))


def _grade(out: Item, event: dict[str, Any]) -> None:
    out.kind = "grade"
    out.chips = [f"score {chip(event.get('score'))}"]
    rest = _rest(event, "score")
    if rest:
        out.blocks.append(Block("grade", fold(rest)))


def _error(out: Item, event: dict[str, Any]) -> None:
    out.kind = "error"
    out.chips = [chip(event["phase"])] if event.get("phase") else []
    out.blocks.append(Block("error", fold(event.get("error")), "error", open=True))
    if event.get("traceback"):
        out.blocks.append(Block("traceback", fold(event["traceback"]), "error"))
    if event.get("data") is not None:
        out.blocks.append(Block("data", fold(event["data"])))


def _chips_only(out: Item, event: dict[str, Any]) -> None:
    rest = _rest(event)
    short = {k: v for k, v in rest.items() if len(chip(v)) < 80}
    out.chips = [f"{chip(k)}: {chip(v)}" for k, v in short.items()]
    long = {k: v for k, v in rest.items() if k not in short}
    if long:
        out.blocks.append(Block("details", fold(long)))


_SHAPES = {
    "model_turn": _model_turn, "tool_result": _tool_result, "screenshot": _screenshot,
    "computer_action": _action, "browser_action": _action, "start": _start,
    "answer": _answer, "oracle": _answer, "grade": _grade, "error": _error,
    "rollout": _chips_only, "placement": _chips_only, "end": _chips_only,
    "timeout": _chips_only,
}

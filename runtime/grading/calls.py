"""Hidden-input cases for `hud.graders.python_calls`: what each call must give, and the
reading of the harness's report of what it gave.

A `Case` names a function of the agent's project and its inputs, which enter the sandbox,
and what it must return or raise, which never does: `check` judges one raw outcome here,
in the daemon. The report comes from a process that ran the agent's code, so
`parse_results` trusts nothing in it but its shape: one JSON object of exactly as many
outcomes as there are cases, each exactly one of a return value, a raised exception's
classes, a per-call timeout or an unserializable value. Anything else is malformed, a
score of 0 with the reason.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hud.errors import ConfigError

SHOWN = 200  # characters of a value shown in info


class _Missing:
    """The type of MISSING: "no value given", where None is a value."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


def short(value: Any) -> str:
    """repr(value), cut to SHOWN characters."""
    text = repr(value)
    return text if len(text) <= SHOWN else text[:SHOWN] + "..."


def as_json(value: Any, what: str) -> Any:
    """`value` after a JSON round trip (tuples become lists); ConfigError if impossible."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} must be JSON data (lists, dicts, str, numbers, bools, "
                          f"None), got {short(value)}: {exc}") from None


def same(got: Any, expected: Any, tol: float = 1e-9) -> bool:
    """JSON-data equality; numbers within `tol` (relative or absolute) when either is a
    float; a bool equals only a bool."""
    if isinstance(got, bool) or isinstance(expected, bool):
        return type(got) is type(expected) and got == expected
    if isinstance(got, (int, float)) and isinstance(expected, (int, float)):
        if isinstance(got, float) or isinstance(expected, float):
            return math.isclose(got, expected, rel_tol=tol, abs_tol=tol)
        return got == expected
    if isinstance(got, list) and isinstance(expected, list):
        return len(got) == len(expected) and all(
            same(g, e, tol) for g, e in zip(got, expected, strict=True))
    if isinstance(got, dict) and isinstance(expected, dict):
        return got.keys() == expected.keys() and all(same(got[k], expected[k], tol) for k in got)
    return type(got) is type(expected) and got == expected


@dataclass(frozen=True)
class Case:
    """One call of the agent's code on a hidden input, and what it must give.

    Attributes:
        call: the function, as "package.module:function" (or "package.module.function").
        args: positional arguments (JSON data). They enter the sandbox.
        kwargs: keyword arguments (JSON data). They enter the sandbox.
        expect: the return value that passes (compared with `same` after a JSON round
            trip), or a predicate on the returned JSON data, evaluated in the daemon.
            Never enters the sandbox.
        raises: instead of `expect`: the exception class that must be raised, a builtin
            name ("ValueError") or "module.Class"; subclasses pass.
        tol: tolerance for floats.
    """

    call: str
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    expect: Any = MISSING
    raises: str | None = None
    tol: float = 1e-9

    def __post_init__(self) -> None:
        if (self.expect is MISSING) == (self.raises is None):
            raise ConfigError(f"Case({self.call!r}) needs exactly one of expect= and raises=")
        if not isinstance(self.call, str) or not self.call.replace(":", ".").strip("."):
            raise ConfigError(f"Case.call must be 'module:function', got {self.call!r}")
        as_json(list(self.args), f"Case({self.call!r}).args")
        as_json(dict(self.kwargs), f"Case({self.call!r}).kwargs")
        if self.expect is not MISSING and not callable(self.expect):
            as_json(self.expect, f"Case({self.call!r}).expect")

    def check(self, outcome: Mapping[str, Any]) -> bool:
        """Whether one raw outcome from the harness passes this case."""
        if self.raises is not None:
            want = self.raises if "." in self.raises else f"builtins.{self.raises}"
            return outcome.get("stage") == "call" and want in outcome.get("raised", [])
        if "ok" not in outcome:
            return False
        if callable(self.expect):
            try:
                return bool(self.expect(outcome["ok"]))
            except Exception:  # noqa: BLE001 - the agent's value made the predicate fail
                return False
        return same(outcome["ok"], as_json(self.expect, f"Case({self.call!r}).expect"), self.tol)


def describe(outcome: Mapping[str, Any]) -> str:
    if "ok" in outcome:
        return f"returned {short(outcome['ok'])}"
    if "raised" in outcome:
        name = outcome["raised"][0].removeprefix("builtins.") if outcome["raised"] else "?"
        where = " on import" if outcome.get("stage") == "import" else ""
        return f"raised {name}{where}: {outcome.get('message', '')}"[:SHOWN]
    if "timeout" in outcome:
        return f"ran past {outcome['timeout']:g}s"
    return f"returned an unserializable {outcome.get('unserializable')}"


def _seconds(value: Any) -> bool:
    """A plausible duration: a finite, non-negative number of sane size, not a bool (the
    report comes from a process that ran the agent's code: a 400-digit int must not reach
    the formatting of `describe`)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, int):  # compared as an int: a huge one has no float form
        return 0 <= value <= 10**6
    return math.isfinite(value) and 0 <= value <= 1e6


_OUTCOME_KEYS = ({"ok"}, {"raised", "message", "stage"}, {"timeout"}, {"unserializable"})


def parse_results(raw: bytes, count: int) -> list[dict[str, Any]] | str:
    """The harness's per-case outcomes, or why `raw` is not a well-formed report of them."""
    if not raw:
        return "no result from the harness"
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        return f"malformed result ({type(exc).__name__}: {str(exc)[:100]})"
    results = doc.get("results") if isinstance(doc, dict) and doc.keys() == {"results"} else None
    if not isinstance(results, list) or len(results) != count:
        return f"malformed result (not {count} outcomes)"
    for item in results:
        if not isinstance(item, dict) or set(item) not in _OUTCOME_KEYS:
            return f"malformed result (outcome {short(item)})"
        if "raised" in item and not (isinstance(item["raised"], list)
                                     and all(isinstance(n, str) for n in item["raised"])):
            return f"malformed result (outcome {short(item)})"
        if "timeout" in item and not _seconds(item["timeout"]):
            return f"malformed result (outcome {short(item)})"
        if "raised" in item and not (isinstance(item["message"], str)
                                     and isinstance(item["stage"], str)):
            return f"malformed result (outcome {short(item)})"
    return results

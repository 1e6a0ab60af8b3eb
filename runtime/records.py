"""Plain records checked by hand: the part of pydantic's lax mode hud's wire types use.

`hud.messages` builds the control protocol's records on `Record` rather than on pydantic,
because importing pydantic is most of a container daemon's start-up CPU (see there). A
field is a name, a check and a default; a check returns the field's value or raises `Bad`
with pydantic's words for the problem ("Input should be a valid string"), so a frame is
refused as it was, and tests/test_messages.py holds each record to the pydantic model it
replaced. `Invalid` (a ValueError) lists every problem of a record, in field order.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar


class Invalid(ValueError):
    """A record's fields did not check: `problems` lists (where, what), in field order."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{where}: {what}" if where else what
                                   for where, what in problems))


class Bad(Exception):
    """One field's problems: (location below the field, message) pairs."""

    def __init__(self, *problems: tuple[str, str]) -> None:
        self.problems = problems


def bad(message: str) -> Bad:
    return Bad(("", message))


# Field checks: each returns the field's value or raises Bad, as pydantic's lax mode
# does for the type named (JSON's types and the Python values the daemon passes).

def anything(value: Any) -> Any:
    return value


def text(value: Any) -> str:
    if isinstance(value, str):  # a str enum or subclass: its plain text, as pydantic kept it
        return str.__str__(value)
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode()
        except UnicodeDecodeError:
            raise bad("Input should be a valid string, unable to parse raw data as a "
                       "unicode string") from None
    raise bad("Input should be a valid string")


def optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else check(value)


def mapping(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise bad("Input should be a valid dictionary")
    for key in value:
        if not isinstance(key, str):
            raise Bad((f"{key}.[key]", "Input should be a valid string"))
    return dict(value)


_INT_TEXT = re.compile(r"\s*([+-]?[0-9](?:_?[0-9])*)(?:\.0+)?\s*")
_TRUE, _FALSE = ("1", "on", "t", "true", "y", "yes"), ("0", "off", "f", "false", "n", "no")


def integer(value: Any) -> int:
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise bad("Input should be a finite number")
        if abs(value) >= 2**63:  # pydantic takes floats as ints within i64 only
            raise bad("Unable to parse input string as an integer, exceeded maximum size")
        if value.is_integer():
            return int(value)
        raise bad("Input should be a valid integer, got a number with a fractional part")
    if isinstance(value, str):
        digits = _INT_TEXT.fullmatch(value)
        if digits is not None:
            return int(digits.group(1))
        raise bad("Input should be a valid integer, unable to parse string as an integer")
    raise bad("Input should be a valid integer")


def positive_int(value: Any) -> int:
    given = integer(value)
    if given < 1:
        raise bad("Input should be greater than or equal to 1")
    return given


def number(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            if value.isascii():  # Python's float() takes any script's digits
                return float(value.strip())
        except ValueError:
            pass
        raise bad("Input should be a valid number, unable to parse string as a number")
    raise bad("Input should be a valid number")


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        if value in (0, 1):
            return bool(value)
        if not (value.is_integer() if isinstance(value, float)  # inf, nan, 1.5
                else -2**63 <= value < 2**63):  # past i64, pydantic's words differ
            raise bad("Input should be a valid boolean")
    elif isinstance(value, str):
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
    else:
        raise bad("Input should be a valid boolean")
    raise bad("Input should be a valid boolean, unable to interpret input")


def grammar(check: Callable[[str], str]) -> Callable[[Any], str]:
    def checked(value: Any) -> str:
        given = text(value)
        try:
            return check(given)
        except ValueError as exc:
            raise bad(str(exc)) from None
    return checked


def records(kind: type[Record]) -> Callable[[Any], list[Any]]:
    def checked(value: Any) -> list[Any]:
        if not isinstance(value, (list, tuple)):
            raise bad("Input should be a valid list")
        items, problems = [], []
        for index, item in enumerate(value):
            try:
                items.append(record(kind)(item))
            except Bad as exc:
                problems += [(f".{index}{where}", what) for where, what in exc.problems]
        if problems:
            raise Bad(*problems)
        return items
    return checked


def record(kind: type[Record]) -> Callable[[Any], Any]:
    def checked(value: Any) -> Any:
        try:
            return kind.model_validate(value)
        except Invalid as exc:
            raise Bad(*((f".{where}" if where else "", what) for where, what in exc.problems)
                       ) from None
    return checked


REQUIRED: Any = object()
R = TypeVar("R", bound="Record")
Field = tuple[str, Callable[[Any], Any], Any]  # name, check, default (REQUIRED: none)


class Record:
    """A wire record: `FIELDS` checked at construction, unknown keys refused (or, with
    `EXTRA = "ignore"`, dropped, as the manifest's records always did).

    The small part of pydantic's model API the code base uses: keyword construction,
    attributes, `model_validate`, `model_dump` and equality.
    """

    FIELDS: ClassVar[tuple[Field, ...]] = ()
    EXTRA: ClassVar[str] = "forbid"

    def __init__(self, /, **values: Any) -> None:
        problems: list[tuple[str, str]] = []
        for name, check, default in self.FIELDS:
            if name in values:
                try:
                    value = check(values.pop(name))
                except Bad as exc:
                    problems += [(name + (where if not where or where.startswith(".")
                                          else f".{where}"), what)
                                 for where, what in exc.problems]
                    continue
            elif default is REQUIRED:
                problems.append((name, "Field required"))
                continue
            else:
                value = default() if callable(default) else default
            self.__dict__[name] = value
        if self.EXTRA == "forbid":
            problems += [(str(name), "Extra inputs are not permitted") for name in values]
        if problems:
            raise Invalid(problems)

    @classmethod
    def model_validate(cls: type[R], obj: Any) -> R:
        """`obj` (a mapping, or a record of this class) as this record.

        Raises:
            Invalid: a field is missing, unknown or of the wrong type.
        """
        if isinstance(obj, cls):
            return obj
        if not isinstance(obj, Mapping):
            raise Invalid([("", f"Input should be a valid dictionary or instance of "
                                f"{cls.__name__}")])
        keys = [key for key in obj if not isinstance(key, str)]
        if keys and cls.EXTRA == "forbid":
            raise Invalid([(str(key), "Extra inputs are not permitted") for key in keys])
        return cls(**{key: value for key, value in obj.items() if isinstance(key, str)})

    def model_dump(self, mode: str = "python") -> dict[str, Any]:
        """The record as a dict, nested records and lists of them included; in "json"
        mode every value made JSON as pydantic made it (`json_value`)."""
        dumped = {name: dump(self.__dict__[name]) for name, _, _ in self.FIELDS}
        return json_value(dumped) if mode == "json" else dumped

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.__dict__ == self.__dict__

    __hash__ = None  # type: ignore[assignment]  # mutable, as pydantic's models are

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={self.__dict__[name]!r}" for name, _, _ in self.FIELDS)
        return f"{type(self).__name__}({shown})"


def dump(value: Any) -> Any:
    if isinstance(value, Record):
        return value.model_dump()
    if isinstance(value, list):
        return [dump(item) for item in value]
    return value


def json_value(value: Any) -> Any:
    """`value` as JSON data, as pydantic's json mode makes it: plain JSON kept as it is, a
    NaN or infinite float null (a schema's `math.inf` default, a NaN argument), tuples and
    sets lists, bytes their UTF-8 text; anything else (a date, a model) through
    pydantic_core, imported then."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is list or kind is tuple or kind is set or kind is frozenset:
        return [json_value(item) for item in value]
    if kind is dict and all(type(key) is str for key in value):
        return {key: json_value(item) for key, item in value.items()}
    if kind is bytes:
        return value.decode(errors="replace")
    from pydantic_core import to_jsonable_python

    converted = to_jsonable_python(value)
    return converted if converted is value else json_value(converted)

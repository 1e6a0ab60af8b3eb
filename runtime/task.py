"""`Task`: one template bound to concrete arguments. Minting a task runs nothing.

The slug names a task stably across processes and machines: the template id when the
task overrides no argument, else the id plus a short hash of the canonical arguments
(JSON with sorted keys, defaults dropped), so `count_letter()` and
`count_letter(word="strawberry")` are the same task.

`Task` is a plain class, not a pydantic model: every environment module mints tasks at
import time, and importing pydantic costs a container's daemon tens of milliseconds of
CPU on each rollout. It keeps the slice of the model API that hud uses (`model_dump`,
`model_dump_json`, `model_validate`, `model_validate_json`), checks its fields as
pydantic's lax mode did (a `str` field takes bytes and str enums, `args` any mapping with
string keys), and refuses what pydantic refused with a ValueError that names the field.
pydantic is imported only where it is already loaded anyway: when a pydantic model has a
`Task` field (`__get_pydantic_core_schema__`), and to make JSON of argument values that are
not plain JSON (tuples, dates...), exactly as pydantic serialized them before.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, Literal

from hud.errors import ConfigError
from hud.records import Bad, json_value
from hud.records import text as plain_text

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
    from pydantic.json_schema import JsonSchemaValue
    from pydantic_core import CoreSchema

SLUG_HASH_CHARS = 8
FIELDS = ("env", "id", "args", "slug", "description")
#: how much of a refused value a message shows
_SHOWN = 80


def canonical_json(value: Any) -> str:
    """JSON text that is equal for equal values (sorted keys, no whitespace)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def make_slug(template_id: str, args: dict[str, Any]) -> str:
    """`template_id` alone for no arguments, else `template_id-<hash of args>`."""
    if not args:
        return template_id
    digest = hashlib.sha256(canonical_json(args).encode()).hexdigest()[:SLUG_HASH_CHARS]
    return f"{template_id}-{digest}"


class _InvalidTask(ConfigError, ValueError):
    """A Task's fields were refused. A ConfigError (bad user input) and a ValueError, as
    pydantic's ValidationError was, so callers written against the model still catch it."""


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"


def _as_str(value: Any) -> str | None:
    """`value` as a plain str the way pydantic's lax mode took it; None if it is none."""
    try:
        return plain_text(value)
    except Bad:
        return None


def _checked(fields: Mapping[Any, Any]) -> dict[str, Any]:
    """The five fields of a Task from keyword `fields`, with the defaults filled in.

    Raises:
        ValueError (_InvalidTask): a field is missing, unknown or of the wrong type; every
            problem is named (`env: Input should be a valid string (got 1)`).
    """
    problems = [f"{key[:_SHOWN] if isinstance(key, str) else _shown(key)}: Extra inputs are "
                f"not permitted" for key in fields if key not in FIELDS]
    out: dict[str, Any] = {}
    for name in ("env", "id", "slug"):
        if name not in fields:
            if name == "slug":
                out[name] = ""
            else:
                problems.append(f"{name}: Field required")
            continue
        text = _as_str(fields[name])
        if text is None:
            problems.append(f"{name}: Input should be a valid string (got {_shown(fields[name])})")
        out[name] = text
    args = fields.get("args", {})
    if not isinstance(args, Mapping):
        problems.append(f"args: Input should be a valid dictionary (got {_shown(args)})")
    else:
        out["args"] = {}
        for key, value in args.items():
            text = _as_str(key)
            if text is None:
                problems.append(f"args.{_shown(key)}.[key]: Input should be a valid string")
            out["args"][text] = value
    description = fields.get("description")
    out["description"] = description if description is None else _as_str(description)
    if description is not None and out["description"] is None:
        problems.append(f"description: Input should be a valid string or None "
                        f"(got {_shown(description)})")
    if problems:
        raise _InvalidTask(f"invalid Task: {'; '.join(problems)}")
    return out


def _rebuild(cls: type[Task], fields: dict[str, Any]) -> Task:
    """A Task from its fields: how pickle and copy make one (a frozen Task refuses the
    attribute assignments their default way of restoring an object makes)."""
    return cls(**fields)


class Task:
    """A runnable task: environment name, template id, arguments and slug.

    Frozen, compared by all five fields and hashed by (env, slug). `args` defaults to a new
    empty dict; an empty `slug` is computed from the id and args (`make_slug`).
    """

    __slots__ = FIELDS

    env: str
    id: str
    args: dict[str, Any]
    slug: str
    description: str | None

    if TYPE_CHECKING:  # the signature a type checker sees: keyword-only, typed

        def __init__(self, *, env: str, id: str, args: dict[str, Any] = ..., slug: str = ...,
                     description: str | None = ...) -> None: ...

    else:

        def __init__(self, **fields):
            """Raises: ValueError (a ConfigError too): a field is missing, unknown or of the
            wrong type, as pydantic's ValidationError did."""
            checked = _checked(fields)
            if not checked["slug"]:
                checked["slug"] = make_slug(checked["id"], checked["args"])
            for name in FIELDS:
                object.__setattr__(self, name, checked[name])

    def __setattr__(self, name: str, value: Any) -> None:
        raise _InvalidTask(f"Task is frozen: cannot set {name}; make a new Task instead")

    def __delattr__(self, name: str) -> None:
        raise _InvalidTask(f"Task is frozen: cannot delete {name}; make a new Task instead")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in FIELDS)

    def __hash__(self) -> int:
        return hash((self.env, self.slug))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in FIELDS)
        return f"{type(self).__name__}({shown})"

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (type(self), self.model_dump())

    def model_dump(self, *, mode: Literal["python", "json"] = "python",
                   include: Collection[str] | None = None,
                   exclude: Collection[str] | None = None) -> dict[str, Any]:
        """The fields as a dict (a new `args` dict), those of `include` if given, less those
        of `exclude`; in "json" mode every argument value is JSON data as pydantic made it
        (a tuple a list, a NaN null, a date its ISO text: hud.records.json_value)."""
        args = json_value(self.args) if mode == "json" else dict(self.args)
        fields = {"env": self.env, "id": self.id, "args": args, "slug": self.slug,
                  "description": self.description}
        return {name: value for name, value in fields.items()
                if (include is None or name in include) and not (exclude and name in exclude)}

    def model_dump_json(self, *, indent: int | None = None,
                        include: Collection[str] | None = None,
                        exclude: Collection[str] | None = None) -> str:
        """The task as JSON text: compact (a Taskset's JSON Lines), or indented."""
        return json.dumps(self.model_dump(mode="json", include=include, exclude=exclude),
                          indent=indent, separators=(",", ":") if indent is None else None,
                          ensure_ascii=False)

    def model_copy(self, *, update: Mapping[str, Any] | None = None,
                   deep: bool = False) -> Task:
        """A copy with the fields of `update` replaced, checked as a new Task is (the slug
        kept unless `update` names it, as pydantic's model_copy kept it)."""
        fields = self.model_dump()
        if deep:
            fields = copy.deepcopy(fields)
        return type(self)(**{**fields, **(update or {})})

    @classmethod
    def model_validate(cls, obj: Any) -> Task:
        """`obj` if it is a Task, else the Task of a mapping with the five fields' keys.

        Raises:
            ValueError (a ConfigError too): `obj` is neither, or a key is missing, unknown
                or of the wrong type.
        """
        if isinstance(obj, cls):
            return obj
        if not isinstance(obj, Mapping):
            raise _InvalidTask(f"invalid Task: Input should be a valid dictionary or instance "
                               f"of Task (got {_shown(obj)})")
        return cls(**_checked(obj))  # _checked first: it names a key that is no str

    @classmethod
    def model_validate_json(cls, data: str | bytes) -> Task:
        """The Task of JSON text (a JSON object with the five fields' keys).

        Raises:
            ValueError: the text is not JSON, or not a valid task (see `model_validate`).
        """
        try:
            obj = json.loads(data)
            json.dumps(obj, ensure_ascii=False).encode()  # a lone surrogate escape
        except RecursionError:
            raise _InvalidTask("invalid Task: its JSON nests too deeply") from None
        except UnicodeEncodeError:
            raise _InvalidTask("invalid Task: its JSON holds a lone surrogate (\\udXXX), "
                               "which is no text") from None
        return cls.model_validate(obj)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        """How a pydantic model validates and serializes a `Task` field: a Task as is, or a
        dict checked field by field (so errors carry the location, e.g. `task.env`), dumped
        as the dict of `model_dump`. pydantic is loaded already whenever this runs."""
        from pydantic_core import core_schema as cs

        def field(schema: CoreSchema, **default: Any) -> cs.TypedDictField:
            if not default:
                return cs.typed_dict_field(schema)
            return cs.typed_dict_field(cs.with_default_schema(schema, **default), required=False)

        text = cs.str_schema()
        fields = cs.typed_dict_schema({
            "env": field(text),
            "id": field(text),
            "args": field(cs.dict_schema(text, cs.any_schema()), default_factory=dict),
            "slug": field(text, default=""),
            "description": field(cs.nullable_schema(text), default=None),
        }, extra_behavior="forbid")

        def validate(value: Any, inner: cs.ValidatorFunctionWrapHandler) -> Task:
            return value if isinstance(value, cls) else cls(**inner(value))

        return cs.no_info_wrap_validator_function(
            validate, fields,
            serialization=cs.plain_serializer_function_ser_schema(lambda task: task.model_dump()))

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        """The JSON schema of a `Task` field: the object of its five fields, titled Task."""
        value = handler(schema)
        value["title"] = cls.__name__
        return value

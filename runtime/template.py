"""A task template: an async generator function, its argument model and its time limits.

`@env.template()` wraps the author's function in a `Template`. Calling it mints a
`Task` and runs nothing; the daemon opens the generator with validated arguments
(hud.serve.runner). Arguments are validated against the signature by a pydantic model built
from it, both when minting and when they arrive over the wire ("7" becomes 7 for an int).

Time limits (seconds), per template or inherited from the `Environment`:
    setup_timeout   setup, up to the prompt (the first yield)
    grade_timeout   grading, from the answer to the reward; also the reference solution
    stall_timeout   the longest the template may run *synchronously* between two awaits,
                    i.e. block the daemon's event loop (see hud.serve.stall)
A limit reached fails that call with a TaskError naming the limit to raise; the daemon
and every other session keep serving.

Pydantic stays out of a rollout for plain templates. Importing it costs a container tens
of milliseconds of CPU, the largest cost left in a rollout, and most templates take only
`str`, `int`, `float` and `bool` (or unannotated) arguments with such defaults. For those
the model is built on first real use, and arguments whose types are already exact are
returned as given, JSON'd and listed in a schema by hand: what pydantic would have done,
kept honest by parity tests (tests/test_template_plain.py). Anything else (a "7" for an
int, a missing key, an Optional) goes through the model, so coercions and error messages
are pydantic's. Other signatures build the model at decoration time, as a bad annotation
must fail there.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

from hud.errors import ConfigError
from hud.task import Task

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

    from hud.environment import Environment

#: default limits of an Environment (seconds)
DEFAULT_SETUP_TIMEOUT = 600.0
DEFAULT_GRADE_TIMEOUT = 600.0
DEFAULT_STALL_TIMEOUT = 10.0

_EMPTY = inspect.Parameter.empty
#: JSON's scalars: pydantic_core's JSON form of each is the very value
_SCALARS = frozenset({str, int, float, bool, type(None)})
#: the annotations of a plain template's parameters, as written or under
#: `from __future__ import annotations` (pydantic resolves those names to the builtins)
_PLAIN_TYPES: dict[object, type] = {
    str: str, int: int, float: float, bool: bool,
    "str": str, "int": int, "float": float, "bool": bool,
}
#: the JSON schema type pydantic gives each
_SCHEMA_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}
#: BaseModel's public attributes: pydantic warns about a field that shadows one, so a
#: parameter so named builds its model at decoration time, where the warning belongs
#: (a test keeps this in step with pydantic's BaseModel)
_MODEL_ATTRIBUTES = frozenset({
    "construct", "copy", "dict", "from_orm", "json", "schema", "schema_json",
    "parse_file", "parse_obj", "parse_raw", "update_forward_refs", "validate",
    "mro", "register",  # through its metaclass (type, ABCMeta)
})


@dataclass(frozen=True)
class TaskLimits:
    """The time limits one template's calls run under (seconds)."""

    setup: float = DEFAULT_SETUP_TIMEOUT
    grade: float = DEFAULT_GRADE_TIMEOUT
    stall: float = DEFAULT_STALL_TIMEOUT


@overload
def check_limit(name: str, value: float) -> float: ...
@overload
def check_limit(name: str, value: float | None) -> float | None: ...


def check_limit(name: str, value: object) -> float | None:
    """`value` if it is None or a positive finite number of seconds.

    Raises:
        ConfigError: anything else.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
        math.isfinite(value) and value > 0
    ):
        raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def _plain_parameters(signature: inspect.Signature) -> dict[str, tuple[type | None, Any]] | None:
    """Each parameter's type (None: any JSON scalar) and default, if every parameter is
    plain: annotated `str`, `int`, `float` or `bool` or not at all, defaulting to nothing
    or a value of exactly that type; else None."""
    plain: dict[str, tuple[type | None, Any]] = {}
    for param in signature.parameters.values():
        name = param.name
        # pydantic makes `_x` private, may warn about `model_x`, and shadows BaseModel's
        if name.startswith(("_", "model_")) or name in _MODEL_ATTRIBUTES:
            return None
        kind: type | None = None
        if param.annotation is not _EMPTY:
            try:
                kind = _PLAIN_TYPES.get(param.annotation)
            except TypeError:  # an unhashable annotation, for pydantic to refuse
                return None
            if kind is None:
                return None
        default = param.default
        if default is not _EMPTY and not (
            type(default) is kind if kind else type(default) in _SCALARS
        ):
            return None
        plain[name] = (kind, default)
    return plain


def _class_name_ok(template_id: str) -> bool:
    """Whether the model's class name can be made from `template_id` (a null or a lone
    surrogate in it fails at decoration time, where it always has)."""
    try:
        template_id.encode()
    except UnicodeEncodeError:
        return False
    return "\0" not in template_id


def _to_jsonable(value: Any) -> Any:
    """pydantic_core's JSON form of `value`, without importing it for a JSON scalar."""
    if type(value) in _SCALARS:
        return value
    from pydantic_core import to_jsonable_python

    return to_jsonable_python(value)


def _describe_error(err: ValidationError) -> str:
    parts = []
    for item in err.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(args)"
        shown = "" if item["type"] == "missing" else f" (got {item.get('input')!r})"
        parts.append(f"{where}: {item['msg']}{shown}")
    return "; ".join(parts)


class Template:
    """A task template: an async generator function plus its argument model."""

    def __init__(
        self,
        env: Environment,
        fn: Callable[..., AsyncGenerator[Any, Any]],
        id: str,
        description: str | None,
        *,
        setup_timeout: float | None = None,
        grade_timeout: float | None = None,
        stall_timeout: float | None = None,
    ) -> None:
        if not inspect.isasyncgenfunction(fn):
            kind = "a coroutine function" if inspect.iscoroutinefunction(fn) else type(fn).__name__
            raise TypeError(
                f"@env.template() needs an async generator function (async def with yield); "
                f"{getattr(fn, '__name__', fn)!r} is {kind}. Write `answer = yield prompt` "
                f"then `yield reward`."
            )
        self.env = env
        self.fn = fn
        self.id = id
        doc = inspect.getdoc(fn)
        self.description = description or (doc.splitlines()[0] if doc else None)
        self.signature = inspect.signature(fn)
        self.solution_fn: Callable[..., Any] | None = None
        self._limits = {
            "setup": check_limit("setup_timeout", setup_timeout),
            "grade": check_limit("grade_timeout", grade_timeout),
            "stall": check_limit("stall_timeout", stall_timeout),
        }
        for param in self.signature.parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise TypeError(
                    f"template {id!r}: *{param.name} is not allowed; templates take named "
                    f"arguments only, so they can be validated and listed in the manifest"
                )
        self._plain = _plain_parameters(self.signature) if _class_name_ok(id) else None
        # the types each plain parameter accepts as they are (bool is not an int here)
        self._accepts = {
            name: frozenset({kind} if kind else _SCALARS)
            for name, (kind, _) in (self._plain or {}).items()
        }
        self._model: type[BaseModel] | None = None
        if self._plain is None:
            self._model = self._build_model()

    def _build_model(self) -> type[BaseModel]:
        from pydantic import ConfigDict, create_model

        fields: dict[str, Any] = {}
        for param in self.signature.parameters.values():
            annotation = Any if param.annotation is param.empty else param.annotation
            default = ... if param.default is param.empty else param.default
            fields[param.name] = (annotation, default)
        # called from this module, as before: pydantic resolves string annotations here
        return create_model(f"{self.id}_args", __config__=ConfigDict(extra="forbid"), **fields)

    @property
    def args_model(self) -> type[BaseModel]:
        """The pydantic model of the arguments (extra keys forbidden), built once."""
        if self._model is None:
            self._model = self._build_model()
        return self._model

    def __repr__(self) -> str:
        return f"<Template {self.id}{self.signature}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Task:
        """Mint a task; nothing runs.

        Raises:
            TypeError: the arguments do not fit the signature.
            ConfigError: an argument has the wrong type and cannot be coerced.
        """
        bound = self.signature.bind(*args, **kwargs)
        return Task(
            env=self.env.name,
            id=self.id,
            args=self.canonical_args(dict(bound.arguments)),
            description=self.description,
        )

    def validate_args(self, args: dict[str, Any]) -> dict[str, Any]:
        """Validate and coerce `args`; return every argument, defaults filled in.

        Raises:
            ConfigError: an argument is unknown, missing or of a type that cannot be coerced.
        """
        if not isinstance(args, dict):
            raise ConfigError(f"args for task {self.id!r} must be a JSON object, got {args!r}")
        plain = self._plain_args(args)
        if plain is not None:
            return plain
        from pydantic import ValidationError

        model_type = self.args_model
        try:
            model = model_type.model_validate(args)
        except ValidationError as exc:
            raise ConfigError(
                f"bad args for task {self.id!r}: {_describe_error(exc)}; "
                f"the template takes {self.signature}"
            ) from None
        return {name: getattr(model, name) for name in model_type.model_fields}

    def _plain_args(self, args: dict[str, Any]) -> dict[str, Any] | None:
        """Every argument, defaults filled in, when `args` is what the model would return
        unchanged: known keys, none missing, every value of its parameter's very type;
        else None (the model decides)."""
        if self._plain is None or type(args) is not dict:
            return None
        accepts = self._accepts
        for key, value in args.items():
            allowed = accepts.get(key) if type(key) is str else None
            if allowed is None or type(value) not in allowed:
                return None
        full = {}
        for name, (_, default) in self._plain.items():
            if name in args:
                full[name] = args[name]
            elif default is _EMPTY:
                return None
            else:
                full[name] = default  # pydantic does not validate defaults either
        return full

    def canonical_args(self, args: dict[str, Any]) -> dict[str, Any]:
        """The JSON form of `args` with every argument equal to its default dropped.

        Raises:
            ConfigError: see `validate_args`.
        """
        full = self.validate_args(args)
        if any(type(value) not in _SCALARS for value in full.values()):
            full = _to_jsonable(full)
        canonical = {}
        for name, value in full.items():
            param = self.signature.parameters[name]
            if param.default is not param.empty and _to_jsonable(param.default) == value:
                continue
            canonical[name] = value
        return canonical

    def args_schema(self) -> dict[str, Any]:
        """The JSON schema of the arguments, as pydantic's `model_json_schema()` gives it.

        Written out here for plain parameters; a non-finite float default, which pydantic
        writes as is (not JSON), is left to pydantic.
        """
        plain = self._plain
        if plain is None or any(
            type(default) is float and not math.isfinite(default) for _, default in plain.values()
        ):
            return self.args_model.model_json_schema()
        properties: dict[str, Any] = {}
        for name, (kind, default) in plain.items():
            field: dict[str, Any] = {} if default is _EMPTY else {"default": default}
            # pydantic's GenerateJsonSchema.get_title_from_name
            field["title"] = name.title().replace("_", " ").strip()
            if kind is not None:
                field["type"] = _SCHEMA_TYPES[kind]
            properties[name] = field
        schema: dict[str, Any] = {"additionalProperties": False, "properties": properties}
        required = [name for name, (_, default) in plain.items() if default is _EMPTY]
        if required:
            schema["required"] = required
        schema["title"] = f"{self.id}_args"
        schema["type"] = "object"
        return schema

    def solution(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Attach a reference solution (used by the `oracle` agent); returns `fn`."""
        self.solution_fn = fn
        return fn

    def open(self, args: dict[str, Any]) -> AsyncGenerator[Any, Any]:
        """Start the template's generator for validated `args` (setup has not run yet).

        Raises:
            ConfigError: see `validate_args`.
        """
        return self.fn(**self.validate_args(args))

    @property
    def limits(self) -> TaskLimits:
        """This template's time limits: its own, else its environment's."""
        env = self.env
        mine = self._limits
        return TaskLimits(
            setup=mine["setup"] or env.setup_timeout,
            grade=mine["grade"] or env.grade_timeout,
            stall=mine["stall"] or env.stall_timeout,
        )

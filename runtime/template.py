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
"""

from __future__ import annotations

import inspect
import math
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic_core import to_jsonable_python

from hud.errors import ConfigError
from hud.task import Task

if TYPE_CHECKING:
    from hud.environment import Environment

#: default limits of an Environment (seconds)
DEFAULT_SETUP_TIMEOUT = 600.0
DEFAULT_GRADE_TIMEOUT = 600.0
DEFAULT_STALL_TIMEOUT = 10.0


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
        fields: dict[str, Any] = {}
        for param in self.signature.parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise TypeError(
                    f"template {id!r}: *{param.name} is not allowed; templates take named "
                    f"arguments only, so they can be validated and listed in the manifest"
                )
            annotation = Any if param.annotation is param.empty else param.annotation
            default = ... if param.default is param.empty else param.default
            fields[param.name] = (annotation, default)
        self.args_model: type[BaseModel] = create_model(
            f"{id}_args", __config__=ConfigDict(extra="forbid"), **fields
        )

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
        try:
            model = self.args_model.model_validate(args)
        except ValidationError as exc:
            raise ConfigError(
                f"bad args for task {self.id!r}: {_describe_error(exc)}; "
                f"the template takes {self.signature}"
            ) from None
        return {name: getattr(model, name) for name in self.args_model.model_fields}

    def canonical_args(self, args: dict[str, Any]) -> dict[str, Any]:
        """The JSON form of `args` with every argument equal to its default dropped.

        Raises:
            ConfigError: see `validate_args`.
        """
        full = to_jsonable_python(self.validate_args(args))
        canonical = {}
        for name, value in full.items():
            param = self.signature.parameters[name]
            if param.default is not param.empty and to_jsonable_python(param.default) == value:
                continue
            canonical[name] = value
        return canonical

    def args_schema(self) -> dict[str, Any]:
        return self.args_model.model_json_schema()

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

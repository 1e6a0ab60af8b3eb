"""The authoring API: `Environment`, its templates, hooks and capabilities.

    env = Environment(name="letter-count")

    @env.template()
    async def count_letter(word: str = "strawberry", letter: str = "r"):
        answer = yield f"How many '{letter}'s are in '{word}'?"
        yield 1.0 if answer and str(word.count(letter)) in answer else 0.0

A template is an async generator: code before the first `yield` is per-task setup, the
first yield is the prompt, the value sent back is the agent's answer, and the second
yield is the reward. Calling a template mints a `Task` and runs nothing; the runtime
daemon drives the generator (hud.runner). Arguments are validated against the
signature by a pydantic model built from it, both when minting and when they arrive
over the wire ("7" becomes 7 for an int).
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic_core import to_jsonable_python

from hud.capability import Capability, StaticCapability
from hud.errors import ConfigError
from hud.protocol import Binding, EnvInfo, Manifest, TaskInfo, TemplateInfo
from hud.task import Task

LAYERS = ("base", "browser", "desktop")

# Environments created in this process, by name: lets a Taskset of minted tasks find its
# environment for the in-process (`local`) placement. Weak, so tests don't leak them.
_REGISTRY: weakref.WeakValueDictionary[str, Environment] = weakref.WeakValueDictionary()


def registered(name: str) -> Environment | None:
    """The environment called `name` created in this process, if it is still alive."""
    return _REGISTRY.get(name)


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
        self, env: Environment, fn: Callable[..., Any], id: str, description: str | None
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
        self.args_model: type[BaseModel] = create_model(  # type: ignore[call-overload]
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

    def open(self, args: dict[str, Any]) -> Any:
        """Start the template's generator for validated `args` (setup has not run yet).

        Raises:
            ConfigError: see `validate_args`.
        """
        return self.fn(**self.validate_args(args))


class Environment:
    """An RL environment: templates (tasks), lifecycle hooks and capabilities."""

    def __init__(self, name: str, version: str = "0.1.0", *, layer: str = "base") -> None:
        if not name or not isinstance(name, str):
            raise ConfigError(f"Environment needs a non-empty name, got {name!r}")
        if layer not in LAYERS:
            raise ConfigError(f"unknown image layer {layer!r}; use one of {', '.join(LAYERS)}")
        self.name = name
        self.version = version
        self.layer = layer
        self.templates: dict[str, Template] = {}
        self.tasks: list[Task] = []
        self.capabilities: dict[str, Capability] = {}
        self.initialize_hooks: list[Callable[[], Any]] = []
        self.shutdown_hooks: list[Callable[[], Any]] = []
        _REGISTRY[name] = self

    def __repr__(self) -> str:
        return f"<Environment {self.name} {self.version}: {len(self.templates)} templates>"

    def template(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        id: str | None = None,
        description: str | None = None,
    ) -> Any:
        """Register an async generator as a task template (`@env.template()`).

        Raises:
            TypeError: the decorated object is not an async generator function.
            ConfigError: a template with the same id exists already.
        """

        def register(func: Callable[..., Any]) -> Template:
            template_id = id or getattr(func, "__name__", "")
            if template_id in self.templates:
                raise ConfigError(f"template id {template_id!r} is registered twice in {self.name!r}")
            template = Template(self, func, template_id, description)
            self.templates[template_id] = template
            return template

        return register(fn) if fn is not None else register

    def initialize(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        """Register a hook the daemon runs (awaited if async) before serving."""
        self.initialize_hooks.append(fn)
        return fn

    def shutdown(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        """Register a hook the daemon runs at shutdown; hooks run in reverse order."""
        self.shutdown_hooks.append(fn)
        return fn

    def add_capability(
        self,
        capability: Capability | str,
        protocol: str | None = None,
        url: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> Capability:
        """Publish a capability: a `Capability` object, or name/protocol/url/params of a
        service the environment runs itself.

        Raises:
            ConfigError: the name is taken, or a static binding lacks protocol or url.
        """
        if isinstance(capability, str):
            if not protocol or not url:
                raise ConfigError(
                    f"add_capability({capability!r}) needs protocol= and url= "
                    f"(e.g. protocol='ssh/2', url='tcp://127.0.0.1:2222')"
                )
            capability = StaticCapability(
                Binding(name=capability, protocol=protocol, url=url, params=params or {})
            )
        if capability.name in self.capabilities:
            raise ConfigError(f"capability {capability.name!r} is registered twice")
        self.capabilities[capability.name] = capability
        return capability

    def workspace(self, root: str = "/workspace", *, user: str | None = "agent",
                  name: str = "shell", env: dict[str, str] | None = None) -> Any:
        """Give the agent a shell and files in `root` over ssh (`ssh/2`), as `user`.

        Returns the `hud.workspace.Workspace`; template code uses its `run(cmd, user=...)`
        for setup and grading.

        Raises:
            ConfigError: the name is taken.
        """
        from hud.workspace import Workspace

        return self.add_capability(Workspace(root, user=user, name=name, env=env))

    @property
    def tools(self) -> Any:
        """The environment's MCP tool server (`mcp/2025-11-25`), created on first use."""
        from hud.tools import Tools

        existing = [c for c in self.capabilities.values() if isinstance(c, Tools)]
        if existing:
            return existing[0]
        return self.add_capability(Tools(server_name=self.name))

    def tool(self, name: str | None = None, *, description: str | None = None) -> Any:
        """Decorator: offer a function to the agent as an MCP tool (`@env.tool()`).

        Its type hints become the input schema and its docstring the description.
        """
        return self.tools.tool(name, description=description)

    def browser(self, name: str = "browser", **options: Any) -> Any:
        """Run Chromium for the agent (`cdp/1.3`, headless, as the agent user); needs the
        browser image layer (sets `layer="browser"` unless a desktop was asked for).
        Options go to `hud.browser.BrowserCapability` (user, width, height, max_tabs,
        fresh_profile, ...). Returns the capability, whose `open`/`evaluate`/`text`/
        `screenshot` helpers serve setup and grading.

        Raises:
            ConfigError: the name is taken.
        """
        from hud.browser import BrowserCapability

        if self.layer == "base":
            self.layer = "browser"
        return self.add_capability(BrowserCapability(name, **options))

    def desktop(self, name: str = "desktop", **options: Any) -> Any:
        """Run a virtual display with a window manager and a VNC server (`rfb/3.8`) for
        the agent; needs the desktop image layer (sets `layer="desktop"`). Options go to
        `hud.desktop.DesktopCapability` (user, width, height, window_manager, ...).

        Raises:
            ConfigError: the name is taken.
        """
        from hud.desktop import DesktopCapability

        self.layer = "desktop"
        return self.add_capability(DesktopCapability(name, **options))

    def gym(self, env: Any, *, name: str = "robot", slots: int = 1, camera: int | None = None,
            max_steps: int | None = None, success: Callable[[dict, dict], bool] | None = None,
            **make_kwargs: Any) -> Any:
        """Serve a gymnasium environment (an id, an env object or a factory) as a `robot`
        capability (`openpi/0`); needs the `robot` extra. Returns the RobotCapability.

        Raises:
            ConfigError: the name is taken.
        """
        from hud.robot import RobotCapability

        return self.add_capability(RobotCapability.gym(
            env, name=name, slots=slots, camera=camera, max_steps=max_steps, success=success,
            **make_kwargs))

    def robot(self, sim: Any, *, name: str = "robot", slots: int = 1,
              max_steps: int | None = None, slot_timeout: float = 30.0) -> Any:
        """Serve a custom simulator (a `hud.robot.SimBridge` or a factory of one) as a
        `robot` capability. Returns the RobotCapability.

        Raises:
            ConfigError: the name is taken.
        """
        from hud.robot import RobotCapability

        return self.add_capability(RobotCapability(sim, name=name, slots=slots,
                                                   max_steps=max_steps, slot_timeout=slot_timeout))

    def add_tasks(self, tasks: Iterable[Task]) -> None:
        """List tasks in the manifest (the loader also takes a module-level `tasks`).

        Raises:
            ConfigError: an item is not a Task of a template of this environment.
        """
        for task in tasks:
            if not isinstance(task, Task) or task.id not in self.templates:
                raise ConfigError(
                    f"{task!r} is not a task of {self.name!r}; mint tasks by calling a template"
                )
            if all(t.slug != task.slug for t in self.tasks):
                self.tasks.append(task)

    def listed_tasks(self) -> list[Task]:
        """The tasks in the manifest: those added, else every template callable with no args."""
        if self.tasks:
            return list(self.tasks)
        listed = []
        for template in self.templates.values():
            try:
                listed.append(template())
            except (TypeError, ConfigError):
                continue  # has required args: start it by id with --args
        return listed

    def resolve(self, name: str, args: dict[str, Any] | None = None) -> tuple[Template, dict]:
        """Find what `name` starts: a listed task's slug, or a template id with `args`.

        Raises:
            ConfigError: no task or template is called `name` (the message lists them),
                or a listed slug was given with extra args.
        """
        for task in self.listed_tasks():
            if task.slug == name and task.slug != task.id:
                if args:
                    raise ConfigError(
                        f"task {name!r} is a listed task with fixed args; start template "
                        f"{task.id!r} to pass args"
                    )
                return self.templates[task.id], dict(task.args)
        if name in self.templates:
            return self.templates[name], dict(args or {})
        known = ", ".join(t.slug for t in self.listed_tasks()) or "(none)"
        templates = ", ".join(self.templates) or "(none)"
        raise ConfigError(f"unknown task {name!r}; listed tasks: {known}; templates: {templates}")

    def manifest(self, bindings: list[Binding] | None = None) -> Manifest:
        return Manifest(
            env=EnvInfo(name=self.name, version=self.version, layer=self.layer),
            bindings=list(bindings or []),
            tasks=[
                TaskInfo(slug=t.slug, id=t.id, args=t.args, description=t.description)
                for t in self.listed_tasks()
            ],
            templates=[
                TemplateInfo(
                    id=t.id,
                    description=t.description,
                    args_schema=t.args_schema(),
                    has_solution=t.solution_fn is not None,
                )
                for t in self.templates.values()
            ],
        )

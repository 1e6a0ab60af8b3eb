"""The authoring API: `Environment`, its templates, hooks and capabilities.

    env = Environment(name="letter-count")

    @env.template()
    async def count_letter(word: str = "strawberry", letter: str = "r"):
        answer = yield f"How many '{letter}'s are in '{word}'?"
        yield graders.exact_answer(answer, word.count(letter))

A template is an async generator: code before the first `yield` is per-task setup, the
first yield is the prompt, the value sent back is the agent's answer, and the second
yield is the reward. Calling a template mints a `Task` and runs nothing; the runtime
daemon drives the generator (hud.serve.runner). Arguments are validated against the
signature by a pydantic model built from it, both when minting and when they arrive
over the wire ("7" becomes 7 for an int).

One running environment (one container, one daemon) serves `concurrency` tasks at once,
1 by default: rollouts share its /workspace, its agent user and its capabilities, so a
second `tasks.start` while a task is in progress (parked sessions count) is refused.
Declare `Environment(concurrency=N)` only for an environment whose tasks cannot see
each other (e.g. one simulator slot per session).
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from hud.capability import Capability, StaticCapability
from hud.errors import ConfigError
from hud.messages import Binding, EnvInfo, Manifest, TaskInfo, TemplateInfo
from hud.records import Invalid
from hud.task import Task
from hud.template import (
    DEFAULT_GRADE_TIMEOUT,
    DEFAULT_SETUP_TIMEOUT,
    DEFAULT_STALL_TIMEOUT,
    Template,
    check_limit,
)

if TYPE_CHECKING:  # the capability modules load only when a method below is called
    from hud.capabilities.chromium import BrowserCapability
    from hud.capabilities.desktop import DesktopCapability
    from hud.capabilities.mcp import Tools
    from hud.capabilities.ssh import Workspace
    from hud.robot.bridge import SimBridge, SuccessFn
    from hud.robot.server import RobotCapability

LAYERS = ("base", "browser", "desktop")
CapabilityT = TypeVar("CapabilityT", bound=Capability)
#: a template function: an async generator (answer = yield prompt; yield reward)
TemplateFn = Callable[..., AsyncGenerator[Any, Any]]
F = TypeVar("F", bound=Callable[..., Any])

# Environments created in this process, by name: lets a Taskset of minted tasks find its
# environment for the in-process (`local`) placement. Weak, so tests don't leak them.
_REGISTRY: weakref.WeakValueDictionary[str, Environment] = weakref.WeakValueDictionary()


def registered(name: str) -> Environment | None:
    """The environment called `name` created in this process, if it is still alive."""
    return _REGISTRY.get(name)


class Environment:
    """An RL environment: templates (tasks), lifecycle hooks and capabilities."""

    def __init__(
        self,
        name: str,
        version: str = "0.1.0",
        *,
        layer: str = "base",
        concurrency: int = 1,
        setup_timeout: float = DEFAULT_SETUP_TIMEOUT,
        grade_timeout: float = DEFAULT_GRADE_TIMEOUT,
        stall_timeout: float = DEFAULT_STALL_TIMEOUT,
    ) -> None:
        """Create an environment.

        Args:
            name: the environment's name (in the manifest and image labels).
            version: its version string.
            layer: the hud image layer it needs: "base", "browser" or "desktop".
            concurrency: how many sessions may have a task in progress at once in one
                running container (parked sessions count); more starts are refused.
            setup_timeout: default seconds a template's setup may take (hud.template).
            grade_timeout: default seconds grading (or a reference solution) may take.
            stall_timeout: default seconds template code may block the event loop
                synchronously between two awaits (hud.serve.stall).

        Raises:
            ConfigError: an empty name, an unknown layer, a concurrency below 1, or a
                limit that is not a positive number of seconds.
        """
        if not name or not isinstance(name, str):
            raise ConfigError(f"Environment needs a non-empty name, got {name!r}")
        if layer not in LAYERS:
            raise ConfigError(f"unknown image layer {layer!r}; use one of {', '.join(LAYERS)}")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigError(f"concurrency must be an integer >= 1 (tasks in progress at "
                              f"once in one container), got {concurrency!r}")
        self.name = name
        self.version = version
        self.layer = layer
        self.concurrency = concurrency
        self.setup_timeout = check_limit("setup_timeout", setup_timeout)
        self.grade_timeout = check_limit("grade_timeout", grade_timeout)
        self.stall_timeout = check_limit("stall_timeout", stall_timeout)
        self.templates: dict[str, Template] = {}
        self.tasks: list[Task] = []
        self.capabilities: dict[str, Capability] = {}
        self.initialize_hooks: list[Callable[[], Any]] = []
        self.shutdown_hooks: list[Callable[[], Any]] = []
        _REGISTRY[name] = self

    def __repr__(self) -> str:
        return f"<Environment {self.name} {self.version}: {len(self.templates)} templates>"

    @overload
    def template(self, fn: TemplateFn, *, id: str | None = None,
                 description: str | None = None, setup_timeout: float | None = None,
                 grade_timeout: float | None = None,
                 stall_timeout: float | None = None) -> Template: ...

    @overload
    def template(self, fn: None = None, *, id: str | None = None,
                 description: str | None = None, setup_timeout: float | None = None,
                 grade_timeout: float | None = None,
                 stall_timeout: float | None = None) -> Callable[[TemplateFn], Template]: ...

    def template(
        self,
        fn: TemplateFn | None = None,
        *,
        id: str | None = None,
        description: str | None = None,
        setup_timeout: float | None = None,
        grade_timeout: float | None = None,
        stall_timeout: float | None = None,
    ) -> Template | Callable[[TemplateFn], Template]:
        """Register an async generator as a task template (`@env.template()`).

        `setup_timeout`, `grade_timeout` and `stall_timeout` (seconds) override the
        environment's limits for this template (see hud.template).

        Raises:
            TypeError: the decorated object is not an async generator function.
            ConfigError: a template with the same id exists already, or a limit is not a
                positive number of seconds.
        """

        def register(func: TemplateFn) -> Template:
            template_id = id or str(getattr(func, "__name__", ""))
            if template_id in self.templates:
                raise ConfigError(f"template id {template_id!r} is registered twice in {self.name!r}")
            template = Template(self, func, template_id, description,
                                setup_timeout=setup_timeout, grade_timeout=grade_timeout,
                                stall_timeout=stall_timeout)
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

    @overload
    def add_capability(self, capability: CapabilityT) -> CapabilityT: ...

    @overload
    def add_capability(self, capability: str, protocol: str | None = None, url: str | None = None,
                       params: dict[str, Any] | None = None) -> Capability: ...

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
            try:
                binding = Binding(name=capability, protocol=protocol, url=url,
                                  params=params or {})
            except Invalid as exc:
                raise ConfigError(f"add_capability({capability!r}): "
                                  f"{exc.problems[0][1]}") from None
            capability = StaticCapability(
                binding
            )
        if not Binding.NAME.fullmatch(capability.name):
            raise ConfigError(f"capability name {capability.name[:80]!r} is not allowed: use "
                              f"1-64 letters, digits, '_', '.' or '-', starting with a letter "
                              f"or digit (names reach the host's command lines)")
        if capability.name in self.capabilities:
            raise ConfigError(f"capability {capability.name!r} is registered twice")
        self.capabilities[capability.name] = capability
        return capability

    def workspace(self, root: str = "/workspace", *, user: str | None = "agent",
                  name: str = "shell", env: dict[str, str] | None = None) -> Workspace:
        """Give the agent a shell and files in `root` over ssh (`ssh/2`), as `user`.

        Returns the `hud.capabilities.ssh.Workspace`; template code uses its `run(cmd, user=...)`
        for setup and grading.

        Raises:
            ConfigError: the name is taken.
        """
        from hud.capabilities.ssh import Workspace

        return self.add_capability(Workspace(root, user=user, name=name, env=env))

    @property
    def tools(self) -> Tools:
        """The environment's MCP tool server (`mcp/2025-11-25`), created on first use."""
        from hud.capabilities.mcp import Tools

        existing = [c for c in self.capabilities.values() if isinstance(c, Tools)]
        if existing:
            return existing[0]
        return self.add_capability(Tools(server_name=self.name))

    def tool(self, name: str | None = None, *,
             description: str | None = None) -> Callable[[F], F]:
        """Decorator: offer a function to the agent as an MCP tool (`@env.tool()`).

        Its type hints become the input schema and its docstring the description.
        """
        return self.tools.tool(name, description=description)

    def browser(self, name: str = "browser", **options: Any) -> BrowserCapability:
        """Run Chromium for the agent (`cdp/1.3`, headless, as the agent user); needs the
        browser image layer (sets `layer="browser"` unless a desktop was asked for).
        Options go to `hud.capabilities.chromium.BrowserCapability` (user, width, height, max_tabs,
        fresh_profile, ...). Returns the capability, whose `open`/`evaluate`/`text`/
        `screenshot` helpers serve setup and grading.

        Raises:
            ConfigError: the name is taken.
        """
        from hud.capabilities.chromium import BrowserCapability

        if self.layer == "base":
            self.layer = "browser"
        return self.add_capability(BrowserCapability(name, **options))

    def desktop(self, name: str = "desktop", **options: Any) -> DesktopCapability:
        """Run a virtual display with a window manager and a VNC server (`rfb/3.8`) for
        the agent; needs the desktop image layer (sets `layer="desktop"`). Options go to
        `hud.capabilities.desktop.DesktopCapability` (user, width, height, window_manager, ...).

        Raises:
            ConfigError: the name is taken.
        """
        from hud.capabilities.desktop import DesktopCapability

        self.layer = "desktop"
        return self.add_capability(DesktopCapability(name, **options))

    def gym(self, env: Any, *, name: str = "robot", slots: int = 1, camera: int | None = None,
            max_steps: int | None = None, success: SuccessFn | None = None,
            **make_kwargs: Any) -> RobotCapability:
        """Serve a gymnasium environment (an id, an env object or a factory) as a `robot`
        capability (`openpi/0`); needs the `robot` extra. Returns the RobotCapability.

        Raises:
            ConfigError: the name is taken, or the `robot` extra is not installed.
        """
        RobotCapability = _robot_capability()
        return self.add_capability(RobotCapability.gym(
            env, name=name, slots=slots, camera=camera, max_steps=max_steps, success=success,
            **make_kwargs))

    def robot(self, sim: SimBridge | Callable[[], SimBridge], *, name: str = "robot",
              slots: int = 1, max_steps: int | None = None,
              slot_timeout: float = 30.0) -> RobotCapability:
        """Serve a custom simulator (a `hud.robot.SimBridge` or a factory of one) as a
        `robot` capability. Returns the RobotCapability.

        Raises:
            ConfigError: the name is taken, or the `robot` extra is not installed.
        """
        RobotCapability = _robot_capability()

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

    def resolve(self, name: str,
                args: dict[str, Any] | None = None) -> tuple[Template, dict[str, Any]]:
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
            env=EnvInfo(name=self.name, version=self.version, layer=self.layer,
                        concurrency=self.concurrency),
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
                    setup_timeout=t.limits.setup,
                    grade_timeout=t.limits.grade,
                )
                for t in self.templates.values()
            ],
        )


def _robot_capability() -> type[RobotCapability]:
    """The robot capability class, or a ConfigError saying which extra to install."""
    try:
        from hud.robot.server import RobotCapability
    except ImportError as exc:  # gymnasium, msgpack or numpy missing
        raise ConfigError(f"the robot capability needs the robot extra ({exc.name} is "
                          f"missing): pip install 'hud-python[robot]'") from exc
    return RobotCapability

"""The authoring API: templates, minting tasks, argument validation, the manifest."""

from __future__ import annotations

import sys

import pytest

from hud import Environment, Task
from hud.errors import ConfigError


def make_env() -> Environment:
    env = Environment(name="letters")

    @env.template()
    async def count_letter(word: str = "strawberry", letter: str = "r"):
        answer = yield f"count {letter} in {word}"
        yield 1.0 if answer == str(word.count(letter)) else 0.0

    @env.template(id="sum", description="Add numbers")
    async def add(a: int, b: int = 2):
        answer = yield f"{a}+{b}"
        yield float(answer == a + b)

    return env


def test_calling_a_template_mints_a_task_and_runs_nothing() -> None:
    """Calling a template returns a Task with env, id, args and slug."""
    env = make_env()
    task = env.templates["count_letter"](word="raspberry")
    assert isinstance(task, Task)
    assert (task.env, task.id, task.args) == ("letters", "count_letter", {"word": "raspberry"})
    assert task.slug.startswith("count_letter-") and len(task.slug) == len("count_letter-") + 8


def test_slug_is_the_id_when_no_argument_differs_from_its_default() -> None:
    """Default-valued args are dropped, so equal tasks get equal slugs."""
    template = make_env().templates["count_letter"]
    assert template().slug == "count_letter"
    assert template(word="strawberry").slug == "count_letter"
    assert template("raspberry").slug == template(word="raspberry").slug


def test_slug_is_stable_across_argument_order() -> None:
    """The hash is over canonical JSON, not call order."""
    template = make_env().templates["count_letter"]
    assert template(word="kiwi", letter="i").slug == template(letter="i", word="kiwi").slug


def test_args_are_coerced_when_minting() -> None:
    """A string "7" becomes 7 for an int parameter."""
    task = make_env().templates["sum"](a="7")
    assert task.args == {"a": 7}


def test_uncoercible_args_are_rejected_when_minting() -> None:
    """A value that cannot become an int is a ConfigError naming the argument."""
    with pytest.raises(ConfigError, match=r"bad args for task 'sum': a: .*valid integer.*'seven'"):
        make_env().templates["sum"](a="seven")


def test_unknown_keyword_is_a_type_error_at_mint_time() -> None:
    """An argument the signature lacks fails like a normal Python call."""
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        make_env().templates["count_letter"](colour="red")


def test_wire_args_with_unknown_names_are_rejected() -> None:
    """validate_args forbids extra keys (a typo must not pass silently)."""
    with pytest.raises(ConfigError, match="wrod: Extra inputs are not permitted"):
        make_env().templates["count_letter"].validate_args({"wrod": "kiwi"})


def test_missing_required_arg_is_rejected() -> None:
    """A required argument left out is named in the error."""
    with pytest.raises(ConfigError, match="a: Field required"):
        make_env().templates["sum"].validate_args({})


def test_decorating_a_coroutine_is_a_type_error() -> None:
    """Only async generators can be templates: the error says how to write one."""
    env = Environment(name="x")
    with pytest.raises(TypeError, match=r"async generator.*is a coroutine function"):

        @env.template()
        async def not_a_generator():
            return 1


def test_decorating_a_plain_function_is_a_type_error() -> None:
    """A sync function is rejected at decoration time."""
    env = Environment(name="x")
    with pytest.raises(TypeError, match="needs an async generator function"):
        env.template()(lambda: None)


def test_var_args_are_rejected() -> None:
    """*args cannot be validated or listed, so templates may not take them."""
    env = Environment(name="x")
    with pytest.raises(TypeError, match=r"\*rest is not allowed"):

        @env.template()
        async def t(*rest):
            yield "p"
            yield 1.0


def test_duplicate_template_ids_are_rejected() -> None:
    """Two templates with one id would make tasks ambiguous."""
    env = make_env()
    with pytest.raises(ConfigError, match="registered twice"):

        @env.template(id="sum")
        async def other():
            yield "p"
            yield 1.0


def test_manifest_lists_tasks_and_template_schemas() -> None:
    """Templates callable without args are listed; schemas come from the signature."""
    manifest = make_env().manifest()
    assert [t.slug for t in manifest.tasks] == ["count_letter"]
    schemas = {t.id: t.args_schema for t in manifest.templates}
    assert schemas["sum"]["required"] == ["a"]
    assert schemas["sum"]["properties"]["a"]["type"] == "integer"
    assert manifest.env.name == "letters" and manifest.env.layer == "base"


def test_explicit_tasks_replace_the_default_listing() -> None:
    """add_tasks decides exactly which tasks the manifest lists."""
    env = make_env()
    env.add_tasks([env.templates["sum"](a=1), env.templates["sum"](a=2)])
    assert [t.args for t in env.manifest().tasks] == [{"a": 1}, {"a": 2}]


def test_resolve_unknown_task_lists_known_ones() -> None:
    """An unknown name lists the tasks and templates that exist."""
    with pytest.raises(ConfigError, match=r"unknown task 'nope'; listed tasks: count_letter; "
                                          r"templates: count_letter, sum"):
        make_env().resolve("nope")


def test_add_capability_needs_protocol_and_url() -> None:
    """A static binding without a url is refused with an example."""
    with pytest.raises(ConfigError, match="needs protocol= and url="):
        Environment(name="x").add_capability("shell")


def test_unknown_layer_is_rejected() -> None:
    """The image layer must be one hud builds."""
    with pytest.raises(ConfigError, match="unknown image layer 'gpu'"):
        Environment(name="x", layer="gpu")


@pytest.mark.parametrize("name", ["shell$(touch x)", "a b", "-x", "", "x" * 65, "tab\tname"])
def test_a_capability_name_that_could_reach_a_shell_is_refused(name: str) -> None:
    """Capability names are held to a safe grammar at authoring time, with a clear error."""
    env = Environment(name="names")
    with pytest.raises(ConfigError, match="is not allowed"):
        env.add_capability(name, protocol="ssh/2", url="tcp://127.0.0.1:2222")


def test_capability_methods_declare_the_classes_they_return() -> None:
    """workspace(), browser(), desktop(), tools, gym() and robot() are annotated with the
    capability classes they return (not Any), so a type checker sees what template code gets."""
    import typing

    from hud.capabilities.chromium import BrowserCapability
    from hud.capabilities.desktop import DesktopCapability
    from hud.capabilities.mcp import Tools
    from hud.capabilities.ssh import Workspace
    from hud.robot.bridge import SimBridge, SuccessFn
    from hud.robot.server import RobotCapability

    names = {"BrowserCapability": BrowserCapability, "DesktopCapability": DesktopCapability,
             "Tools": Tools, "Workspace": Workspace, "RobotCapability": RobotCapability,
             "SimBridge": SimBridge, "SuccessFn": SuccessFn}
    expected = {Environment.workspace: Workspace, Environment.browser: BrowserCapability,
                Environment.desktop: DesktopCapability, Environment.gym: RobotCapability,
                Environment.robot: RobotCapability}
    assert isinstance(Environment.tools, property) and Environment.tools.fget is not None
    expected[Environment.tools.fget] = Tools
    for method, cls in expected.items():
        assert typing.get_type_hints(method, localns=names)["return"] is cls, method.__name__


def test_gym_without_the_robot_extra_says_which_extra_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """env.gym() where msgpack/numpy are missing: a ConfigError with the pip command."""
    for name in [m for m in sys.modules if m.startswith("hud.robot")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "msgpack", None)  # import msgpack -> ImportError
    env = Environment(name="no-robot")
    with pytest.raises(ConfigError, match=r"robot extra \(msgpack is missing\): "
                                          r"pip install 'hud-python\[robot\]'"):
        env.gym("Reacher-v5")

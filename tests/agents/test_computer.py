"""The computer tool over rfb and the browser tools over cdp, through real tunnels."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hud.agents.tools import Tool
from hud.agents.tools.computer import browser_tools, computer_tools
from hud.capabilities.chromium import LOOPBACK_ONLY, BrowserCapability
from hud.capabilities.desktop import DesktopCapability
from hud.environment import Environment, registered
from hud.eval.rollout import RunContext
from tests.guikit import need, run_context

PAGE = ("data:text/html,<title>t</title><p id=out>before</p>"
        "<button id=go onclick=\"out.textContent='after'\">Go</button>")


def _env(name: str, capability: object) -> Environment:
    env = Environment(name=name)

    @env.template()
    async def idle():
        yield "idle"
        yield 0.0

    env.add_capability(capability)  # type: ignore[arg-type]
    return env


@pytest.fixture
async def desktop_run(tmp_path: Path) -> AsyncIterator[RunContext]:
    need("Xvnc", "openbox", "xdotool", "xprop")
    env = _env("computer-tool-test", DesktopCapability(user=None, width=800, height=600))
    async with run_context(env, tmp_path) as run:
        yield run


@pytest.fixture
async def browser_run(tmp_path: Path) -> AsyncIterator[RunContext]:
    need("chromium")
    env = _env("browser-tool-test", BrowserCapability(user=None, args=LOOPBACK_ONLY))
    async with run_context(env, tmp_path) as run:
        yield run


def _desktop() -> DesktopCapability:
    env = registered("computer-tool-test")
    assert env is not None
    capability = env.capabilities["desktop"]
    assert isinstance(capability, DesktopCapability)
    return capability


def _by_name(tools: list[Tool]) -> dict[str, Tool]:
    return {tool.name: tool for tool in tools}


async def test_click_outside_the_screen_is_an_error_result(desktop_run: RunContext) -> None:
    """A click at (5000, 5) answers is_error with the screenshot size, and nothing crashes."""
    (computer,) = await computer_tools(desktop_run)
    result = await computer.run({"action": "click", "x": 5000, "y": 5})
    assert result.is_error and "outside the 800x600 screenshot" in result.text


async def test_unknown_action_is_an_error_result(desktop_run: RunContext) -> None:
    """An action the tool does not know answers is_error listing the actions."""
    (computer,) = await computer_tools(desktop_run)
    result = await computer.run({"action": "teleport"})
    assert result.is_error and "screenshot, click" in result.text


async def test_screenshot_is_saved_beside_the_trace(desktop_run: RunContext) -> None:
    """A screenshot is a PNG in the result and a file next to the JSONL, recorded in the trace."""
    (computer,) = await computer_tools(desktop_run)
    result = await computer.run({"action": "screenshot"})
    trace = desktop_run.trace.path
    saved = trace.parent / f"{trace.stem}-0001.png"
    assert result.images[0].startswith(b"\x89PNG") and saved.read_bytes() == result.images[0]
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    assert {"type": "screenshot", "file": saved.name}.items() <= events[-1].items()


async def test_scaled_coordinates_map_back_to_the_screen(desktop_run: RunContext) -> None:
    """With fit=(400, 300) on an 800x600 screen, a move to (100, 50) lands at (200, 100)."""
    pytest.importorskip("PIL")
    (computer,) = await computer_tools(desktop_run, fit=(400, 300))
    result = await computer.run({"action": "move", "x": 100, "y": 50})
    assert "screenshot 400x300" in result.text
    # the capability runs in this process: ask X itself where the pointer is
    assert "x:200 y:100" in await _desktop().xdotool("getmouselocation")


async def test_computer_reconnects_after_a_display_restart(desktop_run: RunContext) -> None:
    """After the display restarts (task end), the next action reconnects and works."""
    (computer,) = await computer_tools(desktop_run)
    assert not (await computer.run({"action": "screenshot"})).is_error
    await _desktop().task_ended()
    assert not (await computer.run({"action": "screenshot"})).is_error


async def test_browser_tools_click_and_read(browser_run: RunContext) -> None:
    """navigate, click by selector, read: the page changed."""
    tools = _by_name(await browser_tools(browser_run))
    assert not (await tools["browser_navigate"].run({"url": PAGE})).is_error
    clicked = await tools["browser_click"].run({"selector": "#go"})
    assert clicked.images and clicked.images[0].startswith(b"\x89PNG")
    assert (await tools["browser_read"].run({"selector": "#out"})).text == "after"


async def test_browser_click_on_missing_element_is_an_error_result(browser_run: RunContext) -> None:
    """A selector matching nothing answers is_error naming it."""
    tools = _by_name(await browser_tools(browser_run))
    result = await tools["browser_click"].run({"selector": "#nope"})
    assert result.is_error and "no element matches '#nope'" in result.text


async def test_browser_type_then_enter_submits(browser_run: RunContext) -> None:
    """Typing into a field with a trailing newline submits its form."""
    tools = _by_name(await browser_tools(browser_run))
    form = ("data:text/html,<form onsubmit=\"event.preventDefault();"
            "out.textContent=q.value\"><input id=q></form><p id=out></p>")
    await tools["browser_navigate"].run({"url": form})
    await tools["browser_type"].run({"selector": "#q", "text": "hello\n"})
    assert (await tools["browser_read"].run({"selector": "#out"})).text == "hello"

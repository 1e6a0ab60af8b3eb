"""Gemini's computer-use tool: declared, 0-999 grid calls turned into hud computer actions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hud.agents.gemini import GeminiAgent
from hud.agents.gemini_computer import to_steps
from hud.agents.tools import Tool, ToolResult
from tests.agents.providers import FakeAPI, Gemini, serve
from tests.agents.test_providers import rollout


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    yield from serve()


def test_grid_coordinates_map_to_the_display() -> None:
    """x/y on Gemini's 0-999 grid are scaled to screen pixels."""
    assert to_steps("click_at", {"x": 500, "y": 250}, (1000, 800)) == [
        {"action": "click", "button": "left", "x": 500, "y": 200}]


def test_type_text_at_is_click_clear_type_enter() -> None:
    """type_text_at becomes a click, select-all + delete, the text, and Enter."""
    steps = to_steps("type_text_at", {"x": 0, "y": 0, "text": "hi", "press_enter": True}, (100, 100))
    assert [s["action"] for s in steps] == ["click", "key", "key", "type", "key"]
    assert steps[-2]["text"] == "hi" and steps[-1]["keys"] == "Return"


def test_browser_only_functions_have_no_steps() -> None:
    """navigate has no desktop equivalent."""
    assert to_steps("navigate", {"url": "http://x"}, (100, 100)) == []


async def test_computer_use_model_gets_the_native_tool(api: FakeAPI) -> None:
    """Declared as computer_use; click_at runs our computer tool; the reply keeps its name."""
    seen: list[dict[str, Any]] = []

    async def act(args: dict[str, Any]) -> ToolResult:
        seen.append(args)
        return ToolResult("clicked")

    computer = Tool(name="computer", description="a desktop", parameters={"type": "object"},
                    run=act, meta={"display": (1000, 500)})
    wire = Gemini("gemini")
    api.script = [(200, wire.tool_call("c1", "click_at", {"x": 100, "y": 500})),
                  (200, wire.tool_call("c2", "navigate", {"url": "http://example.invalid"})),
                  (200, wire.answer("5"))]
    agent = GeminiAgent("gemini-computer-use-test", api_key="g-test",
                        base_url=f"http://127.0.0.1:{api.port}", tools=[computer])
    run = await rollout(agent)
    assert run.reward == 1.0, run.error
    assert "computerUse" in api.requests[0]["tools"][0]
    assert seen == [{"action": "click", "button": "left", "x": 100, "y": 250}]
    first = api.requests[1]["contents"][-1]["parts"][0]["functionResponse"]
    assert first["name"] == "click_at" and first["response"] == {"output": "clicked"}
    second = api.requests[2]["contents"][-1]["parts"][0]["functionResponse"]
    assert second["name"] == "navigate" and "not available" in second["response"]["error"]

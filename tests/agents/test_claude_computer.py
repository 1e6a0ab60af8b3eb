"""Claude's native computer-use tool: declared with the display size, actions translated."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hud.agents.claude_computer import to_hud
from hud.agents.tools import Tool, ToolResult
from tests.agents.providers import Anthropic, FakeAPI, serve
from tests.agents.test_providers import rollout


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    yield from serve()


@pytest.mark.parametrize(
    ("claude", "hud"),
    [
        ({"action": "left_click", "coordinate": [10, 20]},
         {"action": "click", "button": "left", "x": 10, "y": 20}),
        ({"action": "right_click", "coordinate": [1, 2]},
         {"action": "click", "button": "right", "x": 1, "y": 2}),
        ({"action": "double_click", "coordinate": [3, 4]},
         {"action": "double_click", "button": "left", "x": 3, "y": 4}),
        ({"action": "mouse_move", "coordinate": [5, 6]}, {"action": "move", "x": 5, "y": 6}),
        ({"action": "left_click_drag", "start_coordinate": [1, 1], "coordinate": [9, 9]},
         {"action": "drag", "path": [[1, 1], [9, 9]]}),
        ({"action": "type", "text": "hi"}, {"action": "type", "text": "hi"}),
        ({"action": "key", "text": "ctrl+s"}, {"action": "key", "keys": "ctrl+s"}),
        ({"action": "scroll", "coordinate": [7, 8], "scroll_direction": "up", "scroll_amount": 2},
         {"action": "scroll", "dx": 0, "dy": -2, "x": 7, "y": 8}),
        ({"action": "wait", "duration": 2}, {"action": "wait", "seconds": 2}),
        ({"action": "screenshot"}, {"action": "screenshot"}),
        ({"action": "zoom"}, {"action": "zoom"}),
    ],
)
def test_actions_translate(claude: dict[str, Any], hud: dict[str, Any]) -> None:
    """Each Claude computer action becomes the matching hud computer action."""
    assert to_hud(claude) == hud


async def test_claude_gets_its_computer_tool_and_calls_reach_ours(api: FakeAPI) -> None:
    """Declared as computer_20250124 with the display size; a left_click arrives translated."""
    seen: list[dict[str, Any]] = []

    async def act(args: dict[str, Any]) -> ToolResult:
        seen.append(args)
        return ToolResult("clicked")

    computer = Tool(name="computer", description="a desktop", parameters={"type": "object"},
                    run=act, meta={"display": (1024, 768)})
    wire = Anthropic("anthropic")
    api.script = [(200, wire.tool_call("c1", "computer", {"action": "left_click", "coordinate": [100, 50]})),
                  (200, wire.answer("5"))]
    await rollout(wire.agent(api, tools=[computer]))
    declared = api.requests[0]["tools"]
    assert declared == [{"type": "computer_20250124", "name": "computer",
                         "display_width_px": 1024, "display_height_px": 768}]
    assert seen == [{"action": "click", "button": "left", "x": 100, "y": 50}]
    assert wire.tool_results(api.requests[1])[0]["text"] == "clicked"

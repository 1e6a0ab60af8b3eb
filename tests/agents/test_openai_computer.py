"""OpenAI's native computer tool on the Responses API: declared, translated, answered."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hud.agents.openai_computer import to_hud
from hud.agents.openai_responses import OpenAIResponsesAgent
from hud.agents.tools import Tool, ToolResult
from hud.clients.rfb import encode_png
from tests.agents.providers import FakeAPI, Responses, serve
from tests.agents.test_providers import rollout


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    yield from serve()


@pytest.mark.parametrize(
    ("openai", "hud"),
    [
        ({"type": "click", "button": "left", "x": 1, "y": 2},
         {"action": "click", "button": "left", "x": 1, "y": 2}),
        ({"type": "double_click", "x": 3, "y": 4}, {"action": "double_click", "x": 3, "y": 4}),
        ({"type": "drag", "path": [{"x": 1, "y": 1}, {"x": 5, "y": 5}]},
         {"action": "drag", "path": [[1, 1], [5, 5]]}),
        ({"type": "keypress", "keys": ["CTRL", "s"]}, {"action": "key", "keys": "ctrl+s"}),
        ({"type": "keypress", "keys": ["ENTER"]}, {"action": "key", "keys": "Return"}),
        ({"type": "scroll", "x": 10, "y": 10, "scroll_x": 0, "scroll_y": 300},
         {"action": "scroll", "dx": 0, "dy": 3, "x": 10, "y": 10}),
        ({"type": "type", "text": "hi"}, {"action": "type", "text": "hi"}),
        ({"type": "screenshot"}, {"action": "screenshot"}),
    ],
)
def test_actions_translate(openai: dict[str, Any], hud: dict[str, Any]) -> None:
    """Each OpenAI computer action becomes the matching hud computer action."""
    assert to_hud(openai) == hud


async def test_computer_use_model_gets_the_native_tool(api: FakeAPI) -> None:
    """Declared as computer_use_preview; a computer_call runs our tool and is answered
    with a computer_call_output screenshot, safety checks acknowledged."""
    seen: list[dict[str, Any]] = []
    png = encode_png(2, 2, b"\xff" * 12)

    async def act(args: dict[str, Any]) -> ToolResult:
        seen.append(args)
        return ToolResult("done", images=[png])

    computer = Tool(name="computer", description="a desktop", parameters={"type": "object"},
                    run=act, meta={"display": (1024, 768)})
    wire = Responses("responses")
    check = {"id": "sc_1", "code": "malicious_instructions", "message": "careful"}
    api.script = [
        (200, wire._response([{"type": "computer_call", "id": "cu_1", "call_id": "call_1",
                               "action": {"type": "click", "button": "left", "x": 100, "y": 50},
                               "pending_safety_checks": [check], "status": "completed"}])),
        (200, wire.answer("5")),
    ]
    agent = OpenAIResponsesAgent("computer-use-preview", api_key="sk-test",
                                 base_url=f"http://127.0.0.1:{api.port}/v1", tools=[computer])
    run = await rollout(agent)
    assert run.reward == 1.0, run.error
    assert api.requests[0]["tools"] == [{"type": "computer_use_preview", "display_width": 1024,
                                         "display_height": 768, "environment": "linux"}]
    assert seen == [{"action": "click", "button": "left", "x": 100, "y": 50}]
    output = next(i for i in api.requests[1]["input"] if i.get("type") == "computer_call_output")
    assert output["call_id"] == "call_1" and output["acknowledged_safety_checks"] == [check]
    assert output["output"]["image_url"].startswith("data:image/png;base64,")


def test_other_models_get_a_function_tool() -> None:
    """gpt-* models without computer use see the plain `computer` function tool."""
    from hud.agents.openai_computer import wants_native

    assert not wants_native("gpt-5") and wants_native("computer-use-preview")

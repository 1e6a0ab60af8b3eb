"""Gemini's computer-use tool, mapped onto hud's `computer` tool.

Gemini's computer-use models are trained on predefined functions — `click_at`,
`hover_at`, `type_text_at`, `key_combination`, `scroll_at`, `scroll_document`,
`drag_and_drop`, `wait_5_seconds` — with coordinates on a 0–999 grid. The harness
declares `Tool(computer_use=...)`, and each call becomes a short sequence of hud
`computer` actions (e.g. `type_text_at` = click, optionally select-all + delete, type,
optionally Enter), run in order by a synthetic tool; the reply goes back under the
function's own name. Browser-only functions (navigate, go_back, search, ...) have no
desktop equivalent and come back as errors the model can work around.
"""

from __future__ import annotations

from typing import Any

from hud.agents.tools import Tool, ToolResult

GRID = 1000
SEQUENCE_TOOL = "gemini_computer"
FUNCTIONS = ("click_at", "hover_at", "type_text_at", "key_combination", "scroll_at",
             "scroll_document", "drag_and_drop", "wait_5_seconds", "open_web_browser",
             "navigate", "go_back", "go_forward", "search")
_DIRECTIONS = {"down": (0, 1), "up": (0, -1), "right": (1, 0), "left": (-1, 0)}


def wants_native(model: str) -> bool:
    return "computer-use" in model


def _point(args: dict[str, Any], display: tuple[int, int], x: str = "x", y: str = "y") -> dict[str, int]:
    return {"x": round(float(args.get(x, 0)) * display[0] / GRID),
            "y": round(float(args.get(y, 0)) * display[1] / GRID)}


def to_steps(name: str, args: dict[str, Any], display: tuple[int, int]) -> list[dict[str, Any]]:
    """One Gemini computer-use call → hud `computer` actions (empty: not supported here)."""
    if name == "click_at":
        return [{"action": "click", "button": "left", **_point(args, display)}]
    if name == "hover_at":
        return [{"action": "move", **_point(args, display)}]
    if name == "type_text_at":
        steps: list[dict[str, Any]] = [{"action": "click", "button": "left", **_point(args, display)}]
        if args.get("clear_before_typing", True):
            steps += [{"action": "key", "keys": "ctrl+a"}, {"action": "key", "keys": "Delete"}]
        steps.append({"action": "type", "text": str(args.get("text", ""))})
        if args.get("press_enter", False):
            steps.append({"action": "key", "keys": "Return"})
        return steps
    if name == "key_combination":
        return [{"action": "key", "keys": str(args.get("keys", ""))}]
    if name in ("scroll_at", "scroll_document"):
        sx, sy = _DIRECTIONS.get(str(args.get("direction", "down")), (0, 1))
        clicks = max(1, round(float(args.get("magnitude", 800)) / 200))
        where = _point(args, display) if name == "scroll_at" else {
            "x": display[0] // 2, "y": display[1] // 2}
        return [{"action": "scroll", "dx": sx * clicks, "dy": sy * clicks, **where}]
    if name == "drag_and_drop":
        start = _point(args, display)
        end = _point(args, display, "destination_x", "destination_y")
        return [{"action": "drag", "path": [[start["x"], start["y"]], [end["x"], end["y"]]]}]
    if name == "wait_5_seconds":
        return [{"action": "wait", "seconds": 5}]
    return []


def sequence_tool(computer: Tool) -> Tool:
    """A tool that runs a list of `computer` actions in order; the last screenshot wins."""

    async def run(args: dict[str, Any]) -> ToolResult:
        steps = args.get("steps") or []
        if not steps:
            return ToolResult(f"{args.get('function')!r} is not available on this desktop "
                              f"(no browser navigation here); use clicks, typing and keys",
                              is_error=True)
        result = ToolResult("")
        for step in steps:
            result = await computer.run(step)
            if result.is_error:
                return result
        return result

    return Tool(name=SEQUENCE_TOOL, description="Gemini computer-use actions",
                parameters={"type": "object"}, run=run, timeout=computer.timeout * 2)

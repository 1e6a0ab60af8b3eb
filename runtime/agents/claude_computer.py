"""Claude's own computer-use tool, mapped onto hud's provider-neutral `computer` tool.

Claude is trained on Anthropic's computer tool (`computer_20250124`): it sends actions such
as `left_click` with `coordinate: [x, y]`, `left_click_drag` with `start_coordinate`,
`scroll` with `scroll_direction`/`scroll_amount`, `key` with `text: "ctrl+s"`. The Claude
harness declares that tool (with the display size the `computer` tool reports) and this
module translates each call into hud's `computer` arguments. Anything unknown passes
through, so the tool answers with an error the model can correct.
"""

from __future__ import annotations

from typing import Any

COMPUTER_TOOL_TYPE = "computer_20250124"

_CLICKS = {
    "left_click": ("click", "left"),
    "right_click": ("click", "right"),
    "middle_click": ("click", "middle"),
    "double_click": ("double_click", "left"),
    "triple_click": ("triple_click", "left"),
}
_SCROLL = {"down": (0, 1), "up": (0, -1), "right": (1, 0), "left": (-1, 0)}


def declaration(display: tuple[int, int]) -> dict[str, Any]:
    """The tool entry Claude's Messages API expects for computer use."""
    return {"type": COMPUTER_TOOL_TYPE, "name": "computer",
            "display_width_px": display[0], "display_height_px": display[1]}


def _xy(value: Any) -> dict[str, Any]:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return {"x": value[0], "y": value[1]}
    return {}


def to_hud(args: dict[str, Any]) -> dict[str, Any]:
    """Claude's computer-tool input → hud's `computer` tool arguments."""
    action = args.get("action")
    if action in _CLICKS:
        name, button = _CLICKS[action]
        return {"action": name, "button": button, **_xy(args.get("coordinate"))}
    if action == "mouse_move":
        return {"action": "move", **_xy(args.get("coordinate"))}
    if action == "left_click_drag":
        return {"action": "drag", "path": [list(args.get("start_coordinate") or []),
                                           list(args.get("coordinate") or [])]}
    if action == "type":
        return {"action": "type", "text": args.get("text", "")}
    if action == "key":
        return {"action": "key", "keys": args.get("text", "")}
    if action == "scroll":
        sx, sy = _SCROLL.get(str(args.get("scroll_direction")), (0, 0))
        amount = int(args.get("scroll_amount", 3))
        return {"action": "scroll", "dx": sx * amount, "dy": sy * amount,
                **_xy(args.get("coordinate"))}
    if action == "wait":
        return {"action": "wait", "seconds": args.get("duration", 1)}
    if action == "screenshot":
        return {"action": "screenshot"}
    return dict(args)

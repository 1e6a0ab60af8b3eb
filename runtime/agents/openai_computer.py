"""OpenAI's computer-use tool on the Responses API, mapped onto hud's `computer` tool.

OpenAI's computer-use models (`computer-use-preview`, ...) are trained on the
`computer_use_preview` tool: the response carries `computer_call` items whose `action` is
`click {button, x, y}`, `double_click`, `drag {path: [{x, y}, ...]}`, `keypress {keys}`,
`move`, `scroll {x, y, scroll_x, scroll_y}` (pixels), `type {text}`, `wait` or
`screenshot`; the harness answers each with a `computer_call_output` holding a
screenshot. This module declares the tool and translates the actions.
"""

from __future__ import annotations

from typing import Any

TOOL_TYPE = "computer_use_preview"
#: scroll distance in pixels per wheel click (hud's computer tool scrolls in clicks)
PIXELS_PER_CLICK = 100
_KEYS = {"ENTER": "Return", "RETURN": "Return", "ESC": "Escape", "ESCAPE": "Escape",
         "SPACE": "space", "BACKSPACE": "BackSpace", "TAB": "Tab", "DELETE": "Delete",
         "ARROWUP": "Up", "ARROWDOWN": "Down", "ARROWLEFT": "Left", "ARROWRIGHT": "Right",
         "UP": "Up", "DOWN": "Down", "LEFT": "Left", "RIGHT": "Right", "HOME": "Home",
         "END": "End", "PAGEUP": "Page_Up", "PAGEDOWN": "Page_Down", "CMD": "super",
         "META": "super", "CTRL": "ctrl", "CONTROL": "ctrl", "ALT": "alt", "SHIFT": "shift"}


def wants_native(model: str) -> bool:
    """Only OpenAI's computer-use models take the native tool."""
    return "computer-use" in model


def declaration(display: tuple[int, int]) -> dict[str, Any]:
    return {"type": TOOL_TYPE, "display_width": display[0], "display_height": display[1],
            "environment": "linux"}


def _clicks(pixels: Any) -> int:
    value = int(pixels or 0)
    if value == 0:
        return 0
    return (1 if value > 0 else -1) * max(1, round(abs(value) / PIXELS_PER_CLICK))


def to_hud(action: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI computer action → hud's `computer` tool arguments."""
    kind = action.get("type")
    xy: dict[str, Any] = {k: action[k] for k in ("x", "y") if k in action}
    if kind == "click":
        button = action.get("button", "left")
        return {"action": "click", "button": button if button in ("left", "right", "middle")
                else "left", **xy}
    if kind == "double_click":
        return {"action": "double_click", **xy}
    if kind == "move":
        return {"action": "move", **xy}
    if kind == "drag":
        return {"action": "drag", "path": [[p.get("x"), p.get("y")] for p in action.get("path", [])]}
    if kind == "keypress":
        keys = [_KEYS.get(str(k).upper(), str(k).lower() if len(str(k)) > 1 else str(k))
                for k in action.get("keys", [])]
        return {"action": "key", "keys": "+".join(keys)}
    if kind == "type":
        return {"action": "type", "text": action.get("text", "")}
    if kind == "scroll":
        return {"action": "scroll", "dx": _clicks(action.get("scroll_x")),
                "dy": _clicks(action.get("scroll_y")), **xy}
    if kind == "wait":
        return {"action": "wait", "seconds": 1}
    if kind == "screenshot":
        return {"action": "screenshot"}
    return {"action": str(kind)}

"""One browser tab over CDP: navigate, evaluate, read text, click, type, screenshot.

What template code (setup and grading) and the browser tools use; Playwright stays a
test-only client. Input goes through `Input.*` events, like a user's, not DOM calls: a
click lands on whatever is drawn at that point, so a covered button is not clicked.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from typing import Any

from hud.clients.devtools import TIMEOUT, CDPError, CDPTimeout, Connection
from hud.errors import ConfigError

# key name -> (key, code, windowsVirtualKeyCode, text) for Input.dispatchKeyEvent
KEYS: dict[str, tuple[str, str, int, str]] = {
    "enter": ("Enter", "Enter", 13, "\r"), "tab": ("Tab", "Tab", 9, ""),
    "escape": ("Escape", "Escape", 27, ""), "backspace": ("Backspace", "Backspace", 8, ""),
    "delete": ("Delete", "Delete", 46, ""), "arrowleft": ("ArrowLeft", "ArrowLeft", 37, ""),
    "arrowup": ("ArrowUp", "ArrowUp", 38, ""), "arrowright": ("ArrowRight", "ArrowRight", 39, ""),
    "arrowdown": ("ArrowDown", "ArrowDown", 40, ""), "home": ("Home", "Home", 36, ""),
    "end": ("End", "End", 35, ""), "pageup": ("PageUp", "PageUp", 33, ""),
    "pagedown": ("PageDown", "PageDown", 34, ""), "space": (" ", "Space", 32, " "),
}
_CENTER_JS = """(sel) => { const el = document.querySelector(sel);
  if (!el) return null; el.scrollIntoView({block: 'center', inline: 'center'});
  const r = el.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }"""


class Page:
    """A tab attached as a flattened session on a DevTools connection (`CDP.page()`)."""

    def __init__(self, cdp: Connection, target_id: str, session: str) -> None:
        self.cdp, self.target_id, self.session = cdp, target_id, session

    async def send(self, method: str, params: dict[str, Any] | None = None,
                   timeout: float = TIMEOUT) -> dict[str, Any]:
        """A command in this tab's session (see `CDP.send`)."""
        return await self.cdp.send(method, params, session=self.session, timeout=timeout)

    async def navigate(self, url: str, timeout: float = TIMEOUT) -> None:
        """Go to `url` and wait for its load event.

        Raises:
            CDPError: the navigation failed (e.g. net::ERR_CONNECTION_REFUSED).
            CDPTimeout: the page did not load within `timeout` (loading is stopped).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        loaded = self.cdp.expect("Page.loadEventFired", self.session)
        try:
            result = await self.send("Page.navigate", {"url": url}, timeout=timeout)
            if result.get("errorText"):
                raise CDPError(f"navigating to {url} failed: {result['errorText']}")
            if not result.get("loaderId"):
                return  # same-document navigation (#hash): there is no load event
            await asyncio.wait_for(loaded, max(deadline - loop.time(), 0.001))
        except (CDPTimeout, TimeoutError):
            with contextlib.suppress(CDPError):
                await self.send("Page.stopLoading", timeout=5)
            raise CDPTimeout(f"{url} did not finish loading within {timeout:g}s (the server "
                             f"did not answer, or a resource hangs); loading was stopped") from None
        finally:
            loaded.cancel()

    async def evaluate(self, expression: str, timeout: float = TIMEOUT) -> Any:
        """Evaluate JavaScript in the page (promises awaited) and return its JSON value.

        Raises:
            CDPError: the script threw.
            CDPTimeout: it did not finish within `timeout`.
        """
        result = await self.send("Runtime.evaluate", {
            "expression": expression, "returnByValue": True, "awaitPromise": True,
            "userGesture": True}, timeout=timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise CDPError(f"the page script threw: {text}")
        return result.get("result", {}).get("value")

    async def call(self, function: str, *args: Any, timeout: float = TIMEOUT) -> Any:
        """Call a JS function expression with JSON arguments: `call("(a) => a + 1", 1)`.

        Raises:
            CDPError: the function threw.
        """
        params = ", ".join(json.dumps(a) for a in args)
        return await self.evaluate(f"({function})({params})", timeout)

    async def url(self) -> str:
        """The current URL."""
        return str(await self.evaluate("location.href"))

    async def text(self, selector: str = "body", timeout: float = TIMEOUT) -> str:
        """The rendered text (`innerText`) of the first element matching `selector`.

        Raises:
            CDPError: no element matches.
        """
        found = await self.call("(s) => { const el = document.querySelector(s); "
                                "return el ? el.innerText : null; }", selector, timeout=timeout)
        if found is None:
            raise CDPError(f"no element matches {selector!r}")
        return str(found)

    async def viewport(self) -> tuple[int, int]:
        """The layout viewport's (width, height) in CSS pixels."""
        size = await self.evaluate("[window.innerWidth, window.innerHeight]")
        return int(size[0]), int(size[1])

    async def click(self, selector: str | None = None, *, x: float | None = None,
                    y: float | None = None, button: str = "left", count: int = 1) -> None:
        """Click the centre of `selector`'s element (scrolled into view), or at (x, y).

        Raises:
            ConfigError: neither or both of selector and (x, y); a point off the viewport.
            CDPError: no element matches `selector`.
        """
        if selector is not None and (x is None or y is None):
            center = await self.call(_CENTER_JS, selector)
            if center is None:
                raise CDPError(f"no element matches {selector!r}")
            x, y = center
        elif selector is None and x is not None and y is not None:
            width, height = await self.viewport()
            if not (0 <= x < width and 0 <= y < height):
                raise ConfigError(f"({x}, {y}) is outside the {width}x{height} viewport")
        else:
            raise ConfigError("click needs either a selector or both x and y")
        base = {"x": x, "y": y, "button": button}
        await self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        for n in range(1, count + 1):
            for kind in ("mousePressed", "mouseReleased"):
                await self.send("Input.dispatchMouseEvent", {**base, "type": kind, "clickCount": n})

    async def type(self, text: str, selector: str | None = None) -> None:
        """Type `text` into `selector`'s element (focused first) or the focused one;
        a newline presses Enter.

        Raises:
            CDPError: no element matches `selector`.
        """
        if selector is not None:
            ok = await self.call("(s) => { const el = document.querySelector(s); "
                                 "if (!el) return false; el.focus(); return true; }", selector)
            if not ok:
                raise CDPError(f"no element matches {selector!r}")
        for i, line in enumerate(text.split("\n")):
            if i:
                await self.press("Enter")
            if line:
                await self.send("Input.insertText", {"text": line})

    async def press(self, key: str) -> None:
        """Press and release a named key (Enter, Tab, Escape, ArrowDown, ...).

        Raises:
            ConfigError: the key is not known.
        """
        spec = KEYS.get(key.lower().replace("_", ""))
        if spec is None:
            names = ", ".join(name for name, *_ in KEYS.values())
            raise ConfigError(f"unknown key {key!r}; use one of {names}")
        name, code, vk, text = spec
        down = {"type": "keyDown", "key": name, "code": code, "windowsVirtualKeyCode": vk}
        if text:
            down["text"] = text
        await self.send("Input.dispatchKeyEvent", down)
        await self.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": name, "code": code,
                                                   "windowsVirtualKeyCode": vk})

    async def screenshot(self, timeout: float = TIMEOUT) -> bytes:
        """The visible viewport as PNG bytes.

        Raises:
            CDPTimeout: the renderer did not produce a frame within `timeout`.
        """
        shot = await self.send("Page.captureScreenshot", {"format": "png"}, timeout=timeout)
        return base64.b64decode(shot["data"])

    async def close(self) -> None:
        """Close the tab."""
        await self.cdp.send("Target.closeTarget", {"targetId": self.target_id})

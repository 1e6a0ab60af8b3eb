"""Computer-use and browser tools for agents, over the `rfb` and `cdp` capabilities.

    tools = await computer_tools(run)      # one `computer` tool (desktop over VNC)
    tools = await browser_tools(run)       # browser_* tools (Chromium over CDP)

Both connect lazily through `run.tunnel(name)`, so they work in every placement. The
computer tool speaks in screenshot coordinates: with `fit=(w, h)` screenshots are scaled
down to fit (models do better on ~1280x800 or less) and every coordinate is mapped back
to the screen. Bad input from the model (a click off the screen, an unknown key) is an
error result the model can correct; a dead connection is retried once, then raised as
`InfraError` so the rollout ends as an infrastructure failure, not a wrong answer.

Every screenshot is written as a PNG beside the trace's JSON Lines file
(`<trace_id>-0001.png`, ...) and recorded with a `screenshot` event; each action is
recorded as a `computer_action` / `browser_action` event.

Provider harnesses translate these to their own wire formats (Anthropic computer use,
OpenAI computer tool, Gemini computer use); `Computer` offers the same actions as
methods for harnesses that call them directly.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from hud.agents.tools import Tool, ToolResult, truncate
from hud.errors import ConfigError, InfraError

if TYPE_CHECKING:  # the clients load when a tool first connects
    from hud.agents.context import RunContext
    from hud.clients.cdp import CDP
    from hud.clients.page import Page
    from hud.clients.rfb import Frame, RFBClient

ACTIONS = ("screenshot", "click", "double_click", "triple_click", "move", "drag", "scroll",
           "type", "key", "wait")
MAX_WAIT = 30.0
#: after an action the UI needs a moment to repaint; there is no readiness signal for that
SETTLE = 0.2

COMPUTER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": list(ACTIONS)},
        "x": {"type": "integer", "description": "x in screenshot pixels"},
        "y": {"type": "integer", "description": "y in screenshot pixels"},
        "button": {"type": "string", "enum": ["left", "middle", "right"], "default": "left"},
        "path": {"type": "array", "items": {"type": "array", "items": {"type": "integer"},
                                            "minItems": 2, "maxItems": 2},
                 "description": "drag: [[x, y], ...] from press to release"},
        "dx": {"type": "integer", "description": "scroll: wheel clicks right (+) / left (-)"},
        "dy": {"type": "integer", "description": "scroll: wheel clicks down (+) / up (-)"},
        "text": {"type": "string", "description": "type: the text"},
        "keys": {"type": "string", "description": "key: a chord like ctrl+s, Return, alt+F4"},
        "seconds": {"type": "number", "description": f"wait: up to {MAX_WAIT:g}"},
    },
    "required": ["action"],
    "additionalProperties": False,
}


class Shots:
    """Writes a rollout's screenshots beside its trace and records them."""

    def __init__(self, run: RunContext) -> None:
        self.run = run
        self.count = 0

    def save(self, png: bytes, source: str) -> str:
        self.count += 1
        trace_path = self.run.trace.path
        path = trace_path.parent / f"{trace_path.stem}-{self.count:04d}.png"
        path.write_bytes(png)
        self.run.record("screenshot", file=path.name, source=source, bytes=len(png))
        return path.name


def fitted_size(width: int, height: int, fit: tuple[int, int] | None) -> tuple[int, int]:
    """The screenshot size for a `width`x`height` screen scaled down to fit `fit` (for
    harnesses that declare the display size up front, from the binding's params)."""
    if fit is None:
        return width, height
    ratio = min(fit[0] / width, fit[1] / height, 1.0)
    return max(1, round(width * ratio)), max(1, round(height * ratio))


def _scaled_png(frame: Frame, size: tuple[int, int]) -> bytes:
    from PIL import Image

    image = Image.frombytes("RGB", (frame.width, frame.height), frame.rgb)
    out = io.BytesIO()
    image.resize(size, Image.Resampling.LANCZOS).save(out, format="PNG")
    return out.getvalue()


class Computer:
    """A desktop seen through one RFB connection, in screenshot coordinates."""

    def __init__(self, run: RunContext, name: str, fit: tuple[int, int] | None = None,
                 settle: float = SETTLE) -> None:
        if fit is not None:
            try:
                import PIL  # noqa: F401 - only: is Pillow installed?
            except ImportError:
                raise ConfigError("scaled screenshots need Pillow: pip install "
                                  "'hud-python[desktop]' (or pass fit=None)") from None
        self.run, self.name, self.fit, self.settle = run, name, fit, settle
        self.shots = Shots(run)
        self._client: RFBClient | None = None

    async def client(self) -> RFBClient:
        """The RFB connection, opened on first use."""
        from hud.clients.rfb import RFBClient

        if self._client is None:
            reader, writer = await self.run.tunnel(self.name)
            self._client = await RFBClient.connect(reader, writer)
        return self._client

    def _connected(self) -> RFBClient:
        if self._client is None:
            raise InfraError(f"the desktop {self.name!r} is not connected: call client() first")
        return self._client

    def size(self) -> tuple[int, int]:
        """The screenshot size the model sees (once connected).

        Raises:
            InfraError: not connected yet.
        """
        client = self._connected()
        return fitted_size(client.width, client.height, self.fit)

    def to_screen(self, x: object, y: object) -> tuple[int, int]:
        """Map screenshot coordinates to screen pixels.

        Raises:
            ConfigError: missing, or outside the screenshot.
        """
        if not isinstance(x, int) or not isinstance(y, int):
            raise ConfigError(f"this action needs integer x and y, got x={x!r} y={y!r}")
        width, height = self.size()
        if not (0 <= x < width and 0 <= y < height):
            raise ConfigError(f"({x}, {y}) is outside the {width}x{height} screenshot; "
                              f"use 0 <= x < {width} and 0 <= y < {height}")
        screen = self._connected()
        return (min(x * screen.width // width, screen.width - 1),
                min(y * screen.height // height, screen.height - 1))

    async def screenshot(self) -> bytes:
        """A PNG of the screen at the model's size; saved beside the trace."""
        client = await self.client()
        frame = await client.capture()
        size = self.size()
        png = frame.png() if size == (frame.width, frame.height) else _scaled_png(frame, size)
        self.shots.save(png, self.name)
        return png

    async def act(self, args: dict[str, Any]) -> ToolResult:
        """Do one action (see `COMPUTER_SCHEMA`); answer with a screenshot.

        Raises:
            InfraError: the desktop connection failed twice.
        """
        action = args.get("action")
        if action not in ACTIONS:
            return ToolResult(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}",
                              is_error=True)
        self.run.record("computer_action", **args)
        for attempt in (1, 2):
            try:
                return await self._act(action, args)
            except ConfigError as exc:
                return ToolResult(str(exc), is_error=True)
            except (TypeError, ValueError) as exc:  # malformed arguments from the model
                return ToolResult(f"bad arguments for {action}: {exc}", is_error=True)
            except InfraError:
                if attempt == 2:
                    raise
                await self.close()  # a restarted display: reconnect once
        raise AssertionError("unreachable")

    async def _act(self, action: str, args: dict[str, Any]) -> ToolResult:
        client = await self.client()
        if action == "wait":
            await asyncio.sleep(min(max(float(args.get("seconds", 1.0)), 0.0), MAX_WAIT))
        elif action in ("click", "double_click", "triple_click"):
            count = {"click": 1, "double_click": 2, "triple_click": 3}[action]
            await client.click(*self.to_screen(args.get("x"), args.get("y")),
                               button=args.get("button", "left"), count=count)
        elif action == "move":
            await client.move(*self.to_screen(args.get("x"), args.get("y")))
        elif action == "drag":
            path = args.get("path") or []
            await client.drag([self.to_screen(*point) for point in path],
                              button=args.get("button", "left"))
        elif action == "scroll":
            await client.scroll(*self.to_screen(args.get("x"), args.get("y")),
                                dx=int(args.get("dx", 0)), dy=int(args.get("dy", 0)))
        elif action == "type":
            await client.type(str(args.get("text", "")))
        elif action == "key":
            await client.key(str(args.get("keys", "")))
        if action != "screenshot" and self.settle:
            await asyncio.sleep(self.settle)
        png = await self.screenshot()
        width, height = self.size()
        return ToolResult(f"{action} done; screenshot {width}x{height}", images=[png])

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


async def computer_tools(run: RunContext, name: str | None = None, *,
                         fit: tuple[int, int] | None = None) -> list[Tool]:
    """The `computer` tool over the `rfb/` capability `name` (or the only one).

    Raises:
        ConfigError: no (or several) rfb capabilities; `fit` without Pillow.
    """
    from hud.clients.bindings import pick_binding

    binding = pick_binding(run.bindings, "rfb/", name)
    computer = Computer(run, binding["name"], fit)
    params = binding.get("params", {})
    return [Tool(
        name="computer",
        description=(f"Use a {params.get('width', '?')}x{params.get('height', '?')} desktop "
                     f"(screenshots may be scaled; use screenshot coordinates). Actions: "
                     f"{', '.join(ACTIONS)}. Every action answers with a screenshot."),
        parameters=COMPUTER_SCHEMA, run=computer.act, timeout=60.0,
        meta={"display": fitted_size(int(params.get("width", 1280)),
                                     int(params.get("height", 800)), fit)})]


class Browser:
    """Chromium seen through one CDP connection, for the browser_* tools."""

    def __init__(self, run: RunContext, name: str) -> None:
        self.run, self.name = run, name
        self.shots = Shots(run)
        self._cdp: CDP | None = None
        self._page: Page | None = None

    async def page(self) -> Page:
        """The tab the tools act on (the first one), connecting on first use."""
        from hud.clients.cdp import CDP

        if self._cdp is None or self._cdp.closed:
            self._cdp = await CDP.connect_tunnel(self.run.tunnel, self.name)
            self._page = None
        if self._page is None:
            self._page = await self._cdp.page()
        return self._page

    def tool(self, name: str, description: str, properties: dict[str, Any],
             required: list[str], act: Callable[[Page, dict[str, Any]], Awaitable[ToolResult]]
             ) -> Tool:
        async def run(args: dict[str, Any]) -> ToolResult:
            from hud.clients.devtools import CDPError

            self.run.record("browser_action", tool=name, **args)
            for attempt in (1, 2):
                try:
                    return await act(await self.page(), args)
                except (CDPError, ConfigError) as exc:
                    self._page = None if "closed" in str(exc) else self._page
                    return ToolResult(str(exc), is_error=True)
                except (KeyError, TypeError, ValueError) as exc:  # malformed arguments
                    return ToolResult(f"bad arguments for {name}: {exc!r}", is_error=True)
                except InfraError:
                    if attempt == 2:
                        raise
                    await self.close()  # Chromium restarted: reconnect once
            raise AssertionError("unreachable")

        schema = {"type": "object", "properties": properties, "required": required,
                  "additionalProperties": False}
        return Tool(name=name, description=description, parameters=schema, run=run, timeout=60.0)

    async def shot(self, page: Page, what: str) -> ToolResult:
        png = await page.screenshot()
        self.shots.save(png, self.name)
        return ToolResult(what, images=[png])

    async def close(self) -> None:
        if self._cdp is not None:
            await self._cdp.close()
            self._cdp, self._page = None, None


async def browser_tools(run: RunContext, name: str | None = None) -> list[Tool]:
    """browser_navigate/click/type/press/read/screenshot over the `cdp/` capability.

    Raises:
        ConfigError: no (or several) cdp capabilities.
    """
    from hud.clients.bindings import pick_binding

    browser = Browser(run, pick_binding(run.bindings, "cdp/", name)["name"])
    selector = {"type": "string", "description": "CSS selector"}

    async def navigate(page: Page, args: dict[str, Any]) -> ToolResult:
        await page.navigate(str(args["url"]))
        return ToolResult(f"loaded {await page.url()}")

    async def click(page: Page, args: dict[str, Any]) -> ToolResult:
        if args.get("selector"):
            await page.click(args["selector"])
        else:
            await page.click(x=args.get("x"), y=args.get("y"))
        return await browser.shot(page, "clicked")

    async def type_(page: Page, args: dict[str, Any]) -> ToolResult:
        await page.type(str(args["text"]), args.get("selector"))
        return ToolResult("typed")

    async def press(page: Page, args: dict[str, Any]) -> ToolResult:
        await page.press(str(args["key"]))
        return ToolResult(f"pressed {args['key']}")

    async def read(page: Page, args: dict[str, Any]) -> ToolResult:
        return ToolResult(truncate(await page.text(args.get("selector") or "body")))

    async def screenshot(page: Page, args: dict[str, Any]) -> ToolResult:
        width, height = await page.viewport()
        return await browser.shot(page, f"screenshot of the {width}x{height} viewport")

    return [
        browser.tool("browser_navigate", "Load a URL in the browser tab and wait for it.",
                     {"url": {"type": "string"}}, ["url"], navigate),
        browser.tool("browser_click", "Click an element (CSS selector) or a point (x, y in "
                     "CSS pixels of the viewport).",
                     {"selector": selector, "x": {"type": "number"}, "y": {"type": "number"}},
                     [], click),
        browser.tool("browser_type", "Type text into an element (CSS selector) or the "
                     "focused one; a newline presses Enter.",
                     {"text": {"type": "string"}, "selector": selector}, ["text"], type_),
        browser.tool("browser_press", "Press a key: Enter, Tab, Escape, Backspace, "
                     "ArrowUp/Down/Left/Right, PageUp/PageDown, Home, End.",
                     {"key": {"type": "string"}}, ["key"], press),
        browser.tool("browser_read", "The visible text of an element (default: the page).",
                     {"selector": selector}, [], read),
        browser.tool("browser_screenshot", "A screenshot of the visible page.", {}, [],
                     screenshot),
    ]

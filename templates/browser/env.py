"""A browser environment: a todo app served inside the container, used through Chromium.

The app is a static page served by the standard library on 127.0.0.1 (started by an
initialize hook). The agent drives Chromium over the `cdp` capability (Playwright, the
browser tools, or raw CDP); the grader reads the page's state over CDP.
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path
from typing import Any

from hud import Environment
from hud.clients.cdp import CDPError

env = Environment(name="todo-browser", layer="browser")
browser = env.browser()

APP_DIR = Path(__file__).parent / "app"
app: dict[str, Any] = {}

READ_TODOS = """[...document.querySelectorAll('#todos li')].map(li => ({
    text: li.querySelector('span').textContent, done: li.querySelector('input').checked}))"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@env.initialize
def serve_app() -> None:
    handler = functools.partial(_QuietHandler, directory=str(APP_DIR))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    app["server"], app["url"] = server, f"http://127.0.0.1:{server.server_address[1]}/"


@env.shutdown
def stop_app() -> None:
    app["server"].shutdown()


async def todos() -> list[dict[str, Any]]:
    """The todo list as the page shows it (empty if the app's tab is gone)."""
    try:
        return await browser.evaluate(READ_TODOS, url_prefix=app["url"]) or []
    except CDPError:
        return []  # the agent closed the tab or navigated away: nothing to grade


@env.template()
async def add_todo(item: str = "buy milk", complete: str = "walk the dog"):
    """Add a todo item and tick another one off, in the browser."""
    await browser.open(app["url"])
    yield (f"The browser shows a todo app at {app['url']}. Add the item '{item}' and mark "
           f"'{complete}' as done. Reply 'done' when finished.")
    state = {t["text"]: t["done"] for t in await todos()}
    added = state.get(item) is False
    ticked = state.get(complete) is True
    yield 0.5 * added + 0.5 * ticked


@add_todo.solution
async def solve_add_todo(item: str, complete: str) -> str:
    async with browser.page(app["url"]) as page:
        await page.type(item + "\n", "#new")
        labels = await page.evaluate("[...document.querySelectorAll('#todos span')]"
                                     ".map(s => s.textContent)")
        await page.click(f"#todos li:nth-child({labels.index(complete) + 1}) input")
    return "done"


tasks = [add_todo(), add_todo(item="file taxes", complete="call grandma")]

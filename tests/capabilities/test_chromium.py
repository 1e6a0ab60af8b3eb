"""The cdp capability: real Chromium on this host, reached through real tunnels."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import AsyncIterator

import pytest

from hud.capabilities.chromium import LOOPBACK_ONLY, BrowserCapability
from hud.clients.cdp import CDP, CDPError, CDPTimeout
from hud.environment import Environment
from hud.errors import InfraError
from tests.guikit import forwarder, need, served, wait_for

PAGE = ("data:text/html,<title>t</title><p id=out>before</p>"
        "<button id=go onclick=\"out.textContent='after'\">Go</button>")


@pytest.fixture
async def browser() -> AsyncIterator[BrowserCapability]:
    need("chromium")
    capability = BrowserCapability(user=None, args=LOOPBACK_ONLY, max_tabs=3)
    await capability.start()
    try:
        yield capability
    finally:
        await capability.close()


async def test_binding_is_cdp_on_loopback() -> None:
    """start() publishes cdp/1.3 on a loopback port, with the browser's ws path."""
    need("chromium")
    capability = BrowserCapability(user=None, args=LOOPBACK_ONLY)
    try:
        binding = await capability.start()
    finally:
        await capability.close()
    assert binding.protocol == "cdp/1.3"
    assert binding.url == f"tcp://127.0.0.1:{capability.port}"
    assert binding.params["ws_path"].startswith("/devtools/browser/")


async def test_playwright_over_tunnel_clicks_button() -> None:
    """Playwright's connect_over_cdp through the daemon's tunnel clicks, and the page changes."""
    need("chromium")
    playwright_api = pytest.importorskip("playwright.async_api")
    env = Environment(name="cdp-tunnel-test")
    env.add_capability(BrowserCapability(user=None, args=LOOPBACK_ONLY))
    async with (served(env) as lease, forwarder(lease, "browser") as port,
                playwright_api.async_playwright() as pw):
            endpoint = f"http://127.0.0.1:{port}"
            chromium = await pw.chromium.connect_over_cdp(endpoint, timeout=30_000)
            page = chromium.contexts[0].pages[0]
            await page.goto(PAGE)
            await page.click("#go")
            assert await page.text_content("#out") == "after"
            await chromium.close()


async def test_page_that_never_loads_times_out(browser: BrowserCapability) -> None:
    """A server that never answers: open() raises CDPTimeout naming the URL and the limit."""
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # hold the connection open, answer nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    try:
        with pytest.raises(CDPTimeout, match=rf"{url} did not finish loading within 2s"):
            await browser.open(url, timeout=2)
    finally:
        server.close()


async def test_refused_navigation_is_cdp_error(browser: BrowserCapability) -> None:
    """A closed port: open() raises CDPError with Chromium's net error."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(CDPError, match="ERR_CONNECTION_REFUSED"):
        await browser.open(f"http://127.0.0.1:{port}/", timeout=10)


async def test_helpers_read_dom_and_screenshot(browser: BrowserCapability) -> None:
    """open/evaluate/text/screenshot work on the first tab."""
    await browser.open(PAGE)
    assert await browser.text("#out") == "before"
    assert await browser.evaluate("1 + document.querySelectorAll('button').length") == 2
    assert (await browser.screenshot()).startswith(b"\x89PNG\r\n\x1a\n")


async def test_script_error_is_cdp_error(browser: BrowserCapability) -> None:
    """A throwing expression raises CDPError with the JS message."""
    with pytest.raises(CDPError, match="the page script threw: Error: boom"):
        await browser.evaluate("(() => { throw new Error('boom') })()")


async def test_killed_chromium_is_unhealthy_then_restarted(browser: BrowserCapability) -> None:
    """SIGKILL Chromium: healthy() turns False; stop+start serves again on the same port."""
    assert await browser.healthy()
    port = browser.port
    assert browser._chromium is not None
    os.kill(browser._chromium.pid, signal.SIGKILL)

    async def unhealthy() -> bool:
        return not await browser.healthy()

    await wait_for(unhealthy)
    await browser.stop()
    binding = await browser.start()
    assert await browser.healthy() and binding.url == f"tcp://127.0.0.1:{port}"


async def test_tabs_beyond_the_limit_are_closed(browser: BrowserCapability) -> None:
    """With max_tabs=3, opening 6 more tabs leaves 3."""
    cdp = await CDP.connect_port(browser.port or 0)
    try:
        for _ in range(6):
            await cdp.send("Target.createTarget", {"url": "about:blank"})

        async def bounded() -> bool:
            return len(await cdp.pages()) == 3

        await wait_for(bounded)
        assert browser.closed_tabs == 4
    finally:
        await cdp.close()


async def test_fresh_profile_per_task_forgets_storage(browser: BrowserCapability) -> None:
    """task_ended() restarts Chromium on an empty profile: cookies set before are gone."""
    async with browser.session() as cdp:
        await cdp.send("Storage.setCookies", {"cookies": [
            {"name": "k", "value": "v", "domain": "127.0.0.1", "path": "/"}]})
        assert (await cdp.send("Storage.getCookies"))["cookies"]
    await browser.task_ended()
    async with browser.session() as cdp:
        assert (await cdp.send("Storage.getCookies"))["cookies"] == []


async def test_missing_chromium_is_a_clear_error() -> None:
    """A wrong executable: start() says what is not installed."""
    capability = BrowserCapability(user=None, executable="no-such-chromium")
    with pytest.raises(Exception, match="'no-such-chromium' is not installed"):
        await capability.start()
    await capability.close()


async def _kill_chromium(browser: BrowserCapability) -> None:
    assert browser._chromium is not None
    os.kill(browser._chromium.pid, signal.SIGKILL)

    async def dead() -> bool:
        return not await browser.healthy()

    await wait_for(dead)


async def test_setup_restarts_a_chromium_that_died(browser: BrowserCapability) -> None:
    """open() (task setup) after Chromium was killed between tasks starts it again."""
    await _kill_chromium(browser)
    await browser.open(PAGE)
    assert await browser.text("#out") == "before"


async def test_grading_across_a_restart_is_infra_error(browser: BrowserCapability) -> None:
    """Chromium restarted mid-task: reading the page raises InfraError, not an empty page."""
    await browser.open(PAGE)
    await _kill_chromium(browser)
    await browser.stop()
    await browser.start()  # what the daemon's watchdog does
    with pytest.raises(InfraError, match="died and was restarted during this task"):
        await browser.text("#out")

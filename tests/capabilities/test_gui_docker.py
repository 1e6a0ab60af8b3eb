"""Chromium and the VNC desktop in real containers, driven from the host through exec
tunnels: Playwright clicks a button, a VNC frame is not blank, typing changes pixels."""

from __future__ import annotations

import pytest

import hud
from hud.clients.bindings import LocalPort
from hud.clients.rfb import RFBClient
from tests.docker_fixtures import base_layer, containers, docker_cli, unique_tag  # noqa: F401

pytestmark = pytest.mark.docker


def _build(template: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    from hud.build.env_image import build_env
    from hud.build.scaffold import scaffold

    folder, _ = scaffold(tmp_path_factory.mktemp(template) / f"gui-{template}", template)
    tag = unique_tag(f"hud-test-gui-{template}")
    build_env(folder, tag=tag)
    return tag


@pytest.fixture(scope="module")
def browser_image(tmp_path_factory: pytest.TempPathFactory, base_layer: str):
    tag = _build("browser", tmp_path_factory)
    yield tag
    docker_cli("rmi", "-f", tag, timeout=120)


@pytest.fixture(scope="module")
def desktop_image(tmp_path_factory: pytest.TempPathFactory, base_layer: str):
    tag = _build("desktop", tmp_path_factory)
    yield tag
    docker_cli("rmi", "-f", tag, timeout=120)


async def test_playwright_clicks_through_the_tunnel_in_a_container(browser_image: str,
                                                                    containers) -> None:
    """connect_over_cdp via docker exec: the todo app gains an item after a click."""
    playwright_api = pytest.importorskip("playwright.async_api")
    name = containers.run(browser_image, options=("--network", "none"))
    containers.wait_healthy(name)
    async with await hud.attach(name) as env:
        prompt = await env.start(env.manifest["tasks"][0]["slug"])
        assert prompt
        port = LocalPort(env.tunnel, "browser")
        await port.start()
        try:
            async with playwright_api.async_playwright() as pw:
                chromium = await pw.chromium.connect_over_cdp(f"http://127.0.0.1:{port.port}",
                                                              timeout=60_000)
                page = chromium.contexts[0].pages[0]
                before = await page.locator("#todos li").count()
                await page.fill("#new", "buy milk")
                await page.click("#add")
                assert await page.locator("#todos li").count() == before + 1
                await chromium.close()
        finally:
            await port.stop()


async def test_vnc_frame_and_typing_in_a_container(desktop_image: str, containers) -> None:
    """A VNC frame over the tunnel is not blank; a click and typed text change pixels."""
    name = containers.run(desktop_image, options=("--network", "none"))
    containers.wait_healthy(name)
    async with await hud.attach(name) as env:
        await env.start(env.manifest["tasks"][0]["slug"])
        display = env.bindings["desktop"]["params"]["display"]
        geometry = containers.exec(name, "setpriv", "--reuid=1000", "--regid=1000",
                                   "--init-groups", "env", f"DISPLAY={display}", "xdotool",
                                   "search", "--name", "^Notes$", "getwindowgeometry", "--shell")
        assert geometry.returncode == 0, geometry.stderr
        geo = dict(line.split("=", 1) for line in geometry.stdout.split() if "=" in line)
        reader, writer = await env.tunnel("desktop")
        client = await RFBClient.connect(reader, writer)
        try:
            first = await client.capture(10)
            assert len(set(first.rgb[i:i + 3] for i in range(0, len(first.rgb), 3 * 97))) > 3
            # the Notes window's text field sits in its upper part
            await client.click(int(geo["X"]) + int(geo["WIDTH"]) // 2,
                               int(geo["Y"]) + int(geo["HEIGHT"]) // 4)
            await client.type("hello from the host")
            changed = 0
            for _ in range(50):  # repaint is asynchronous: poll frames, bounded
                later = await client.capture(10)
                changed = sum(a != b for a, b in zip(first.rgb, later.rgb, strict=True))
                if changed > 100:
                    break
            assert changed > 100
        finally:
            await client.close()

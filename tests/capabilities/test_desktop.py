"""The rfb capability: real Xvnc + openbox on this host, driven over real tunnels."""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import AsyncIterator

import pytest

from hud.capabilities.desktop import (
    WM_ABSENT,
    WM_ANNOUNCED,
    WM_MANAGING,
    DesktopCapability,
    WmWait,
    wm_state,
)
from hud.clients.rfb import RFBClient, RFBError
from hud.environment import Environment
from hud.errors import InfraError
from tests.guikit import colours, differing_pixels, need, served, wait_for

ENTRY_APP = ("import tkinter as tk; r = tk.Tk(); r.title('hud-entry'); "
             "r.geometry('500x120+40+40'); e = tk.Entry(r, font=('TkFixedFont', 28)); "
             "e.pack(fill='both', expand=True); r.mainloop()")


@pytest.fixture
async def desktop() -> AsyncIterator[DesktopCapability]:
    need("Xvnc", "openbox", "xdotool", "xprop")
    capability = DesktopCapability(user=None, width=800, height=600)
    await capability.start()
    try:
        yield capability
    finally:
        await capability.close()


async def _window_center(desktop: DesktopCapability, name: str) -> tuple[int, int]:
    wid = await desktop.wait_window(name)
    info = await desktop.xdotool("getwindowgeometry", wid)
    x, y = map(int, re.search(r"Position: (\d+),(\d+)", info).groups())  # type: ignore[union-attr]
    w, h = map(int, re.search(r"Geometry: (\d+)x(\d+)", info).groups())  # type: ignore[union-attr]
    return x + w // 2, y + h // 2


# `xprop -root _NET_SUPPORTING_WM_CHECK _NET_SUPPORTED _NET_CLIENT_LIST`, as openbox 3.6
# answers it before it starts, as it takes the screen, and once it manages windows
NO_WM = """_NET_SUPPORTING_WM_CHECK:  no such atom on any window.
_NET_SUPPORTED:  no such atom on any window.
_NET_CLIENT_LIST:  no such atom on any window.
"""
SUPPORTED = "_NET_SUPPORTING_WM_CHECK, _NET_CLIENT_LIST_STACKING, _NET_CLIENT_LIST, _NET_ACTIVE_WINDOW"
ANNOUNCED = f"""_NET_SUPPORTING_WM_CHECK(WINDOW): window id # 0x20020b
_NET_SUPPORTED(ATOM) = {SUPPORTED}
_NET_CLIENT_LIST:  not found.
"""
MANAGING = ANNOUNCED.replace("_NET_CLIENT_LIST:  not found.", "_NET_CLIENT_LIST(WINDOW): window id # ")


def test_a_window_manager_is_ready_once_it_lists_clients() -> None:
    """openbox announces itself ~250 ms before it takes windows; one mapped in between was
    never shown (the desktop template's app, in about half the containers started two at
    a time): ready means _NET_CLIENT_LIST is set, when the manager supports it."""
    assert wm_state(NO_WM) == WM_ABSENT
    assert wm_state(ANNOUNCED) == WM_ANNOUNCED
    assert wm_state(MANAGING) == WM_MANAGING
    # a manager that never lists clients (it does not say it supports that) manages as
    # soon as it announces itself; only _NET_CLIENT_LIST itself counts, not its _STACKING
    lists_none = ANNOUNCED.replace(", _NET_CLIENT_LIST,", ",")
    assert wm_state(lists_none) == WM_MANAGING
    assert wm_state(lists_none.replace("window id # 0x20020b", "not found.")) == WM_ABSENT
    assert wm_state("") == WM_ABSENT
    wait = WmWait(grace=3)  # openbox's start, as readings: ready once it manages
    assert [wait.ready(NO_WM, 0.0), wait.ready(ANNOUNCED, 0.1), wait.ready(MANAGING, 0.35)] \
        == [False, False, True]
    assert not wait.lingered


async def test_waiting_for_a_window_not_shown_says_so(desktop: DesktopCapability) -> None:
    """A window with the title that is not mapped: the error says it exists, unshown."""
    hidden = ("import tkinter as tk; r = tk.Tk(); r.title('hud-hidden'); r.update(); "
              "r.withdraw(); r.mainloop()")
    await desktop.run_app([sys.executable, "-c", hidden])
    await wait_for(lambda: _titled(desktop, "hud-hidden"))
    with pytest.raises(InfraError, match="not shown") as caught:
        await desktop.wait_window("^hud-hidden$", timeout=1)
    assert "window manager" in str(caught.value)
    for _ in range(6):  # more of them: a few ids are listed, and how many more there are
        await desktop.run_app([sys.executable, "-c", hidden])
    await wait_for(lambda: _titled(desktop, "hud-hidden", at_least=7))
    with pytest.raises(InfraError, match=r"not shown \(([0-9]+, ){4}[0-9]+ and [0-9]+ more\)"):
        await desktop.wait_window("^hud-hidden$", timeout=1)
    with pytest.raises(InfraError) as nothing:
        await desktop.wait_window("^no-such-window$", timeout=1)
    assert "not shown" not in str(nothing.value)


async def _titled(desktop: DesktopCapability, name: str, at_least: int = 1) -> bool:
    try:
        found = await desktop.xdotool("search", "--name", name, timeout=3)
    except InfraError:
        return False
    return len(found.split()) >= at_least


async def test_binding_has_geometry_and_display() -> None:
    """The rfb/3.8 binding carries width, height and the X display."""
    need("Xvnc", "openbox", "xdotool", "xprop")
    desktop2 = DesktopCapability(user=None, width=640, height=480)
    try:
        binding = await desktop2.start()
    finally:
        await desktop2.close()
    assert binding.protocol == "rfb/3.8"
    assert binding.params == {"width": 640, "height": 480, "display": desktop2.display}


async def test_screenshot_over_tunnel_is_not_blank() -> None:
    """With a window open, a VNC screenshot through the daemon's tunnel has many colours."""
    need("Xvnc", "openbox", "xdotool", "xprop")
    env = Environment(name="rfb-tunnel-test")
    capability = env.add_capability(DesktopCapability(user=None, width=800, height=600))
    async with served(env) as lease:
        assert isinstance(capability, DesktopCapability)
        await capability.run_app(["xmessage", "-center", "hello from hud"])
        await capability.wait_window("xmessage")
        client = await RFBClient.connect(*await lease.tunnel("desktop"))
        try:
            frame = await client.capture()
        finally:
            await client.close()
    assert colours(frame.rgb) > 2


async def test_click_and_typing_change_the_screen(desktop: DesktopCapability) -> None:
    """Clicking a text field and typing over RFB changes the pixels."""
    await desktop.run_app([sys.executable, "-c", ENTRY_APP])
    x, y = await _window_center(desktop, "hud-entry")
    client = await desktop.connect()
    try:
        before = (await client.capture()).rgb
        await client.click(x, y)
        await client.type("Hello RFB")

        async def changed() -> bool:
            return differing_pixels(before, (await client.capture()).rgb) > 200

        await wait_for(changed)
    finally:
        await client.close()


async def test_colours_arrive_in_rgb_order(desktop: DesktopCapability) -> None:
    """A pure red window is (255, 0, 0) in the captured frame."""
    red = ("import tkinter as tk; r = tk.Tk(); r.title('hud-red'); "
           "r.geometry('200x200+100+100'); r.configure(bg='#ff0000'); r.mainloop()")
    await desktop.run_app([sys.executable, "-c", red])
    x, y = await _window_center(desktop, "hud-red")
    client = await desktop.connect()
    try:
        async def red_at_center() -> bool:
            frame = await client.capture()
            at = (y * frame.width + x) * 3
            return frame.rgb[at:at + 3] == b"\xff\x00\x00"

        await wait_for(red_at_center)
    finally:
        await client.close()


async def test_screenshot_of_a_stopped_display_is_clear_error(desktop: DesktopCapability) -> None:
    """After stop(), a screenshot raises RFBError saying the display is not answering."""
    await desktop.stop()
    with pytest.raises(RFBError, match=r"does not answer on 127\.0\.0\.1"):
        await desktop.screenshot(timeout=2)


async def test_killed_xvnc_is_unhealthy_then_restarted(desktop: DesktopCapability) -> None:
    """SIGKILL Xvnc: healthy() turns False; stop+start serves the same display and port."""
    assert desktop._xvnc is not None
    display, port = desktop.display, desktop.port
    os.kill(desktop._xvnc.pid, signal.SIGKILL)

    async def unhealthy() -> bool:
        return not await desktop.healthy()

    await wait_for(unhealthy)
    await desktop.stop()
    binding = await desktop.start()
    assert await desktop.healthy()
    assert (desktop.display, binding.url) == (display, f"tcp://127.0.0.1:{port}")


async def test_task_end_resets_the_display(desktop: DesktopCapability) -> None:
    """After task_ended() the apps of the task are gone."""
    app = await desktop.run_app(["xmessage", "left over"])
    await desktop.wait_window("xmessage")
    await desktop.task_ended()
    assert not app.alive
    assert await desktop.healthy()


async def _kill_xvnc(desktop: DesktopCapability) -> None:
    assert desktop._xvnc is not None
    os.kill(desktop._xvnc.pid, signal.SIGKILL)

    async def dead() -> bool:
        return not await desktop.healthy()

    await wait_for(dead)


async def test_setup_restarts_a_display_that_died(desktop: DesktopCapability) -> None:
    """run_app() (task setup) after Xvnc was killed between tasks starts the display again."""
    await _kill_xvnc(desktop)
    await desktop.run_app(["xmessage", "back again"])
    assert await desktop.wait_window("xmessage")


async def test_grading_across_a_restart_is_infra_error(desktop: DesktopCapability) -> None:
    """The display restarted mid-task: a screenshot raises InfraError, not a blank screen."""
    await desktop.run_app(["xmessage", "task window"])
    await _kill_xvnc(desktop)
    await desktop.stop()
    await desktop.start()  # what the daemon's watchdog does
    with pytest.raises(InfraError, match="died and was restarted during this task"):
        await desktop.screenshot()

"""Review of c69d3e4 (the desktop is ready once the window manager lists its clients), by
helper-34; fixed by a grace period (`WM_LIST_GRACE`), and these tests flipped.

dwm (6.2 and later; 6.4 from Debian measured) announces itself (_NET_SUPPORTING_WM_CHECK),
lists _NET_CLIENT_LIST in _NET_SUPPORTED, and then *deletes* _NET_CLIENT_LIST on the root
window: it only appends to it when it manages a first client. On an empty display the
property never appears, so a wait for it never ended and `DesktopCapability` with
`window_manager=("dwm",)` cannot start at all (it did before c69d3e4).
"""

from __future__ import annotations

import logging
import shutil

import pytest

from hud.capabilities.desktop import WM_ANNOUNCED, DesktopCapability, WmWait, wm_state

# `xprop -root _NET_SUPPORTING_WM_CHECK _NET_SUPPORTED _NET_CLIENT_LIST` with dwm 6.4 running
# on an empty Xvnc (it manages windows from here on; the property stays absent until one maps)
DWM_RUNNING = """_NET_SUPPORTING_WM_CHECK(WINDOW): window id # 0x20001c
_NET_SUPPORTED(ATOM) = _NET_SUPPORTED, _NET_WM_NAME, _NET_WM_STATE, _NET_SUPPORTING_WM_CHECK, \
_NET_WM_STATE_FULLSCREEN, _NET_ACTIVE_WINDOW, _NET_WM_WINDOW_TYPE, _NET_WM_WINDOW_TYPE_DIALOG, \
_NET_CLIENT_LIST
_NET_CLIENT_LIST:  not found.
"""


def test_dwm_managing_an_empty_display_counts_as_started_after_the_grace() -> None:
    """dwm never lists clients on an empty display: it counts as started `grace` seconds
    after it announced itself, and says it lingered (the capability logs a warning)."""
    assert wm_state(DWM_RUNNING) == WM_ANNOUNCED
    wait = WmWait(grace=3)
    assert [wait.ready(DWM_RUNNING, t) for t in (10.0, 11.0, 12.9)] == [False] * 3
    assert wait.ready(DWM_RUNNING, 13.0) and wait.lingered


async def test_a_dwm_desktop_starts(caplog: pytest.LogCaptureFixture) -> None:
    """A real dwm (where installed: not one of hud's image packages) starts, and the
    daemon's log says it was counted as started without listing its clients."""
    missing = [p for p in ("Xvnc", "dwm", "xprop") if shutil.which(p) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")
    desktop = DesktopCapability(name="redteam-dwm", user=None, window_manager=("dwm",),
                                start_timeout=10)
    try:
        with caplog.at_level(logging.WARNING, logger="hud.capabilities.desktop"):
            await desktop.start()  # was: InfraError, timed out waiting until dwm manages :N
    finally:
        await desktop.close()
    assert any("had not listed its clients" in r.getMessage() for r in caplog.records)

"""A desktop environment: a small Tk app on a virtual display, used through VNC.

The agent sees the screen and sends mouse and keyboard input over the `rfb` capability
(the computer tool); the grader reads the file the app saved. The reference solution
drives the same app with xdotool.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

from hud import Environment

env = Environment(name="notes-desktop", layer="desktop")
desktop = env.desktop(width=1024, height=768)

APP = Path(__file__).parent / "notes_app.py"
SAVE_TIMEOUT = 10.0
#: the file the running task's app saves to (one task at a time per container)
current: dict[str, Path] = {}


def _output_file() -> Path:
    """A fresh file path in a directory the agent's app may write."""
    folder = Path(tempfile.mkdtemp(prefix="hud-notes-"))
    user = desktop.user
    if user.switch:
        os.chown(folder, user.uid, user.gid)
    return folder / "note.txt"


@env.template()
async def write_note(text: str = "Meeting moved to 3pm"):
    """Type a note into the Notes app and save it."""
    output = current["output"] = _output_file()
    try:
        # the app runs as the agent, who cannot read this root-only directory: give it a copy
        app = output.parent / APP.name
        shutil.copyfile(APP, app)
        app.chmod(0o644)
        await desktop.run_app([sys.executable, str(app), str(output)])
        await desktop.wait_window("^Notes$")
        yield (f"A window titled 'Notes' is open on the desktop. Type exactly '{text}' into "
               f"its text field and click Save. Reply 'done' when finished.")
        saved = output.read_text() if output.exists() else None
        yield 1.0 if saved == text else 0.0
    finally:
        shutil.rmtree(output.parent, ignore_errors=True)


@write_note.solution
async def solve_write_note(text: str) -> str:
    window = await desktop.wait_window("^Notes$")
    await desktop.xdotool("windowactivate", "--sync", window)
    await desktop.xdotool("type", "--delay", "10", text)
    await desktop.xdotool("key", "Return")
    output, loop = current["output"], asyncio.get_running_loop()
    deadline = loop.time() + SAVE_TIMEOUT
    while not output.exists() and loop.time() < deadline:  # the app saves on its own time
        await asyncio.sleep(0.05)
    return "done"


tasks = [write_note(), write_note(text="buy 2 litres of milk")]

"""A daemon started with SIGINT and SIGQUIT ignored (a background job of a non-interactive
shell: `hud eval ... &` in a script, with the local placement) must not pass that on to
the processes it starts: the agent's shell has to take Ctrl-C (a command's timeout), and
a task's processes have to be interruptible. Run in a subprocess that really starts with
both ignored, through the local placement, the path `hud eval` takes; the task's own
child reports its ignored-signal mask."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import asyncio, signal, sys
from hud import Environment
from hud.eval.placement import LocalPlacement

env = Environment(name="signals")

@env.template()
async def mask():
    import subprocess
    status = subprocess.run(["cat", "/proc/self/status"], capture_output=True, text=True)
    line = next(l for l in status.stdout.splitlines() if l.startswith("SigIgn:"))
    answer = yield line.split()[1]
    yield 1.0

async def main():
    placement = LocalPlacement(env)
    lease = await placement.open("job", "run")
    try:
        started = await lease.channel.call("tasks.start", {"id": "mask", "args": {}})
        print(started["prompt"])
        # the daemon itself still ignores them: a SIGINT to it changes nothing
        signal.raise_signal(signal.SIGINT)
        await asyncio.sleep(0.1)
        print("alive")
    finally:
        await lease.close()
        await placement.shutdown()

asyncio.run(main())
"""


def _ignore_int_and_quit() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, signal.SIG_IGN)


def test_a_daemon_started_with_sigint_ignored_starts_children_with_it_default(
        tmp_path: Path) -> None:
    script = tmp_path / "signals.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, preexec_fn=_ignore_int_and_quit,
                          env={"PATH": "/usr/bin:/bin", "HUD_RUNS_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    mask_hex, alive = done.stdout.split()
    ignored = int(mask_hex, 16)
    assert not ignored & (1 << (signal.SIGINT - 1)), f"SIGINT ignored in the child: {mask_hex}"
    assert not ignored & (1 << (signal.SIGQUIT - 1)), f"SIGQUIT ignored in the child: {mask_hex}"
    assert alive == "alive"


def test_the_test_really_starts_with_them_ignored(tmp_path: Path) -> None:
    """The check above can fail: without the daemon, a child of such a process has both
    ignored."""
    done = subprocess.run(["grep", "SigIgn", "/proc/self/status"], capture_output=True,
                          text=True, timeout=60, preexec_fn=_ignore_int_and_quit)
    ignored = int(done.stdout.split()[1], 16)
    assert ignored & (1 << (signal.SIGINT - 1)) and ignored & (1 << (signal.SIGQUIT - 1))

"""The `hud` group reports a HudError once, for commands at the top and in subgroups."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def hud(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HUD_RUNS_DIR": str(tmp_path / "runs"),
           "HUD_SOCKET": str(tmp_path / "none.sock")}
    return subprocess.run([sys.executable, "-m", "hud.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)


@pytest.mark.parametrize(("argv", "message"), [
    (["task", "start", "count_letter"], "error: no hud daemon answers on {tmp}/none.sock"),
    (["images", "load", "{tmp}/notes.tar"], "error: {tmp}/notes.tar is not an image archive"),
    (["trace", "deadbeef"], "error: no trace 'deadbeef' under {tmp}/runs"),
], ids=["hud task", "hud images", "top-level"])
def test_hud_error_is_one_error_line_and_exit_1(tmp_path: Path, argv: list[str],
                                                 message: str) -> None:
    """A HudError in a command of each group: exit 1, one `error:` line, no traceback."""
    (tmp_path / "notes.tar").write_text("hello, not a tar file at all" * 40)
    done = hud(tmp_path, *(arg.format(tmp=tmp_path) for arg in argv))
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(message.format(tmp=tmp_path)), done.stderr
    assert done.stderr.count("error:") == 1, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_usage_error_still_exits_2(tmp_path: Path) -> None:
    """A click usage error inside a subgroup keeps click's exit 2 and message."""
    done = hud(tmp_path, "task", "start", "x", "--args", "[1]")
    assert done.returncode == 2 and "must be a JSON object" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("how", ["file", "stdin", "file, through click"])
def test_an_answer_that_is_not_utf8_is_named(tmp_path: Path, how: str) -> None:
    """Bytes that are not UTF-8 in --answer-file or on stdin (--answer -): one error line
    naming where and which byte, exit 1, no traceback (the fast path and click alike)."""
    (tmp_path / "bad.txt").write_bytes(b"ab\xff\xfe\n")
    argv = ["task", "grade", "x", "--answer-file", str(tmp_path / "bad.txt")]
    if how == "stdin":
        argv[-2:] = ["--answer", "-"]
    env = {**os.environ, "HUD_SOCKET": str(tmp_path / "none.sock")}
    if how == "file, through click":  # ASCII streams: the fast path hands over to click
        env["PYTHONIOENCODING"] = "ascii"
    done = subprocess.run([sys.executable, "-m", "hud.cli.main", *argv], env=env,
                          input=b"ab\xff\n", capture_output=True, timeout=120)
    stderr = done.stderr.decode()
    where = "stdin" if how == "stdin" else str(tmp_path / "bad.txt")
    assert done.returncode == 1, stderr
    assert stderr.startswith(f"error: the answer on {where} is not UTF-8 text (byte 0xff at "
                             f"offset 2)"), stderr
    assert "Traceback" not in stderr

"""`hud ssh CONTAINER` at a terminal, driven with pexpect as a person would type into it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pexpect
import pytest

from tests.docker_fixtures import base_layer, containers, template_image  # noqa: F401

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

#: seconds to wait for each thing the session should print
WAIT = 60


def test_an_interactive_session_keeps_its_state_and_exits_cleanly(
        template_image, containers, tmp_path: Path) -> None:
    """A prompt comes up; `cd /tmp` then `pwd` prints /tmp; `exit` ends `hud ssh` with 0."""
    _, tag = template_image("coding")
    name = containers.run(tag, options=("--network", "none"))
    containers.wait_healthy(name)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "TERM": "dumb"}
    child = pexpect.spawn(sys.executable, ["-m", "hud.cli.main", "ssh", name], env=env,
                          encoding="utf-8", codec_errors="replace", timeout=WAIT,
                          dimensions=(24, 200))
    try:
        child.expect_exact("$ ")
        child.sendline("cd /tmp")
        child.expect_exact("$ ")
        child.sendline("pwd")
        child.expect(r"\r\n/tmp\r\n")
        child.expect_exact("$ ")
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert (child.exitstatus, child.signalstatus) == (0, None), child.before

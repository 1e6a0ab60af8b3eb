"""Red team (found): a folder the agent makes read-only (chmod 555) in /workspace survives
the reset, which runs `find -delete` as the agent, so every later task in that container
fails to start (infra_error): one agent excludes every rollout after it."""

from __future__ import annotations

import pytest

import hud
from tests.redteam.conftest import as_agent

pytestmark = pytest.mark.docker

LOCK = ("mkdir -p /workspace/locked /tmp/locked && touch /workspace/locked/f /tmp/locked/f && "
        "chmod 555 /workspace/locked /tmp/locked && echo locked")


async def test_read_only_folder_does_not_break_the_next_task(template_image, secure) -> None:
    """After an agent leaves a chmod-555 folder with a file in it, the next task in the same
    container still starts, in a fresh workspace, and grades 0.0 for no work."""
    _, tag = template_image("coding")
    box = secure.run(tag)
    async with await hud.attach(box) as env:
        await env.start("fix_bug")
        done = await as_agent(env, LOCK)
        assert "locked" in done.stdout, done.stderr
        assert await env.grade("nothing") == 0.0
        await env.start("fix_bug")  # once: RemoteError "emptying the workspace ... failed"
        seen = await as_agent(env, "ls -A /workspace /tmp")
        assert "locked" not in seen.stdout, seen.stdout
        assert await env.grade("nothing") == 0.0

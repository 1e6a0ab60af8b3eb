"""A stand-in docker client for the HUD_DOCKER tests: a script that logs its argv and answers.

Docker's own engine is exercised by the docker-marked tests; these tests are about the
other side of the seam: which client hud runs, with which arguments, and what hud makes
of its answers. The script is executable Python (the test's interpreter), so it can turn
`exec -i CONTAINER hud connect ...` into a real `hud connect` to a real daemon (the one
`$HUD_SOCKET` names): a placement then runs a whole rollout through it.

What it answers (everything else is exit 125, "unexpected", so a new call shows up):

    version --format ...           a server version
    image inspect [--] REF         the image from $FAKE_DOCKER_IMAGES (JSON: ref -> labels)
    run -i ...                     `hud connect --mux` (to $HUD_SOCKET): the attached
                                   container's stdio
    run ...                        a container id
    ps -aq --filter ...            the ids in $FAKE_DOCKER_PS
    ps -a ... --format ...         the lines in $FAKE_DOCKER_PS_LINES (`;` between lines)
    rm -f IDS                      the ids (held while $FAKE_DOCKER_RM_GATE names a file
                                   that does not exist yet; `removed()` lists the ids once done)
    exec C hud manifest            the file $FAKE_DOCKER_MANIFEST
    exec -i C hud connect ARGS     `hud connect ARGS` (to $HUD_SOCKET)
    logs / inspect                 a line each
    echo                           copies stdin to stdout (for spawn)
    sleep                          sleeps 60 s (for timeouts)

With $FAKE_DOCKER_DOWN set, every command fails the way a client does when its engine is
not running.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

CONTAINER_ID = "f00dfeedc0de0123456789abcdef0123456789abcdef0123456789abcdef0123"
ENGINE_DOWN = ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
               "Is the docker daemon running?")

SCRIPT = f"""#!{sys.executable}
import json, os, shutil, sys, time
args = sys.argv[1:]
with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
    log.write(json.dumps(sys.argv) + "\\n")
def say(text, code=0, err=False):
    print(text, file=sys.stderr if err else sys.stdout)
    sys.exit(code)
if os.environ.get("FAKE_DOCKER_DOWN"):
    say({ENGINE_DOWN!r}, 1, err=True)
if args[:1] == ["version"]:
    say("24.0.7-fake")
if args[:2] == ["image", "inspect"]:
    images = json.loads(os.environ.get("FAKE_DOCKER_IMAGES", "{{}}"))
    ref = args[-1]  # after "--"
    if ref not in images:
        say("Error: No such image: " + ref, 1, err=True)
    say(json.dumps([{{"Id": "sha256:fake", "Size": 1, "Config": {{"Labels": images[ref]}}}}]))
if args[:2] == ["run", "-i"]:  # attached: its stdio is the daemon's connection
    os.execv(sys.executable, [sys.executable, "-m", "hud.cli.main", "connect", "--mux"])
if args[:1] == ["run"]:
    say({CONTAINER_ID!r})
if args[:1] == ["ps"] and "--format" in args:
    say("\\n".join(os.environ.get("FAKE_DOCKER_PS_LINES", "").split(";")))
if args[:1] == ["ps"]:
    say("\\n".join(os.environ.get("FAKE_DOCKER_PS", "").split()))
if args[:2] == ["rm", "-f"]:
    gate = os.environ.get("FAKE_DOCKER_RM_GATE")
    for _ in range(600 if gate else 0):  # held until the test opens the gate (<= 60 s)
        if os.path.exists(gate):
            break
        time.sleep(0.1)
    with open(os.environ["FAKE_DOCKER_LOG"] + ".removed", "a") as log:
        log.write("\\n".join(args[2:]) + "\\n")
    say("\\n".join(args[2:]))
if args[:1] == ["exec"] and args[-2:] == ["hud", "manifest"]:
    say(open(os.environ["FAKE_DOCKER_MANIFEST"]).read())
if args[:2] == ["exec", "-i"] and args[3:5] == ["hud", "connect"]:
    os.execv(sys.executable, [sys.executable, "-m", "hud.cli.main", "connect", *args[5:]])
if args[:1] in (["logs"], ["inspect"]):
    say("fake " + args[0])
if args[:1] == ["echo"]:
    shutil.copyfileobj(sys.stdin.buffer, sys.stdout.buffer)
    sys.exit(0)
if args[:1] == ["sleep"]:
    time.sleep(60)
say("fake docker: unexpected " + json.dumps(args), 125, err=True)
"""


class FakeDocker:
    """One stand-in client at `path` (made executable) and the log of its calls."""

    def __init__(self, folder: Path, name: str = "docker") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / name
        self.path.write_text(SCRIPT)
        self.path.chmod(0o755)
        self.log = folder / f"{name}.calls.jsonl"
        self.log.touch()

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a process that should use this client through HUD_DOCKER."""
        return {**os.environ, "HUD_DOCKER": str(self.path), "FAKE_DOCKER_LOG": str(self.log),
                **extra}

    def use(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Make this the client of this process (and of the processes it starts)."""
        monkeypatch.setenv("HUD_DOCKER", str(self.path))
        monkeypatch.setenv("FAKE_DOCKER_LOG", str(self.log))

    def calls(self) -> list[list[str]]:
        """Every call so far: the client's path, then docker's arguments."""
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def removed(self) -> list[str]:
        """The container ids whose `rm -f` has finished."""
        done = self.log.with_name(self.log.name + ".removed")
        return done.read_text().split() if done.exists() else []

    def commands(self) -> list[str]:
        """The docker subcommand of every call so far (`run`, `exec`, `rm`, ...)."""
        return [call[1] for call in self.calls()]


def image_labels(manifest: dict[str, Any]) -> str:
    """$FAKE_DOCKER_IMAGES for one image `fake-env:1` labelled with `manifest`."""
    return json.dumps({"fake-env:1": {"org.hud.manifest": json.dumps(manifest)}})

"""Root images that are not Debian 12, made offline once per machine, and a small env for them.

    hud-test-rootfs:bullseye          Debian 11 minbase from the host's apt mirror
                                      (debootstrap): glibc 2.31, no Python at all
    hud-test-rootfs:bullseye-python3  that + Debian 11's python3 (3.9), with PYTHONHOME and
                                      LD_LIBRARY_PATH set the way images of their own set
                                      them: hud's runtime must not pick either up

Both are kept by tag (like hud-test-plain:bookworm), so the bootstrap happens once per
machine. Used by tests/build/test_any_base.py and bench/bench_any_base.py.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hud.build.docker import build, inspect_image
from hud.build.rootfs import bootstrap

BULLSEYE = "hud-test-rootfs:bullseye"
BULLSEYE_PYTHON = "hud-test-rootfs:bullseye-python3"
PYTHON_DOCKERFILE = """\
FROM {root}
RUN set -eux; apt-get update; apt-get install -y --no-install-recommends python3; \\
    rm -rf /var/lib/apt/lists/*; python3 --version
# what images of their own set for their own Python and libraries
ENV PYTHONHOME=/usr \\
    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu
"""

ENV_PY = '''\
"""A small env for any root: the workspace reset and a command as the agent, a bounded grader."""
from pathlib import Path

from hud import Environment, graders

env = Environment(name="any-base")
workspace = env.workspace("/workspace")
HERE = Path(__file__).resolve().parent


@env.template()
async def shout(word: str = "hello"):
    await workspace.reset(HERE / "project")
    seen = await workspace.run("cat note.txt; id -un")
    answer = yield " ".join(seen.stdout.split()) + f": reply with {word!r} in capitals."
    yield await graders.command(None, ["tr", "a-z", "A-Z"], stdin=word,
                                expect_stdout=(answer or "").strip() or "-")


tasks = [shout()]
'''


def missing_bootstrap() -> str | None:
    """Why this machine cannot debootstrap (None when it can)."""
    if not (shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin")):
        return "debootstrap is not installed (bash scripts/setup installs it)"
    if os.geteuid() != 0:
        return "debootstrap needs root"
    return None


def bullseye_root() -> str:
    """The Debian 11 minbase root, debootstrapped on first use."""
    if inspect_image(BULLSEYE) is None:
        bootstrap("bullseye", tag=BULLSEYE, include=())
    return BULLSEYE


def bullseye_python_root() -> str:
    """The Debian 11 root with its python3 (3.9) and its own PYTHONHOME, built on first use."""
    if inspect_image(BULLSEYE_PYTHON) is None:
        root = bullseye_root()
        with tempfile.TemporaryDirectory(prefix="hud-test-py39-") as work:
            Path(work, "Dockerfile").write_text(PYTHON_DOCKERFILE.format(root=root))
            build(Path(work), BULLSEYE_PYTHON)
    return BULLSEYE_PYTHON


def write_env(folder: Path) -> Path:
    """The small env (env.py + project/note.txt) in `folder`."""
    (folder / "project").mkdir(parents=True)
    (folder / "env.py").write_text(ENV_PY)
    (folder / "project" / "note.txt").write_text("from the project\n")
    return folder

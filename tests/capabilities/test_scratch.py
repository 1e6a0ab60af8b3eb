"""Resetting what the agent can write, as the agent: Workspace.reset and before_start."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hud.capabilities.chromium import LOOPBACK_ONLY, BrowserCapability
from hud.capabilities.desktop import DesktopCapability
from hud.capabilities.ssh import Workspace
from hud.capabilities.users import release_path, spare_path
from hud.errors import ConfigError, InfraError
from tests.guikit import need
from tests.sshkit import alive, until

RACE_ROUNDS = 15


@pytest.fixture
def base() -> Iterator[Path]:
    """A root-owned 0755 directory in /tmp that a throwaway user can traverse."""
    path = Path(tempfile.mkdtemp(prefix="hud-scratch-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def ws(base: Path, throwaway_user: pwd.struct_passwd) -> Workspace:
    """A workspace (not serving ssh) whose user is a throwaway account owning its root."""
    root = base / "ws"
    root.mkdir()
    os.chown(root, throwaway_user.pw_uid, throwaway_user.pw_gid)
    return Workspace(str(root), user=throwaway_user.pw_name)


@pytest.fixture
def project(base: Path) -> Path:
    """A trusted, root-only source folder like an env's project/ (with a __pycache__)."""
    src = base / "project"
    (src / "stats" / "sub").mkdir(parents=True)
    (src / "stats" / "__pycache__").mkdir()
    (src / "stats" / "__init__.py").write_text("from .core import median\n")
    (src / "stats" / "core.py").write_text("def median(xs): ...\n")
    (src / "stats" / "sub" / "deep.py").write_text("DEEP = 1\n")
    (src / "stats" / "__pycache__" / "core.cpython-311.pyc").write_bytes(b"stale")
    (src / "README").write_text("read me\n")
    src.chmod(0o700)
    return src


def _as_agent(ws: Workspace, script: str) -> None:
    subprocess.run(ws.user.argv(["sh", "-c", script]), env=ws.user.environment(), cwd="/",
                   check=True, capture_output=True, timeout=30)


def _spawn_as_agent(ws: Workspace, script: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(ws.user.argv(["sh", "-c", script]), env=ws.user.environment(),
                            cwd="/", start_new_session=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _snapshot(path: Path) -> dict[str, tuple[int, int, int, bytes]]:
    """(mode, uid, gid, content) of `path` and everything under it, by relative name."""
    found = {}
    for entry in [path, *sorted(path.rglob("*"))]:
        info = entry.lstat()
        data = entry.read_bytes() if stat.S_ISREG(info.st_mode) else b""
        found[str(entry.relative_to(path))] = (info.st_mode, info.st_uid, info.st_gid, data)
    return found


def _owners(root: Path) -> set[int]:
    return {entry.lstat().st_uid for entry in root.rglob("*")}


async def test_reset_copies_the_source_as_the_agent(ws: Workspace, project: Path) -> None:
    """reset() empties the root and copies the source, owned by the agent, no __pycache__."""
    root = Path(ws.root)
    (root / "leftover.py").write_text("old")
    os.chown(root / "leftover.py", ws.user.uid, ws.user.gid)
    mode = root.stat().st_mode
    await ws.reset(project)
    names = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    assert names == ["README", "stats", "stats/__init__.py", "stats/core.py", "stats/sub",
                     "stats/sub/deep.py"]
    assert _owners(root) == {ws.user.uid}
    assert (root / "stats" / "core.py").read_text() == "def median(xs): ...\n"
    assert root.stat().st_mode == mode  # the source's 0700 is not copied onto the root


async def test_reset_without_source_empties_the_root(ws: Workspace, project: Path) -> None:
    """reset() with no source leaves the workspace empty."""
    await ws.reset(project)
    await ws.reset()
    assert list(Path(ws.root).iterdir()) == []


async def test_reset_from_a_missing_source_is_a_config_error(ws: Workspace, base: Path) -> None:
    """A source that is not a directory fails before anything is deleted, naming the fix."""
    (Path(ws.root) / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match=r"reset the workspace from .*nope.* not a directory"):
        await ws.reset(base / "nope")
    assert (Path(ws.root) / "keep.txt").exists()


async def test_reset_does_not_follow_a_symlink_to_etc(ws: Workspace, project: Path) -> None:
    """A planted workspace/stats -> /etc gets replaced; /etc keeps its mode, owner, entries."""
    before = (os.stat("/etc"), sorted(os.listdir("/etc")))
    _as_agent(ws, f"ln -s /etc {ws.root}/stats")
    await ws.reset(project)
    after = (os.stat("/etc"), sorted(os.listdir("/etc")))
    assert (after[0].st_mode, after[0].st_uid, after[1]) == (before[0].st_mode, before[0].st_uid,
                                                             before[1])
    stats_dir = Path(ws.root) / "stats"
    assert not stats_dir.is_symlink() and (stats_dir / "core.py").exists()
    assert _owners(Path(ws.root)) == {ws.user.uid}


async def test_reset_racing_agent_cannot_reach_root_files(ws: Workspace, project: Path,
                                                          base: Path) -> None:
    """An agent process swapping workspace dirs for symlinks during reset gains nothing."""
    public, secret = base / "etc-like", base / "root-only"
    public.mkdir(mode=0o755)
    (public / "conf").write_text("root config\n")
    secret.mkdir()
    secret.chmod(0o700)
    (secret / "env.py").write_text("HIDDEN = 'answer'\n")
    (secret / "env.py").chmod(0o600)
    before = (_snapshot(public), _snapshot(secret))
    racer = _spawn_as_agent(ws, f"""cd {ws.root} || exit 1
        while :; do for target in {public} {secret}; do
          for d in stats stats/sub; do rm -rf "$d" 2>/dev/null; ln -sfn "$target" "$d" 2>/dev/null
          done; done; done""")
    try:
        for _ in range(RACE_ROUNDS):
            # tar refusing to write through the agent's symlink is the right outcome
            with contextlib.suppress(InfraError):
                await ws.reset(project)
    finally:
        racer.kill()
        racer.wait(timeout=10)
    await ws.before_start()  # sweeps whatever the racer forked
    assert (_snapshot(public), _snapshot(secret)) == before
    await ws.reset(project)
    assert _owners(Path(ws.root)) == {ws.user.uid}
    assert (Path(ws.root) / "stats" / "sub" / "deep.py").read_text() == "DEEP = 1\n"


async def test_reset_empties_folders_the_agent_made_read_only(ws: Workspace,
                                                             project: Path) -> None:
    """A chmod 555 (or 000) folder, even the workspace root itself, does not survive reset."""
    _as_agent(ws, f"mkdir -p {ws.root}/locked/deep {ws.root}/sealed && touch {ws.root}/locked/f "
                  f"{ws.root}/locked/deep/g {ws.root}/sealed/h && chmod 555 {ws.root}/locked "
                  f"{ws.root}/locked/deep && chmod 000 {ws.root}/sealed && chmod 555 {ws.root}")
    await ws.reset(project)
    names = sorted(p.name for p in Path(ws.root).iterdir())
    assert names == ["README", "stats"]


async def test_before_start_clears_a_read_only_folder_in_tmp(ws: Workspace) -> None:
    """A scratch folder the agent locked with chmod 555 is cleared all the same."""
    locked = f"/tmp/hud-locked-{uuid.uuid4().hex[:8]}"
    _as_agent(ws, f"mkdir -p {locked}/in && touch {locked}/f {locked}/in/g && "
                  f"chmod 555 {locked}/in {locked}")
    await ws.before_start()
    assert not os.path.lexists(locked)


async def test_reset_refuses_a_root_it_cannot_empty(ws: Workspace) -> None:
    """A root-owned directory left in the workspace is an error naming the fix."""
    locked = Path(ws.root) / "root-owned"
    locked.mkdir()
    (locked / "file").write_text("x")
    with pytest.raises(InfraError, match=r"(?s)emptying the workspace .* failed .*hold nothing it cannot"):
        await ws.reset()


async def test_before_start_kills_a_respawning_process(ws: Workspace) -> None:
    """A detached loop that respawns its child is gone after before_start()."""
    loop = _spawn_as_agent(ws, "while :; do sleep 1000 & wait; done")
    try:
        assert await until(lambda: any(True for _ in _children(loop.pid)))
        children = list(_children(loop.pid))
        await ws.before_start()
        assert await until(lambda: not alive(loop.pid) and not any(alive(c) for c in children))
    finally:
        loop.kill()
        loop.wait(timeout=10)


def _children(pid: int) -> Iterator[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return iter(())
    return (int(c) for c in text.split())


async def test_before_start_clears_the_agents_scratch_files(ws: Workspace, base: Path) -> None:
    """The agent's files in /tmp, /var/tmp, /dev/shm, /run/lock go; what a symlink points
    at, other users' files and the workspace stay."""
    tag = uuid.uuid4().hex[:8]
    target = base / "root-file"
    target.write_text("root's\n")
    target.chmod(0o644)
    dirs = ["/tmp", "/var/tmp", "/dev/shm", "/run/lock"]
    planted = [f"{d}/hud-agent-{tag}" for d in dirs]
    _as_agent(ws, " && ".join(f"mkdir -p {p}/a/b && echo x > {p}/a/b/f" for p in planted)
              + f" && ln -s {target} /tmp/hud-link-{tag} && echo work > {ws.root}/work.py")
    root_file = Path(f"/tmp/hud-root-{tag}")
    root_file.write_text("not the agent's\n")
    try:
        await ws.before_start()
        assert [p for p in planted if os.path.lexists(p)] == []
        assert not os.path.lexists(f"/tmp/hud-link-{tag}")
        assert target.read_text() == "root's\n" and stat.S_IMODE(target.stat().st_mode) == 0o644
        assert root_file.read_text() == "not the agent's\n"
        assert (Path(ws.root) / "work.py").read_text() == "work\n"
    finally:
        root_file.unlink()


async def test_before_start_resets_the_home_to_skel(ws: Workspace) -> None:
    """Files the agent left in its home go; the home is a fresh copy of /etc/skel."""
    _as_agent(ws, "mkdir -p ~/.config/x && echo stolen > ~/hidden_tests.py && rm -f ~/.profile")
    await ws.before_start()
    home = Path(ws.user.home)
    assert sorted(p.name for p in home.iterdir()) == sorted(p.name for p in Path("/etc/skel").iterdir())
    assert _owners(home) <= {ws.user.uid}


async def test_before_start_keeps_spared_paths(ws: Workspace) -> None:
    """A path registered with spare_path survives before_start; released, it goes."""
    kept = f"/tmp/hud-spared-{uuid.uuid4().hex[:8]}"
    _as_agent(ws, f"mkdir -p {kept}/d && echo s > {kept}/d/socket")
    spare_path(kept)
    try:
        await ws.before_start()
        assert Path(f"{kept}/d/socket").read_text() == "s\n"
    finally:
        release_path(kept)
    await ws.before_start()
    assert not os.path.lexists(kept)


async def test_before_start_clears_only_the_listed_dirs(base: Path,
                                                       throwaway_user: pwd.struct_passwd) -> None:
    """The scratch list is configurable: a directory left off it keeps the agent's files."""
    root = base / "ws"
    root.mkdir()
    os.chown(root, throwaway_user.pw_uid, throwaway_user.pw_gid)
    ws = Workspace(str(root), user=throwaway_user.pw_name, scratch=["/var/tmp"], reset_home=False)
    tag = uuid.uuid4().hex[:8]
    _as_agent(ws, f"echo a > /tmp/hud-kept-{tag} && echo b > /var/tmp/hud-gone-{tag} "
                  f"&& echo c > ~/kept-{tag}")
    try:
        await ws.before_start()
        assert Path(f"/tmp/hud-kept-{tag}").exists() and not Path(f"/var/tmp/hud-gone-{tag}").exists()
        assert (Path(ws.user.home) / f"kept-{tag}").exists()
    finally:
        _as_agent(ws, f"rm -f /tmp/hud-kept-{tag}")


async def test_before_start_without_a_dedicated_user_clears_nothing(tmp_path: Path) -> None:
    """user=None (the daemon's own uid): before_start deletes none of the daemon's files."""
    probe = Path(tempfile.mkstemp(prefix="hud-own-")[1])
    try:
        ws = Workspace(str(tmp_path), user=None)
        await ws.before_start()
        assert probe.exists()
    finally:
        probe.unlink()


async def test_before_start_keeps_the_agents_desktop_serving(ws: Workspace) -> None:
    """Xvnc and openbox run as the agent: after before_start, X clients still connect."""
    need("Xvnc", "openbox", "xdotool", "xprop")
    desktop = DesktopCapability(user=ws.user_name, width=640, height=480)
    await desktop.start()
    try:
        await ws.before_start()
        assert Path(f"/tmp/.X11-unix/X{desktop.number}").exists()
        assert await desktop.xdotool("getdisplaygeometry") == "640 480"
        assert await desktop.healthy()
    finally:
        await desktop.close()


async def test_before_start_keeps_the_agents_browser_serving(ws: Workspace) -> None:
    """Chromium runs as the agent with its temp files outside /tmp: it survives before_start."""
    need("chromium")
    browser = BrowserCapability(user=ws.user_name, args=LOOPBACK_ONLY)
    await browser.start()
    try:
        assert not any(p.owner() == ws.user_name for p in Path("/tmp").glob("*hromium*"))
        await ws.before_start()
        await browser.open("data:text/html,<h1>still here</h1>")
        assert await browser.text("h1") == "still here"
    finally:
        await browser.close()


async def test_agents_system_v_ipc_is_gone_before_grading_and_setup(ws: Workspace) -> None:
    """A 0666 shared memory segment of the agent's (a channel from its graded code to its
    next task) is removed before grading, and again before the next setup."""
    make = ("python3 -c 'import ctypes; print(ctypes.CDLL(None).shmget(0x{key:x}, 4096, "
            "0o1000 | 0o666))'")

    def segments() -> set[str]:
        rows = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
        return {row.split()[1] for row in rows if int(row.split()[7]) == ws.user.uid}

    _as_agent(ws, make.format(key=0x4855AA))
    assert segments()
    await ws.before_grade()
    assert segments() == set()
    await ws.task_ended()
    _as_agent(ws, make.format(key=0x4855AB))
    await ws.before_start()
    assert segments() == set()

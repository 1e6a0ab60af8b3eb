"""hud.capabilities.programs: the helpers hud runs as root come from trusted paths only."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hud.capabilities.programs import TRUSTED_DIRS, program, untrusted_reason
from hud.capabilities.ssh import Workspace
from hud.capabilities.users import User
from hud.errors import InfraError

HERE = Path(__file__).resolve().parent


@pytest.fixture
def trusted_dir() -> Iterator[Path]:
    """A fresh folder whose every ancestor is root's and writable by root only (beside
    this file, not in the world-writable /tmp)."""
    if os.geteuid() == 0 and untrusted_reason(str(HERE), executable=False) is None:
        folder = Path(tempfile.mkdtemp(prefix=".hud-trusted-", dir=HERE))
        folder.chmod(0o755)
        try:
            yield folder
        finally:
            shutil.rmtree(folder)
    else:
        pytest.skip(f"needs root, and {HERE} and its parents root-owned and writable by root only")


def _tool(folder: Path, name: str = "tool") -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_a_helper_resolves_to_a_trusted_absolute_path() -> None:
    """`timeout` resolves to an absolute path in one of the trusted folders."""
    found = program("timeout")
    assert os.path.dirname(found) in TRUSTED_DIRS and untrusted_reason(found) is None


def test_a_candidate_in_a_world_writable_folder_is_passed_over(tmp_path: Path) -> None:
    """A `timeout` in a folder under /tmp (writable by others) is skipped for the next one."""
    planted = _tool(tmp_path, "timeout")
    found = program("timeout", [str(tmp_path), *TRUSTED_DIRS])
    assert found != str(planted) and untrusted_reason(found) is None


def test_a_program_another_user_owns_is_refused(trusted_dir: Path) -> None:
    """A program owned by uid 1000, even in a root-owned folder, is never run."""
    os.chown(_tool(trusted_dir), 1000, 1000)
    with pytest.raises(InfraError, match=r"no trusted 'tool'.*belongs to uid 1000"):
        program("tool", [str(trusted_dir)])


def test_a_group_writable_folder_is_refused(trusted_dir: Path) -> None:
    """A program in a folder its group may write is refused, naming that folder."""
    folder = trusted_dir / "shared"
    folder.mkdir()
    _tool(folder)
    folder.chmod(0o775)
    with pytest.raises(InfraError, match=r"shared is writable by its group"):
        program("tool", [str(folder)])


def test_a_link_through_a_world_writable_folder_is_refused(trusted_dir: Path,
                                                           tmp_path: Path) -> None:
    """A root-owned link in a trusted folder that leads into /tmp is refused."""
    (trusted_dir / "tool").symlink_to(_tool(tmp_path))
    with pytest.raises(InfraError, match=r"/tmp is writable by others"):
        program("tool", [str(trusted_dir)])


def test_a_link_to_a_trusted_program_is_accepted(trusted_dir: Path) -> None:
    """A link whose whole way leads through root's folders to a root program is used."""
    (trusted_dir / "tool").symlink_to(program("true"))
    assert program("tool", [str(trusted_dir)]) == str(trusted_dir / "tool")


def test_no_trusted_candidate_is_an_error_naming_the_fix(tmp_path: Path) -> None:
    """A program found nowhere trusted is an InfraError naming the folders and the fix."""
    with pytest.raises(InfraError, match=r"no trusted 'no-such-tool'.*apt-get install"):
        program("no-such-tool", [str(tmp_path)])


def test_a_name_with_a_slash_is_refused() -> None:
    """Only bare names are resolved; a path is a caller's mistake."""
    with pytest.raises(ValueError, match="bare name"):
        program("bin/sh")


def test_switching_users_runs_choom_and_setpriv_by_absolute_path() -> None:
    """The identity prefix names both helpers by trusted absolute paths, not by name."""
    user = User(name="agent", uid=1000, gid=1000, home="/home/agent", shell="/bin/sh",
                switch=True)
    argv = user.argv(["id"])
    helpers = [argv[0], argv[argv.index("--") + 1]]
    assert [os.path.basename(h) for h in helpers] == ["choom", "setpriv"]
    assert all(untrusted_reason(h) is None for h in helpers)


async def test_a_timeout_planted_on_the_commands_path_never_runs(tmp_path: Path) -> None:
    """run() as root with a PATH whose first folder holds a `timeout` runs the real one."""
    planted = tmp_path / "bin"
    planted.mkdir()
    marker = tmp_path / "ran"
    (planted / "timeout").write_text(f"#!/bin/sh\ntouch {marker}\n")
    (planted / "timeout").chmod(0o755)
    ws = Workspace(str(tmp_path), user=None, env={"PATH": f"{planted}:/usr/bin:/bin"})
    done = await ws.run("echo graded")
    assert (done.code, done.stdout.strip()) == (0, "graded")
    assert not marker.exists()

"""hud.nofollow and hud.grading.leftovers: copying, reading, walking and sweeping without following a
symlink."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from hud import nofollow
from hud.grading import leftovers
from hud.nofollow import Refused

STRANGER = 54_321  # a uid no account has: files chowned to it stand for the grader's


def copy(source: Path, dest: Path, include: list[str], **options) -> nofollow.Copied:
    dest.mkdir()
    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return nofollow.copy_matching(str(source), fd, include, max_bytes=options.pop(
            "max_bytes", 1 << 20), **options)
    finally:
        os.close(fd)


def tree(root: Path, files: list[str]) -> Path:
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    return root


@pytest.mark.parametrize(("pattern", "path", "matches"), [
    ("stats/**/*.py", "stats/core.py", True),
    ("stats/**/*.py", "stats/sub/deep/x.py", True),
    ("stats/**/*.py", "stats/core.txt", False),
    ("stats/**/*.py", "tests/test_core.py", False),
    ("*.py", "stats/core.py", False),
    ("**", "any/thing/at/all", True),
])
def test_glob_match(pattern: str, path: str, matches: bool) -> None:
    """`**` spans any number of folders; `*` stays within one."""
    parts = nofollow.split_pattern(pattern)
    assert nofollow.glob_match(parts, path.split("/")) is matches


def test_patterns_must_stay_inside_the_source() -> None:
    """An absolute pattern or one with `..` is refused."""
    for bad in ("/etc/*", "../x", "a/../../b"):
        with pytest.raises(ValueError, match="must be relative"):
            nofollow.split_pattern(bad)


def test_copy_takes_only_matching_regular_files(tmp_path: Path) -> None:
    """Matching files are copied; bytecode, .pth, a symlink and a fifo are not."""
    src = tree(tmp_path / "src", ["stats/core.py", "stats/__pycache__/core.cpython-311.pyc",
                                  "stats/old.pyc", "stats/evil.pth", "notes.txt"])
    os.symlink("/etc/passwd", src / "stats" / "passwd.py")
    os.mkfifo(src / "stats" / "pipe.py")
    copied = copy(src, tmp_path / "dst", ["stats/**/*.py"])
    assert copied.files == ["stats/core.py"]
    assert sorted(copied.skipped) == ["stats/passwd.py (symlink)",
                                      "stats/pipe.py (not a regular file)"]
    assert sorted(p.name for p in (tmp_path / "dst" / "stats").iterdir()) == ["core.py"]


def test_copy_does_not_walk_folders_no_pattern_can_reach(tmp_path: Path) -> None:
    """A big folder outside the patterns is never listed (no entry budget spent on it)."""
    src = tree(tmp_path / "src", ["stats/core.py", *[f"node_modules/m{i}.js" for i in range(50)]])
    copied = copy(src, tmp_path / "dst", ["stats/*.py"], max_entries=10)
    assert copied.files == ["stats/core.py"]


def test_copy_stops_at_the_size_cap(tmp_path: Path) -> None:
    """Files over the total size cap are refused with the reason."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.py").write_bytes(b"x" * 5000)
    with pytest.raises(Refused, match="over the limit of 1000 bytes"):
        copy(src, tmp_path / "dst", ["**"], max_bytes=1000)


def test_open_dir_refuses_a_symlink_anywhere_on_the_path(tmp_path: Path) -> None:
    """A symlinked folder in the middle of the path is refused."""
    (tmp_path / "real" / "inner").mkdir(parents=True)
    os.symlink(tmp_path / "real", tmp_path / "link")
    with pytest.raises(Refused, match="symlink"):
        nofollow.open_dir(str(tmp_path / "link" / "inner"))


def test_remove_at_removes_a_symlink_not_its_target(tmp_path: Path) -> None:
    """Removing a tree holding a symlink to a folder leaves the folder's files alone."""
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "file").write_text("kept")
    tree(tmp_path / "gone", ["a/b/c.txt"])
    os.symlink(tmp_path / "keep", tmp_path / "gone" / "a" / "link")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        nofollow.remove_at(fd, "gone")
    finally:
        os.close(fd)
    assert not (tmp_path / "gone").exists()
    assert (tmp_path / "keep" / "file").read_text() == "kept"


@pytest.fixture
def as_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("chowning files to another uid needs root")


def test_sweep_removes_what_the_uid_owns_and_keeps_the_rest(as_root, tmp_path: Path) -> None:
    """Entries of the uid go (folders whole); other users' entries stay."""
    root = tree(tmp_path / "root", ["theirs/file", "mine/deep/file", "mine-file", "other"])
    for rel in ("theirs/file", "mine", "mine/deep", "mine/deep/file", "mine-file"):
        os.chown(root / rel, STRANGER, STRANGER)
    removed = leftovers.sweep([str(root)], uid=STRANGER, gid=STRANGER, since_ns=time.time_ns())
    assert sorted(removed) == [f"{root}/mine", f"{root}/mine-file", f"{root}/theirs/file"]
    assert sorted(p.name for p in root.iterdir()) == ["other", "theirs"]


def test_sweep_removes_writable_files_changed_during_the_run(as_root, tmp_path: Path) -> None:
    """A world-writable file changed since the run began goes; one untouched stays."""
    root = tree(tmp_path / "root", ["old", "filled"])
    for name in ("old", "filled"):
        (root / name).chmod(0o666)
    started = time.time_ns()
    time.sleep(0.05)  # ctime granularity: the fill must be after `started`
    with open(root / "filled", "a") as handle:
        handle.write("hidden inputs")
    removed = leftovers.sweep([str(root)], uid=STRANGER, gid=STRANGER, since_ns=started)
    assert removed == [f"{root}/filled"]
    assert (root / "old").exists()


def test_sweep_passes_over_a_symlinked_root(as_root, tmp_path: Path) -> None:
    """A root that is a symlink is not followed (its target's files stay)."""
    target = tree(tmp_path / "target", ["file"])
    os.chown(target / "file", STRANGER, STRANGER)
    os.symlink(target, tmp_path / "link")
    assert leftovers.sweep([str(tmp_path / "link")], uid=STRANGER, gid=STRANGER, since_ns=0) == []
    assert (target / "file").exists()

"""Filesystem work root does on paths the agent can write, never following a symlink.

Root must never follow a path the agent can write: a symlink planted (or swapped in at the
right moment) would turn "copy the project" into "read /etc/shadow" and "delete the
grader's leftovers" into "delete /etc". Every operation here therefore:

- opens paths **component by component** from `/` with `O_NOFOLLOW | O_DIRECTORY` and
  `dir_fd`-relative calls, so no component anywhere on the path may be a symlink;
- `lstat`s an entry, opens it with `O_NOFOLLOW`, and checks the opened object is the one
  it examined (same device and inode, still a regular file) before reading it;
- walks trees iteratively with O(1) open descriptors (climbing back up through `..` and
  checking the parent's identity), so a directory chain of any depth is neither a
  recursion error nor a descriptor leak, and a bounded number of entries is visited.

What it refuses is reported as `Refused` with a reason in words; callers that grade turn
that into a score of 0 with the reason, since the agent can cause it.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# never copied into a grading sandbox: bytecode could shadow the source being graded, and a
# .pth is only ever processed in site dirs, but nothing good comes of shipping one
SKIPPED_DIRS = frozenset({"__pycache__"})
SKIPPED_SUFFIXES = (".pyc", ".pyo", ".pth")
CHUNK = 1 << 16
MAX_ENTRIES = 200_000


class Refused(Exception):
    """A path is not what it must be (a symlink, not a regular file, too big, missing)."""


def _reason(path: str, exc: OSError) -> str:
    if exc.errno in (errno.ELOOP, errno.EMLINK):
        return f"{path} is (or passes through) a symlink"
    if exc.errno == errno.ENOTDIR:
        return f"{path} is not a directory (or passes through a symlink)"
    if exc.errno == errno.ENOENT:
        return f"{path} does not exist"
    return f"{path}: {exc.strerror}"


def open_dir(path: str) -> int:
    """Open the absolute directory `path` with no symlink anywhere on the way.

    Returns:
        A directory descriptor; the caller closes it.

    Raises:
        ValueError: `path` is not absolute.
        Refused: a component is missing, not a directory, or a symlink.
    """
    if not os.path.isabs(path):
        raise ValueError(f"need an absolute path, got {path!r}")
    fd = os.open("/", DIR_FLAGS)
    try:
        for part in [p for p in os.path.normpath(path).split("/") if p]:
            try:
                child = os.open(part, DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise Refused(_reason(path, exc)) from None
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_regular(dir_fd: int, name: str, shown: str) -> tuple[int, os.stat_result]:
    """Open regular file `name` in `dir_fd` for reading; refuse anything else."""
    try:
        fd = os.open(name, FILE_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        raise Refused(_reason(shown, exc)) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise Refused(f"{shown} is not a regular file")
    return fd, st


def write_new(dir_fd: int, name: str, data: bytes, mode: int = 0o644) -> None:
    """Create `name` in `dir_fd` (it must not exist; never through a symlink) with `data`."""
    fd = os.open(name, NEW_FILE_FLAGS, mode, dir_fd=dir_fd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _read_fd(fd: int, limit: int) -> bytes:
    """Up to `limit` + 1 bytes from `fd` (the extra byte tells the caller it was over)."""
    parts, total = [], 0
    while total <= limit:
        chunk = os.read(fd, min(CHUNK, limit + 1 - total))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)


def read_file(path: str, max_bytes: int) -> bytes:
    """The content of regular file `path`, reached without following any symlink.

    Raises:
        ValueError: `path` is not absolute.
        Refused: it is missing, a symlink (or under one), not a regular file, or bigger
            than `max_bytes`.
    """
    parent, name = os.path.split(os.path.normpath(path))
    dir_fd = open_dir(parent)
    try:
        fd, st = _open_regular(dir_fd, name, path)
    finally:
        os.close(dir_fd)
    try:
        data = _read_fd(fd, max_bytes)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise Refused(f"{path} is over the limit of {max_bytes} bytes ({max(st.st_size, len(data))})")
    return data


# -- include globs ------------------------------------------------------------------------


def split_pattern(pattern: str) -> tuple[str, ...]:
    """`a/**/*.py` as its parts; raises ValueError for an absolute pattern or one with `..`."""
    parts = tuple(p for p in pattern.split("/") if p not in ("", "."))
    if pattern.startswith("/") or ".." in parts or not parts:
        raise ValueError(f"include pattern {pattern!r} must be relative, non-empty, without '..'")
    return parts


def glob_match(pattern: Sequence[str], parts: Sequence[str]) -> bool:
    """Whether relative path `parts` matches `pattern`; `**` spans any number of folders."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(glob_match(pattern[1:], parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], pattern[0]) and glob_match(pattern[1:], parts[1:])


def may_contain(pattern: Sequence[str], folder: Sequence[str]) -> bool:
    """Whether something under folder `folder` could match `pattern` (prunes the walk)."""
    for i, part in enumerate(folder):
        if i >= len(pattern) - 1 and pattern[-1:] != ("**",):
            return False
        if pattern[i] == "**":
            return True
        if not fnmatchcase(part, pattern[i]):
            return False
    return True


# -- trees ----------------------------------------------------------------------------------

Visit = Callable[[int, os.stat_result, str, os.stat_result], bool]


def _open_dir_at(dir_fd: int, name: str) -> int:
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except PermissionError:
        # only without root: a directory the sandboxed code (our own uid) made unreadable
        os.chmod(name, 0o700, dir_fd=dir_fd)
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)


def walk(top_fd: int, visit: Visit, leave: Callable[[int, str], None] | None = None,
         *, max_entries: int = MAX_ENTRIES) -> None:
    """Depth-first over the tree under `top_fd`, never following a symlink.

    `visit(dir_fd, dir_stat, name, entry_stat)` is called for each entry and returns True
    to descend into a directory; `leave(dir_fd, name)` after a directory's contents.

    Raises:
        Refused: more than `max_entries` names, or the tree moved under the walk.
    """
    fd = os.dup(top_fd)
    here = os.fstat(fd)
    names = sorted(os.listdir(fd), reverse=True)
    seen = len(names)
    stack: list[tuple[list[str], str, os.stat_result]] = []
    try:
        while True:
            if seen > max_entries:
                raise Refused(f"over {max_entries} files and folders")
            if names:
                name = names.pop()
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if visit(fd, here, name, st) and stat.S_ISDIR(st.st_mode):
                    child = _open_dir_at(fd, name)
                    stack.append((names, name, here))
                    os.close(fd)
                    fd, here = child, os.fstat(child)
                    names = sorted(os.listdir(fd), reverse=True)
                    seen += len(names)
                continue
            if not stack:
                return
            names, name, parent = stack.pop()
            up = os.open("..", DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd, here = up, os.fstat(up)
            if (here.st_dev, here.st_ino) != (parent.st_dev, parent.st_ino):
                raise Refused("a folder moved while it was being walked")
            if leave is not None:
                leave(fd, name)
    finally:
        os.close(fd)


def remove_at(dir_fd: int, name: str) -> None:
    """Delete `name` in `dir_fd` and, for a directory, everything under it; no symlink is
    followed (a symlink is removed, not its target)."""
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    top = _open_dir_at(dir_fd, name)

    def visit(fd: int, _here: os.stat_result, child: str, cst: os.stat_result) -> bool:
        if stat.S_ISDIR(cst.st_mode):
            return True
        os.unlink(child, dir_fd=fd)
        return False

    try:
        walk(top, visit, lambda fd, child: os.rmdir(child, dir_fd=fd), max_entries=1 << 62)
    finally:
        os.close(top)
    os.rmdir(name, dir_fd=dir_fd)


@dataclass
class Copied:
    """What `copy_matching` copied (relative paths), what it skipped and why, and the bytes."""

    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    size: int = 0


def copy_matching(source: str, dest_fd: int, include: Sequence[str], *, max_bytes: int,
                  max_entries: int = MAX_ENTRIES) -> Copied:
    """Copy the regular files under `source` matching `include` into directory `dest_fd`.

    Symlinks, devices, fifos, sockets, hard-linked files, `__pycache__`, `*.pyc` and
    `*.pth` are skipped (and listed in `skipped`); copies are 0644 (0755 if executable).

    Raises:
        ValueError: `source` is not absolute, or a pattern is absolute or has `..`.
        Refused: `source` is missing or reached through a symlink, the files matched are
            over `max_bytes` together, or there are over `max_entries` names.
    """
    patterns = [split_pattern(p) for p in include]
    copied = Copied()
    src_top = open_dir(source)
    # per directory being walked: the matching destination descriptor
    dests: dict[tuple[int, int], int] = {}

    def dest_for(here: os.stat_result) -> int:
        return dests[(here.st_dev, here.st_ino)]

    def visit(fd: int, here: os.stat_result, name: str, st: os.stat_result) -> bool:
        rel = (*rels[(here.st_dev, here.st_ino)], name)
        shown = "/".join(rel)
        if stat.S_ISDIR(st.st_mode):
            if name in SKIPPED_DIRS or not any(may_contain(p, rel) for p in patterns):
                return False
            os.mkdir(name, 0o755, dir_fd=dest_for(here))
            dests[(st.st_dev, st.st_ino)] = os.open(name, DIR_FLAGS, dir_fd=dest_for(here))
            rels[(st.st_dev, st.st_ino)] = rel
            return True
        if not any(glob_match(p, rel) for p in patterns) or name.endswith(SKIPPED_SUFFIXES):
            return False
        if stat.S_ISLNK(st.st_mode):
            copied.skipped.append(f"{shown} (symlink)")
        elif not stat.S_ISREG(st.st_mode):
            copied.skipped.append(f"{shown} (not a regular file)")
        elif st.st_nlink != 1:
            copied.skipped.append(f"{shown} (hard link)")
        else:
            _copy_file(fd, name, st, dest_for(here), shown, copied, max_bytes)
        return False

    def leave(fd: int, name: str) -> None:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        os.close(dests.pop((st.st_dev, st.st_ino)))  # O(depth) descriptors, not O(folders)

    top_st = os.fstat(src_top)
    dests[(top_st.st_dev, top_st.st_ino)] = os.dup(dest_fd)
    rels: dict[tuple[int, int], tuple[str, ...]] = {(top_st.st_dev, top_st.st_ino): ()}
    try:
        walk(src_top, visit, leave, max_entries=max_entries)
    finally:
        os.close(src_top)
        for fd in dests.values():
            os.close(fd)
    return copied


def _copy_file(src_dir: int, name: str, st: os.stat_result, dest_dir: int, shown: str,
               copied: Copied, max_bytes: int) -> None:
    fd, opened = _open_regular(src_dir, name, shown)
    try:
        if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino) or opened.st_nlink != 1:
            copied.skipped.append(f"{shown} (changed while it was copied)")
            return
        budget = max_bytes - copied.size
        data = _read_fd(fd, budget)
    finally:
        os.close(fd)
    if len(data) > budget:
        raise Refused(f"the files to copy are over the limit of {max_bytes} bytes (at {shown})")
    write_new(dest_dir, name, data, 0o755 if opened.st_mode & 0o111 else 0o644)
    copied.files.append(shown)
    copied.size += len(data)


"""`hud view --export OUT`: the viewer's pages as static files that open from `file://`.

One flat folder of HTML files with relative links (`ExportLinks`), the stylesheet and
script beside them, and each job's screenshots copied under `shots/JOB/`, so the folder
can be carried to an air-gapped machine and opened in any browser. What needs a server
is left out: live updates, the raw event behind a fold, and comparing jobs picked by
hand; instead every leaderboard with two or more jobs gets its comparison page.

OUT must be empty, missing, or an earlier export (it holds `MARKER`): an export never
overwrites a folder it did not write. Inside OUT nothing is written through a symlink
(an earlier export may have been tampered with): every file and folder is reached
relative to OUT's descriptor with `O_NOFOLLOW`, and a link found where a file or folder
goes is removed (the link, not what it names) and replaced.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from hud.errors import ConfigError
from hud.view import pages
from hud.view.render import STATIC, STATIC_FILES, ExportLinks, Renderer
from hud.view.store import PNG_SIGNATURE, SHOT, NotFound, Store

MARKER = ".hud-view-export"


@dataclass
class Exported:
    """What an export wrote."""

    folder: Path
    pages: int
    screenshots: int


DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class Folder:
    """The export folder, written only relative to its descriptor, never through a link."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._dirs: dict[str, int] = {"": self.fd}

    def _sub(self, name: str) -> int:
        """Subfolder `name` (a/b) of OUT, made if missing; a link there is replaced."""
        if name in self._dirs:
            return self._dirs[name]
        parent_name, _, base = name.rpartition("/")
        parent = self._sub(parent_name)
        _clear(parent, base, folder=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(base, 0o755, dir_fd=parent)
        self._dirs[name] = os.open(base, DIR_FLAGS, dir_fd=parent)
        return self._dirs[name]

    def write(self, name: str, data: bytes) -> None:
        """Write file `name` (a path relative to OUT): a new file, never through a link.

        Raises:
            ConfigError: something keeps appearing where the file goes.
        """
        folder, _, base = name.rpartition("/")
        parent = self._sub(folder)
        _clear(parent, base, folder=False)
        try:
            fd = os.open(base, NEW_FILE, 0o644, dir_fd=parent)
        except OSError as exc:
            raise ConfigError(f"--export {self.path}: cannot write {name} ({exc.strerror}); "
                              f"is something else writing in the folder?") from None
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)

    def close(self) -> None:
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()


def _clear(dir_fd: int, name: str, *, folder: bool) -> None:
    """Make way for a file (or keep a real folder, when `folder`) at `name` in `dir_fd`:
    a file or link there is removed, never followed.

    Raises:
        ConfigError: a folder is where a file goes.
    """
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        if folder:
            return
        raise ConfigError(f"--export: a folder {name} is where a file goes; remove it")
    os.unlink(name, dir_fd=dir_fd)


def _prepare(out: Path) -> Folder:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--export {out}: not a folder; name a new or empty folder")
    marker = out / MARKER
    earlier = marker.is_file() and not marker.is_symlink()
    if out.is_dir() and any(out.iterdir()) and not earlier:
        raise ConfigError(f"--export {out}: the folder is not empty and is not an earlier "
                          f"export; name a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    folder = Folder(out)
    try:
        folder.write(MARKER, b"written by hud view --export; safe to overwrite\n")
        for name in STATIC_FILES:
            folder.write(f"static/{name}", (STATIC / name).read_bytes())
    except BaseException:
        folder.close()
        raise
    return folder


def _shots(store: Store, job_id: str, out: Folder) -> int:
    """Copy the job's screenshots (PNG files with a valid name) under shots/JOB/."""
    count = 0
    folder = store.inside(job_id)
    for path in sorted(folder.glob("*.png")):
        if not SHOT.fullmatch(path.name) or path.is_symlink():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue  # deleted since listed
        if data.startswith(PNG_SIGNATURE):
            out.write(f"shots/{job_id}/{path.name}", data)
            count += 1
    return count


def export(store: Store, out: Path) -> Exported:
    """Write every page of `store` under `out`.

    Raises:
        ConfigError: `out` is a file, or a non-empty folder that is not an export.
    """
    folder = _prepare(out)
    try:
        return _export(store, out, folder)
    finally:
        folder.close()


def _export(store: Store, out: Path, folder: Folder) -> Exported:
    renderer = Renderer(ExportLinks())
    links = ExportLinks()
    written = 0

    def write(name: str, page: pages.Page) -> None:
        nonlocal written
        template, context = page
        folder.write(name, renderer.page(template, **context).encode("utf-8"))
        written += 1

    write(links.index(), pages.jobs_page(store))
    write(links.leaderboard(), pages.leaderboard_page(store))
    shots = 0
    for entry in store.jobs():
        write(links.job(entry.id), pages.job_page(store, entry.id))
        if entry.job is None:
            continue
        shots += _shots(store, entry.id, folder)
        traces = [run.trace_id for run in entry.job.runs] + store.in_progress(entry)
        for trace_id in traces:
            try:
                path = store.trace_path(entry.id, trace_id)
            except NotFound:
                continue  # listed in job.json, but the trace file is gone
            for page in range(1, len(store.index(path).pages) + 1):
                write(links.run(entry.id, trace_id, page),
                      pages.run_page(store, entry.id, trace_id, page))
    for board in pages.boards(store):
        if len(board.jobs) > 1:
            write(links.compare([], board.key),
                  pages.compare_page(store, [job.id for job in board.jobs], board.key))
    return Exported(out, written, shots)

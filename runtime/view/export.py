"""`hud view --export OUT`: the viewer's pages as static files that open from `file://`.

One flat folder of HTML files with relative links (`ExportLinks`), the stylesheet and
script beside them, and each job's screenshots copied under `shots/JOB/`, so the folder
can be carried to an air-gapped machine and opened in any browser. What needs a server
is left out: live updates, the raw event behind a fold, and comparing jobs picked by
hand; instead every leaderboard with two or more jobs gets its comparison page.

OUT must be empty, missing, or an earlier export (it holds `MARKER`): an export never
overwrites a folder it did not write.
"""

from __future__ import annotations

import shutil
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


def _prepare(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--export {out}: not a folder; name a new or empty folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise ConfigError(f"--export {out}: the folder is not empty and is not an earlier "
                          f"export; name a new or empty folder")
    (out / "static").mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by hud view --export; safe to overwrite\n")
    for name in STATIC_FILES:
        shutil.copyfile(STATIC / name, out / "static" / name)


def _shots(store: Store, job_id: str, out: Path) -> int:
    """Copy the job's screenshots (PNG files with a valid name) under shots/JOB/."""
    count = 0
    folder = store.inside(job_id)
    for path in sorted(folder.glob("*.png")):
        if not SHOT.fullmatch(path.name) or path.is_symlink():
            continue
        data = path.read_bytes()
        if data.startswith(PNG_SIGNATURE):
            target = out / "shots" / job_id / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            count += 1
    return count


def export(store: Store, out: Path) -> Exported:
    """Write every page of `store` under `out`.

    Raises:
        ConfigError: `out` is a file, or a non-empty folder that is not an export.
    """
    _prepare(out)
    renderer = Renderer(ExportLinks())
    links = ExportLinks()
    written = 0

    def write(name: str, page: pages.Page) -> None:
        nonlocal written
        template, context = page
        (out / name).write_text(renderer.page(template, **context), encoding="utf-8")
        written += 1

    write(links.index(), pages.jobs_page(store))
    write(links.leaderboard(), pages.leaderboard_page(store))
    shots = 0
    for entry in store.jobs():
        write(links.job(entry.id), pages.job_page(store, entry.id))
        if entry.job is None:
            continue
        shots += _shots(store, entry.id, out)
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

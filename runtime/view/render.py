"""HTML from the viewer's templates: one Jinja2 environment, and the two ways to link.

Design decisions:
- Autoescape is on for every template and no template marks trace data `|safe`: every
  string from a trace or a job file reaches the page as text. Links are built here from
  ids that `hud.view.store` validated, never from trace text, so a `javascript:` link
  in a model's output stays text.
- `StrictUndefined`: a template that names a missing value fails loudly in the tests
  instead of rendering an empty cell.
- The same templates serve two link schemes: `ServedLinks` (the web app: absolute paths,
  live pages, the raw event) and `ExportLinks` (static files side by side in one folder,
  relative links, so the pages open from `file://`; no live updates, no raw events).
"""

from __future__ import annotations

import math
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hud.errors import ConfigError
from hud.view.events import chip, fold
from hud.view.traceindex import MAX_SECONDS

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
#: the files under static/ a page may load (nothing else is served from there)
STATIC_FILES = ("view.css", "view.js", "favicon.svg")
STATUSES = ("completed", "timeout", "grade_error", "agent_error", "infra_error")


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


class ServedLinks:
    """Links of the web app (`hud view`)."""

    live = True
    export = False

    def index(self) -> str:
        return "/"

    def leaderboard(self) -> str:
        return "/leaderboard"

    def job(self, job_id: str) -> str:
        return f"/job/{_q(job_id)}"

    def run(self, job_id: str, trace_id: str, page: int = 1) -> str:
        suffix = f"?page={page}" if page > 1 else ""
        return f"/job/{_q(job_id)}/run/{_q(trace_id)}{suffix}"

    def shot(self, job_id: str, name: str) -> str:
        return f"/job/{_q(job_id)}/shot/{_q(name)}"

    def compare(self, job_ids: Sequence[str], key: str = "") -> str:
        return "/compare?" + urllib.parse.urlencode([("job", i) for i in job_ids])

    def raw(self, job_id: str, trace_id: str, number: int) -> str | None:
        return f"/job/{_q(job_id)}/run/{_q(trace_id)}/raw/{number}"

    def stamp(self, job_id: str | None = None, trace_id: str | None = None) -> str:
        query = [("job", job_id)] if job_id else []
        query += [("trace", trace_id)] if trace_id else []
        return "/api/stamp" + ("?" + urllib.parse.urlencode(query) if query else "")

    def static(self, name: str) -> str:
        return f"/static/{name}"


class ExportLinks(ServedLinks):
    """Links between the files of a static export (one flat folder, relative links).

    A run page is `run-JOB.TRACE[.pN].html`: ids hold no ".", so no two runs (or pages)
    share a file name."""

    live = False
    export = True

    def index(self) -> str:
        return "index.html"

    def leaderboard(self) -> str:
        return "leaderboard.html"

    def job(self, job_id: str) -> str:
        return f"job-{job_id}.html"

    def run(self, job_id: str, trace_id: str, page: int = 1) -> str:
        # "." is in no id: run-A.B-C and run-A-B.C are two files
        return f"run-{job_id}.{trace_id}" + (f".p{page}" if page > 1 else "") + ".html"

    def shot(self, job_id: str, name: str) -> str:
        return f"shots/{job_id}/{name}"

    def compare(self, job_ids: Sequence[str], key: str = "") -> str:
        return f"compare-{key}.html"

    def raw(self, job_id: str, trace_id: str, number: int) -> str | None:
        return None

    def static(self, name: str) -> str:
        return f"static/{name}"


#: numbers beyond this magnitude (or not finite, or not numbers) are shown as "-"
HUGE = 1e12


def finite(value: Any) -> float | None:
    """`value` as a float when it is a finite number within `HUGE`, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int) and abs(value) > HUGE:
        return None
    number = float(value)
    return number if math.isfinite(number) and abs(number) <= HUGE else None


def num(value: float | None, digits: int = 3) -> str:
    number = finite(value)
    return "-" if number is None else f"{number:.{digits}f}"


def signed(value: float | None) -> str:
    number = finite(value)
    if number is None:
        return "-"
    return "0" if abs(number) < 5e-4 else f"{number:+.3f}".replace("-", "−")


def when(timestamp: float | None) -> str:
    stamp = finite(timestamp)
    if not stamp:
        return "-"
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))
    except (ValueError, OverflowError, OSError):
        return "-"


def duration(value: float | None) -> str:
    seconds = finite(value)
    if seconds is None or seconds < 0 or seconds > MAX_SECONDS:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    return f"{minutes // 60} h {minutes % 60} min"


def since(timestamp: float | None) -> str:
    stamp = finite(timestamp)
    return "-" if not stamp else duration(max(0.0, time.time() - stamp))


def ago(timestamp: float | None) -> str:
    stamp = finite(timestamp)
    return "-" if not stamp else duration(max(0.0, time.time() - stamp)) + " ago"


def status_class(status: Any) -> str:
    """A CSS class for a status from a job file (an unknown one gets a neutral class)."""
    return f"s-{status}" if status in STATUSES else "s-other"


def percent(value: float | None) -> str:
    """A 0..1 reward as an SVG width in percent, clamped."""
    number = finite(value)
    return "0" if number is None else f"{max(0.0, min(1.0, number)) * 100:.1f}"


class Renderer:
    """Renders the viewer's pages with one set of links.

    Raises:
        ConfigError: (from `__init__`) Jinja2 is not installed.
    """

    def __init__(self, links: ServedLinks) -> None:
        try:
            import jinja2
        except ImportError:
            raise ConfigError(MISSING_JINJA) from None
        self.links = links
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.env.filters.update(num=num, signed=signed, when=when, duration=duration,
                                ago=ago, since=since, status_class=status_class, percent=percent)
        self.env.globals.update(links=links, statuses=STATUSES, fold=fold, chip=chip)

    def page(self, template: str, **context: Any) -> str:
        return self.env.get_template(template).render(**context)


MISSING_JINJA = ("hud view needs Jinja2, which hud-python's `view` extra installs: "
                 "pip install 'hud-python[view]'")

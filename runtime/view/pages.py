"""What each page shows, gathered from the runs folder (the web app and the export share it).

Each function returns the template's name and its context; `hud.view.app` renders it as
a response and `hud.view.export` as a file. A run's header (prompt, answer, grade, error
and traceback, the phases) comes from the few events the trace index located, and its
trace a page of events at a time, so the size of a trace never sets the size of a page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hud.eval.results import Run
from hud.view.events import fold, item
from hud.view.scores import Board, compare, leaderboards, task_rows
from hud.view.store import NotFound, Store
from hud.view.traceindex import TraceIndex, seconds

PHASES = ("placement", "start", "agent", "grade", "teardown")
#: kinds of events drawn as ticks under the timeline, and at most how many ticks
TICK_KINDS = {"model_turn": "model", "tool_result": "tool", "screenshot": "shot",
              "error": "error", "computer_action": "action", "browser_action": "action"}
MAX_TICKS = 400
Page = tuple[str, dict[str, Any]]


def jobs_page(store: Store) -> Page:
    bad: list[str] = []
    entries = store.jobs(bad)
    return "jobs.html", {"entries": entries, "bad": bad, "live": True, "stamp": (),
                         "running": [e for e in entries if e.state == "running"],
                         "root": str(store.root)}


def job_page(store: Store, job_id: str) -> Page:
    entry = store.job(job_id)
    if entry.job is None:
        return "unreadable.html", {"entry": entry, "live": False, "stamp": ()}
    job = entry.job
    final = {id(run) for run in job.final_runs}
    runs = sorted(job.runs, key=lambda r: (r.slug, r.index, r.attempt))
    return "job.html", {
        "entry": entry, "job": job, "rows": task_rows(job), "stats": job.stats,
        "runs": [(run, id(run) in final) for run in runs],
        "in_progress": store.in_progress(entry), "live": entry.state == "running",
        "stamp": (entry.id,),
        "retried": len(job.runs) - len(final)}


@dataclass
class Phase:
    name: str
    seconds: float
    x: float  # percent of the bar
    width: float


def _phases(run: Run | None, index: TraceIndex, events: dict[int, dict[str, Any]]) -> list[Phase]:
    """The rollout's phases: from the run's timings, or (a run still going or not in
    job.json) from the times of the events that end each phase."""
    spans: dict[str, float] = {}
    if run is not None and run.timings:
        spans = {k: t for k, v in run.timings.items() if (t := seconds(v)) is not None and t >= 0}
    else:
        marks = {"placement": "placement", "start": "start", "agent": "answer",
                 "grade": "grade", "teardown": "end"}
        last = 0.0
        for phase in PHASES:
            numbers = index.summary.get(marks[phase]) or (
                index.summary.get("error") or index.summary.get("timeout")
                if phase == "agent" else None)
            t = seconds(events.get(numbers[-1], {}).get("t")) if numbers else None
            if t is None:
                latest = max((x for x in index.stamps if not math.isnan(x)), default=None)
                if latest is not None and latest > last:
                    spans[phase] = latest - last
                break
            spans[phase] = max(0.0, t - last)
            last = t
    order = [p for p in PHASES if p in spans] + [p for p in spans if p not in PHASES]
    total = sum(spans[p] for p in order) or 1.0
    phases, x = [], 0.0
    for name in order:
        width = spans[name] / total * 100
        phases.append(Phase(name, spans[name], x, width))
        x += width
    return phases


def _ticks(index: TraceIndex, total: float) -> list[tuple[float, str]]:
    marks = [(t, TICK_KINDS[k]) for k, t in zip(index.types, index.stamps, strict=True)
             if k in TICK_KINDS and not math.isnan(t)]
    step = max(1, math.ceil(len(marks) / MAX_TICKS))
    return [(min(100.0, t / total * 100), kind) for t, kind in marks[::step]] if total else []


#: of these event types the header shows the last one; of the others the first
LAST = ("answer", "grade", "end")


def run_page(store: Store, job_id: str, trace_id: str, page: int = 1) -> Page:
    entry = store.job(job_id)
    path = store.trace_path(job_id, trace_id)
    index = store.index(path)
    run = next((r for r in entry.job.runs if r.trace_id == trace_id), None) if entry.job else None
    pages = len(index.pages)
    if not 1 <= page <= pages:
        raise NotFound(f"trace {trace_id} has {pages} page(s) of events, not {page}")
    first = index.pages[page - 1]
    stop = index.pages[page] if page < pages else index.count
    marks = {kind: numbers[-1] if kind in LAST else numbers[0]
             for kind, numbers in index.summary.items()}
    error_numbers = index.summary.get("error", [])
    events = store.events(path, sorted({*marks.values(), *error_numbers, *range(first, stop)}))
    header = {kind: events.get(number, {}) for kind, number in marks.items()}
    phases = _phases(run, index, events)
    total = sum(p.seconds for p in phases)
    task = run.task.model_dump() if run else header.get("rollout", {}).get("task")
    status = run.status if run else header.get("end", {}).get("status") or (
        "running" if entry.state == "running" else "unfinished")
    # the trace's answer event, else the run's: a run with neither has no answer to show
    answer = header["answer"].get("answer") if "answer" in header else run.answer if run else None
    grade = run.grade if run else {k: v for k, v in header.get("grade", {}).items()
                                   if k not in ("t", "type")}
    return "run.html", {
        "entry": entry, "run": run, "trace_id": trace_id, "status": status,
        "task": task if isinstance(task, dict) else {},
        "reward": run.reward if run else header.get("end", {}).get("reward"),
        "prompt": fold(header["start"].get("prompt")) if "start" in header else None,
        "answer": fold(answer) if answer is not None else None,
        "score": grade.get("score"), "grade": {k: v for k, v in grade.items() if k != "score"},
        "errors": [events[n] for n in error_numbers if n in events],
        "shown": {marks[k] for k in ("start", "answer", "grade") if k in marks}
        | set(error_numbers),
        "phases": phases, "total": total, "ticks": _ticks(index, total),
        "items": [item(n, events[n]) for n in range(first, stop) if n in events],
        "usage": index.usage, "count": index.count, "bad": index.bad,
        "page": page, "pages": pages, "first": first, "stop": stop,
        "live": run is None and entry.state == "running", "stamp": (entry.id, trace_id)}


def compare_page(store: Store, job_ids: list[str], key: str = "") -> Page:
    if len(job_ids) < 2:
        return "compare.html", {"comparison": None, "live": False, "entries": [], "stamp": (),
                                "choices": [e for e in store.jobs() if e.job], "key": key}
    entries = []
    for job_id in job_ids:
        entry = store.job(job_id)
        if entry.job is None:
            raise NotFound(f"job {job_id} is unreadable: {entry.error}")
        entries.append(entry)
    comparison = compare([e.job for e in entries if e.job])
    return "compare.html", {"comparison": comparison, "entries": entries, "choices": [], "stamp": (),
                            "live": any(e.state == "running" for e in entries), "key": key}


def boards(store: Store) -> list[Board]:
    return leaderboards([e.job for e in store.jobs() if e.job is not None])


def leaderboard_page(store: Store) -> Page:
    return "leaderboard.html", {"boards": boards(store), "live": True, "stamp": ()}


"""Helpers for the viewer's tests: fixture jobs (real `hud eval` runs and hand-written
traces), a real `hud view` subprocess, and Debian's Chromium under Playwright."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hud.clients.rfb import encode_png
from hud.eval.results import Job, Run
from hud.eval.traces import TraceWriter, write_job
from hud.task import Task

ROOT = Path(__file__).resolve().parents[2]
ENVS = ROOT / "tests" / "envs"
CHROMIUM = "/usr/bin/chromium"
URL = re.compile(r"http://127\.0\.0\.1:\d+/")
#: what the hostile trace tries; each one, run, would set window.__pwned or open a dialog
XSS = ["<script>window.__pwned=1;alert(1)</script>",
       "<img src=x onerror=\"window.__pwned=2;alert(2)\">",
       "<a href=\"javascript:window.__pwned=3;alert(3)\">click me</a> [md](javascript:alert(4))",
       "</pre></details></main><svg onload=alert(5)><iframe src=\"javascript:alert(6)\">"]


def _env(runs: Path, extra: dict[str, str] | None) -> dict[str, str]:
    return {**os.environ, "HUD_RUNS_DIR": str(runs), **(extra or {})}


def start(runs: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`hud ARGS` started as a subprocess over the runs folder `runs`."""
    return subprocess.Popen([sys.executable, "-m", "hud.cli.main", *args], env=_env(runs, env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)


def hud(runs: Path, *args: str, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    """`hud ARGS` run to its end over the runs folder `runs`."""
    return subprocess.run([sys.executable, "-m", "hud.cli.main", *args], env=_env(runs, env),
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def evals(runs: Path, *argvs: list[str]) -> list[str]:
    """Run several `hud eval --json` at once; their job ids, in order."""
    procs = [start(runs, "eval", *argv, "--json") for argv in argvs]
    ids = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode in (0, 3), err
        ids.append(re.search(r'"id": "([^"]+)"', out).group(1))  # type: ignore[union-attr]
    return ids


def png(width: int = 320, height: int = 200) -> bytes:
    """A real PNG: a colour gradient."""
    rgb = bytes(v for y in range(height) for x in range(width)
                for v in (x * 255 // width, y * 255 // height, 160))
    return encode_png(width, height, rgb)


def hostile_job(runs: Path) -> tuple[str, str]:
    """A hand-written job whose every field a model or env controls tries to run script;
    its one run has a real screenshot. Returns (job id, trace id)."""
    job_id, trace_id = "xss-job", "hostile0run1"
    task = Task(env="xss-env", id="count_letter", args={"word": XSS[0], "note": XSS[1],
                                                        "link": "javascript:alert(7)"})
    trace = TraceWriter(runs / job_id / f"{trace_id}.jsonl")
    trace.event("rollout", task=task.model_dump(mode="json"), agent=XSS[0], group_id="g1",
                index=0, attempt=1)
    trace.event("placement", placement="local", note=XSS[1])
    trace.event("start", prompt="Count: " + " ".join(XSS), frame={"hint": XSS[2]})
    trace.event("model_turn", step=1, model=XSS[1], text="I will look. " + " ".join(XSS),
                tool_calls=[{"id": "c1", "name": "computer", "arguments": {
                    "action": "screenshot", "why": XSS[3]}}],
                usage={"input_tokens": 1200, "output_tokens": 80}, finish="tool_use",
                thinking=XSS[0])
    shot = f"{trace_id}-0001.png"
    (runs / job_id / shot).write_bytes(png())
    # named like a screenshot, but not a PNG: never served
    (runs / job_id / f"{trace_id}-0002.png").write_text(XSS[0])
    trace.event("computer_action", action="screenshot")
    trace.event("screenshot", file=shot, source="desktop", bytes=len(png()))
    trace.event("screenshot", file="../../../etc/passwd", source=XSS[1])
    trace.event("screenshot", file='x.png" onerror="alert(8)', source="desktop")
    trace.event("tool_result", step=1, id="c1", name="computer", text=" ".join(XSS),
                is_error=False, images=1, seconds=0.2)
    trace.event(XSS[0], payload=XSS[1])
    trace.event("answer", answer="3 " + XSS[2], stop_reason="answered")
    trace.event("error", phase="grade", error=XSS[0], traceback="Traceback:\n  " + XSS[3])
    trace.event("grade", score=0.5, info={"why": XSS[1]})
    trace.event("end", status="completed", reward=0.5, timings={})
    trace.close()
    run = Run(trace_id=trace_id, job_id=job_id, task=task, group_id="g1", status="completed",
              reward=0.5, grade={"score": 0.5, "info": {"why": XSS[1]}}, prompt=XSS[0],
              answer="3 " + XSS[2], stop_reason="answered", error=None,
              timings={"placement": 0.1, "start": 0.2, "agent": 1.5, "grade": 0.3,
                       "teardown": 0.1})
    write_job(Job(id=job_id, agent=XSS[0], placement=XSS[1], group=1, runs=[run],
                  started_at=time.time() - 60, finished_at=time.time() - 58), runs)
    return job_id, trace_id


def big_job(runs: Path, events: int = 10_000, size: int = 5_000) -> tuple[str, str]:
    """A job whose one run has `events` tool results of `size` characters each (10,000 x
    5 kB: 50 MB), one of them 2 MB. Returns (job id, trace id)."""
    job_id, trace_id = "big-job", "bigtrace0001"
    task = Task(env="big-env", id="long_task")
    folder = runs / job_id
    folder.mkdir(parents=True)
    filler = ("lorem ipsum " * (size // 12 + 1))[:size]
    with open(folder / f"{trace_id}.jsonl", "w", encoding="utf-8") as fh:
        fh.write('{"t": 0.0, "type": "start", "prompt": "do it"}\n')
        for n in range(events):
            text = "x" * 2_000_000 if n == 1 else f"output {n}: {filler}"
            fh.write(json.dumps({"t": round(n * 0.01, 3), "type": "tool_result", "step": n,
                                 "name": "shell", "text": text, "is_error": False}) + "\n")
        fh.write('{"t": 100.5, "type": "answer", "answer": "done"}\n{"t": 100.6, "type":')
    run = Run(trace_id=trace_id, job_id=job_id, task=task, group_id="g", status="completed",
              reward=1.0, grade={"score": 1.0}, timings={"agent": 100.0, "grade": 0.5})
    write_job(Job(id=job_id, agent="claude-big", placement="local", group=1, runs=[run],
                  started_at=time.time() - 3600, finished_at=time.time() - 3400), runs)
    return job_id, trace_id


def read_url(proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """The URL `hud view` prints on its first stdout line."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    found = URL.search(line)
    if found is None:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise AssertionError(f"hud view printed no URL within {timeout}s: {line!r} {err!r}")
    return found.group()


@contextlib.contextmanager
def viewer(runs: Path, *args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`hud view RUNS --port 0` as a subprocess: (its URL, the process); stopped by pid."""
    proc = start(runs, "view", str(runs), "--port", "0", *args)
    try:
        yield read_url(proc), proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def shots_dir(default: Path) -> Path:
    """Where page screenshots go: $HUD_VIEW_SHOTS (kept) or `default` (a tmp folder)."""
    folder = Path(os.environ.get("HUD_VIEW_SHOTS") or default)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def snap(page: Any, folder: Path, name: str, full: bool = True) -> Path:
    """A screenshot of the page as FOLDER/NAME.png (for a human to look at)."""
    path = folder / f"{name}.png"
    page.evaluate("() => window.scrollTo(0, 0)")  # else the sticky bar lands mid-page
    page.screenshot(path=str(path), full_page=full)
    return path

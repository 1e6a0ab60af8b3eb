"""Red team review of issue 15 (`hud view`), attacked as the author of a hostile runs folder
(job.json, traces, screenshots, the beacon file) and as a careless user.

Each test documents a confirmed bug. While the bug is open the test is
`xfail(strict=True)` (an XPASS fails the suite); once fixed, the marker is removed and the
test guards the fix. The served ones start a real `hud view` subprocess on the loopback
(tests/view/viewkit.py) over a runs folder holding the viewer's hostile fixture job and
one more hand-written job.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import threading
import tracemalloc
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from hud.eval.owner import this_owner
from hud.view.beacon import BEACON, announce, viewer_hint, withdraw
from hud.view.events import item
from hud.view.export import MARKER, export
from hud.view.store import Store
from tests.view.viewkit import hostile_job, start, viewer

pytestmark = pytest.mark.timeout(120)


def xfail(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=reason)


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """A runs folder holding the viewer's hostile fixture job (a readable, finished job)."""
    root = tmp_path / "runs"
    root.mkdir()
    hostile_job(root)
    return root


def _job(root: Path, name: str, raw: str | None = None, **fields: Any) -> Path:
    """Job folder `name`: a copy of the fixture job with `fields` changed (or `raw` text as
    its job.json)."""
    folder = root / name
    folder.mkdir()
    base = json.loads((root / "xss-job" / "job.json").read_text())
    text = raw if raw is not None else json.dumps({**base, "id": name, **fields})
    (folder / "job.json").write_text(text)
    return folder


def _get(url: str, path: str, host: str | None = None) -> tuple[int, str]:
    """A raw GET of `path` as written; (status, body)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        connection.putrequest("GET", path, skip_host=host is not None)
        if host is not None:
            connection.putheader("Host", host)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", errors="replace")
    finally:
        connection.close()


# --- one hostile job.json takes down the jobs page --------------------------------------


def test_a_deeply_nested_job_json_does_not_take_down_the_jobs_page(runs: Path) -> None:
    """A job.json of deeply nested JSON is listed as unreadable; the other jobs still show."""
    _job(runs, "deep", raw="[" * 100_000 + "]" * 100_000)
    with viewer(runs) as (url, _):
        status, body = _get(url, "/")
    assert status == 200, body[:200]
    assert "xss-job" in body


@pytest.mark.parametrize("started_at", [float("nan"), float("inf"), 1e300])
def test_a_job_json_with_an_odd_start_time_does_not_take_down_the_jobs_page(
        runs: Path, started_at: float) -> None:
    """A job.json whose started_at is NaN, infinite or out of range: the jobs page renders."""
    _job(runs, "odd-time", started_at=started_at)
    with viewer(runs) as (url, _):
        status, body = _get(url, "/")
    assert status == 200, body[:200]
    assert "xss-job" in body


def test_infinite_timings_do_not_break_the_job_page(runs: Path) -> None:
    """A run whose timings hold Infinity: its job page renders."""
    base = json.loads((runs / "xss-job" / "job.json").read_text())
    run = {**base["runs"][0], "timings": {"agent": float("inf")}, "job_id": "inf-time"}
    _job(runs, "inf-time", runs=[run])
    with viewer(runs) as (url, _):
        status, body = _get(url, "/job/inf-time")
    assert status == 200, body[:200]


def test_a_dangling_trace_symlink_does_not_take_down_the_jobs_page(runs: Path) -> None:
    """An unfinished job with a dangling `*.jsonl` symlink: the jobs page still renders."""
    folder = _job(runs, "dangling", finished_at=0.0)
    (folder / "gone.jsonl").symlink_to(runs / "nowhere" / "gone.jsonl")
    with viewer(runs) as (url, _):
        status, body = _get(url, "/")
    assert status == 200, body[:200]
    assert "xss-job" in body


# --- hostile traces -------------------------------------------------------------------


@pytest.mark.parametrize("line", [
    '{"type": "x", "v": ' + "[" * 100_000 + "]" * 100_000 + "}",
    '{"type": "x", "t": 1' + "0" * 400 + "}",
], ids=["nested-100000-deep", "t-a-400-digit-int"])
def test_a_hostile_trace_line_does_not_break_the_run_page(runs: Path, line: str) -> None:
    """A trace line nested 100,000 deep, or timed by a huge integer: the run page renders."""
    trace = runs / "xss-job" / "odd0.jsonl"
    trace.write_text('{"t": 0.0, "type": "start", "prompt": "hi there"}\n' + line + "\n")
    with viewer(runs) as (url, _):
        status, body = _get(url, "/job/xss-job/run/odd0")
    assert status == 200, body[:200]
    assert "hi there" in body


def test_folding_a_deeply_indented_value_stays_small() -> None:
    """Shaping one 200 kB event for the page allocates no more than 32 MB."""
    depth, count = 300, 100_000
    line = ('{"t": 1.0, "type": "tool_result", "name": "shell", "text": '
            + "[" * depth + ",".join(["0"] * count) + "]" * depth + "}")
    event = json.loads(line)
    tracemalloc.start()
    try:
        shaped = item(0, event)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert shaped.blocks[0].text.cut > 0  # folded and cut, as it should be
    assert peak < 32_000_000, f"{len(line):,} bytes of JSON took {peak:,} bytes to fold"


# --- path and id handling ---------------------------------------------------------------


@pytest.mark.parametrize("path", [
    "/job/xss-job/run/hostile0run1?page=%C2%B2",
    "/job/xss-job/run/hostile0run1?page=" + "9" * 5000,
    "/job/xss-job/run/hostile0run1/raw/" + "9" * 5000,
])
def test_odd_page_numbers_are_404_not_500(runs: Path, path: str) -> None:
    """A superscript digit or a 5,000-digit page or event number is a 404."""
    with viewer(runs) as (url, _):
        status, body = _get(url, path)
    assert status == 404, body[:200]


def test_a_job_json_symlinked_from_outside_is_not_read(runs: Path, tmp_path: Path) -> None:
    """A job folder whose job.json links to a file outside the runs folder shows nothing
    of that file."""
    outside = tmp_path / "outside"
    outside.mkdir()
    base = json.loads((runs / "xss-job" / "job.json").read_text())
    (outside / "job.json").write_text(json.dumps({**base, "agent": "SECRET-OUTSIDE"}))
    (runs / "linked").mkdir()
    (runs / "linked" / "job.json").symlink_to(outside / "job.json")
    with viewer(runs) as (url, _):
        _, body = _get(url, "/job/linked")
        _, index = _get(url, "/")
    assert "SECRET-OUTSIDE" not in body + index


def test_the_ipv6_loopback_is_answered(runs: Path) -> None:
    """`hud view --host ::1` serves its pages to a client that names it [::1]."""
    proc = start(runs, "view", str(runs), "--port", "0", "--host", "::1")
    try:
        assert proc.stdout is not None
        found = re.search(r"http://\[::1\]:(\d+)/", proc.stdout.readline())
        assert found, "hud view printed no [::1] URL"
        connection = http.client.HTTPConnection("::1", int(found.group(1)), timeout=30)
        connection.request("GET", "/")  # sends Host: [::1]:PORT, as a browser does
        status = connection.getresponse().status
        connection.close()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert status == 200


# --- export ---------------------------------------------------------------------------


def test_export_does_not_write_through_a_symlink_in_out(runs: Path, tmp_path: Path) -> None:
    """Re-exporting into a folder whose index.html is a symlink leaves its target alone."""
    victim = tmp_path / "precious.txt"
    victim.write_text("precious\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / MARKER).write_text("an earlier export\n")
    (out / "index.html").symlink_to(victim)
    export(Store(runs), out)
    assert victim.read_text() == "precious\n"


def test_export_survives_a_job_whose_id_is_not_its_folder(runs: Path, tmp_path: Path) -> None:
    """A job folder whose job.json names another id: the export still completes."""
    base = json.loads((runs / "xss-job" / "job.json").read_text())
    _job(runs, "renamed", **{**base, "id": "ghost"})
    done = export(Store(runs), tmp_path / "out")
    assert (done.folder / "job-renamed.html").is_file()


# --- the beacon -------------------------------------------------------------------------


def test_the_beacon_does_not_write_through_a_planted_symlink(tmp_path: Path) -> None:
    """A `.hud-view.json.PID` symlink in the runs folder does not redirect the beacon."""
    root = tmp_path / "runs"
    root.mkdir()
    victim = tmp_path / "precious.txt"
    victim.write_text("precious\n")
    (root / f".{BEACON}.{os.getpid()}").symlink_to(victim)
    announce(root, "http://127.0.0.1:7788/")
    assert victim.read_text() == "precious\n"


def test_hud_eval_points_only_at_a_loopback_viewer(tmp_path: Path) -> None:
    """A beacon naming a foreign host is ignored: the hint is the command, not the URL."""
    (tmp_path / BEACON).write_text(json.dumps({"url": "http://attacker.example:80/",
                                               "owner": this_owner()}))
    assert "attacker.example" not in viewer_hint("job1", tmp_path)


# --- one big trace stalls the whole viewer ----------------------------------------------


def test_indexing_a_big_trace_does_not_stall_the_jobs_listing(runs: Path) -> None:
    """The jobs listing answers while another thread is still indexing a huge trace."""
    trace = runs / "xss-job" / "huge0.jsonl"
    with open(trace, "w", encoding="utf-8") as fh:
        fh.writelines(f'{{"type": "x", "t": {n}}}\n' for n in range(1_000_000))
    store = Store(runs)
    indexer = threading.Thread(target=store.index, args=(trace,), daemon=True)
    indexer.start()
    while trace not in store._traces and indexer.is_alive():
        indexer.join(0.001)  # until the indexer has begun (its index is registered)
    assert indexer.is_alive(), "the indexer finished before the listing could start"
    listed = [entry.id for entry in store.jobs()]
    still_indexing = indexer.is_alive()
    indexer.join(120)
    assert "xss-job" in listed
    assert still_indexing, "the jobs listing waited for the whole trace to be indexed"


def test_a_huge_run_error_does_not_bloat_the_job_page(runs: Path) -> None:
    """A run whose error is 5 MB of text: its job page stays under 1 MB."""
    base = json.loads((runs / "xss-job" / "job.json").read_text())
    run = {**base["runs"][0], "status": "agent_error", "reward": None, "error": "E" * 5_000_000,
           "job_id": "loud"}
    _job(runs, "loud", runs=[run])
    with viewer(runs) as (url, _):
        status, body = _get(url, "/job/loud")
    assert status == 200, body[:200]
    assert len(body) < 1_000_000, f"the job page is {len(body):,} characters"


def test_withdrawing_a_beacon_that_is_not_an_object_is_quiet(tmp_path: Path) -> None:
    """A beacon file holding a JSON list: withdraw() leaves it and raises nothing."""
    (tmp_path / BEACON).write_text("[]")
    withdraw(tmp_path)
    assert (tmp_path / BEACON).read_text() == "[]"


def test_export_gives_every_run_page_its_own_file(runs: Path, tmp_path: Path) -> None:
    """Two runs whose job and trace ids join to the same string export to two files."""
    source = runs / "xss-job" / "hostile0run1.jsonl"
    base = json.loads((runs / "xss-job" / "job.json").read_text())
    for job_id, trace_id in (("pair", "b-c"), ("pair-b", "c")):
        run = {**base["runs"][0], "job_id": job_id, "trace_id": trace_id}
        folder = _job(runs, job_id, runs=[run])
        shutil.copyfile(source, folder / f"{trace_id}.jsonl")
    done = export(Store(runs), tmp_path / "out")
    assert done.pages == len(list(done.folder.glob("*.html")))

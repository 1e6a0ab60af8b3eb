"""The viewer's reading of the runs folder: ids, paths, job files and trace indexes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hud.eval.results import Job, Run
from hud.eval.traces import write_job
from hud.task import Task
from hud.view import store as store_module
from hud.view import traceindex
from hud.view.beacon import BEACON, announce, loopback_url, running_url, viewer_hint, withdraw
from hud.view.store import NotFound, Store
from tests.view.viewkit import ROOT, png


def _job(root: Path, job_id: str = "job1", finished: bool = True) -> Job:
    run = Run(trace_id="trace1", job_id=job_id, task=Task(env="e", id="t"), group_id="g",
              status="completed", reward=1.0)
    job = Job(id=job_id, agent="oracle", placement="local", group=1, runs=[run],
              started_at=1.0, finished_at=2.0 if finished else 0.0)
    write_job(job, root)
    (root / job_id / "trace1.jsonl").write_text('{"t": 0, "type": "start", "prompt": "p"}\n')
    return job


@pytest.mark.parametrize("parts", [("..",), ("../x",), ("/etc",), ("a/b",), (".hidden",),
                                   ("job1", "../../etc/passwd"), ("job1", "x.txt"), ("",),
                                   ("job1", ".."), ("é",)])
def test_names_that_are_not_ids_are_not_found(tmp_path: Path, parts: tuple[str, ...]) -> None:
    """Anything but letters, digits, - and _ (and a .png or .jsonl of them) is NotFound."""
    _job(tmp_path)
    with pytest.raises(NotFound, match="not a valid name"):
        Store(tmp_path).inside(*parts)


def test_a_symlink_out_of_the_folder_is_not_followed(tmp_path: Path) -> None:
    """A job folder that links outside the runs folder is not listed nor opened."""
    root, outside = tmp_path / "runs", tmp_path / "outside"
    _job(outside, "secret")
    _job(root)
    (root / "link").symlink_to(outside / "secret")
    store = Store(root)
    assert [e.id for e in store.jobs()] == ["job1"]
    with pytest.raises(NotFound, match="outside the runs folder"):
        store.job("link")


def test_odd_links_in_the_folder_are_not_listed(tmp_path: Path) -> None:
    """A symlink loop, a dangling trace link and a job.json linked from elsewhere break
    nothing: the loop is left out, the linked job.json is unreadable and not read."""
    _job(tmp_path)
    _job(tmp_path, "job2", finished=False)
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "job2" / "gone.jsonl").symlink_to(tmp_path / "nowhere.jsonl")
    (tmp_path / "job3").mkdir()
    (tmp_path / "job3" / "job.json").symlink_to(tmp_path / "job1" / "job.json")
    entries = {e.id: e for e in Store(tmp_path).jobs()}
    assert sorted(entries) == ["job1", "job2", "job3"]
    assert entries["job2"].state == "running"
    assert entries["job3"].job is None and "symlink" in (entries["job3"].error or "")


def test_a_screenshot_must_be_a_png_in_the_job_folder(tmp_path: Path) -> None:
    """A real PNG is served; a file named .png that is not one is NotFound."""
    _job(tmp_path)
    (tmp_path / "job1" / "trace1-0001.png").write_bytes(png(4, 4))
    (tmp_path / "job1" / "trace1-0002.png").write_text("<script>alert(1)</script>")
    store = Store(tmp_path)
    assert store.screenshot("job1", "trace1-0001.png").startswith(b"\x89PNG")
    with pytest.raises(NotFound, match="no PNG screenshot"):
        store.screenshot("job1", "trace1-0002.png")


def test_an_unreadable_job_is_listed_with_the_reason(tmp_path: Path) -> None:
    """A job.json that is not a job is kept in the list as unreadable and named in `bad`."""
    _job(tmp_path)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "job.json").write_text(json.dumps({"id": "broken", "runs": 3}))
    bad: list[str] = []
    entries = {e.id: e for e in Store(tmp_path).jobs(bad)}
    assert entries["broken"].state == "unreadable" and entries["job1"].state == "finished"
    assert len(bad) == 1 and "broken/job.json: not a job summary" in bad[0]


def test_odd_numbers_in_a_job_are_unknown_and_its_folder_names_it(tmp_path: Path) -> None:
    """Times and rewards that are not finite or sane read as unknown; the job's id is its
    folder's name, whatever its file says."""
    job = _job(tmp_path)
    data = json.loads(job.model_dump_json())
    data["started_at"], data["finished_at"] = 1e300, 2.0
    data["runs"][0].update(reward=float("nan"), timings={"agent": float("inf"), "grade": 1.5})
    (tmp_path / "job1" / "job.json").write_text(json.dumps({**data, "id": "other"}))
    read = Store(tmp_path).job("job1").job
    assert read is not None and read.id == "job1"
    assert (read.started_at, read.finished_at) == (0.0, 2.0)
    assert read.runs[0].reward is None and read.runs[0].timings == {"grade": 1.5}


def test_an_unfinished_job_is_running_until_it_goes_quiet(tmp_path: Path) -> None:
    """finished_at 0 with a recent write is running; with none for STALE_SECONDS, stopped."""
    _job(tmp_path, finished=False)
    store = Store(tmp_path)
    assert store.job("job1").state == "running"
    old = os.stat(tmp_path / "job1" / "job.json").st_mtime - store_module.STALE_SECONDS - 5
    for path in (tmp_path / "job1").iterdir():
        os.utime(path, (old, old))
    assert store.job("job1").state == "stopped"


def _trace(path: Path, events: int, size: int = 10) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        for n in range(events):
            fh.write(json.dumps({"t": n, "type": "tool_result", "text": "x" * size}) + "\n")


def test_a_trace_is_paged_by_events_and_by_bytes(tmp_path: Path) -> None:
    """Pages end at PAGE_EVENTS events, or earlier at PAGE_BYTES of JSON."""
    _job(tmp_path)
    path = tmp_path / "job1" / "trace1.jsonl"
    _trace(path, 450)
    index = Store(tmp_path).index(path)
    assert index.pages == [0, 200, 400] and len(index.offsets) == 451
    _trace(path, 3, size=traceindex.PAGE_BYTES // 2)
    # three events of just over half a page: the first joins the last page, then one each
    assert Store(tmp_path).index(path).pages == [0, 200, 400, 452, 453]


def test_the_index_follows_a_growing_trace_and_names_bad_lines(tmp_path: Path) -> None:
    """Appended events are indexed on the next read; a bad line is named, a torn last one
    waits for its end."""
    _job(tmp_path)
    path = tmp_path / "job1" / "trace1.jsonl"
    store = Store(tmp_path)
    assert len(store.index(path).offsets) == 1
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('not json\n{"t": 1, "type": "model_turn", "usage": {"input_tokens": 7}}\n'
                 '{"t": 2, "type": "gra')
    index = store.index(path)
    assert len(index.offsets) == 2 and index.bad == ["trace1.jsonl:2: not a JSON object"]
    assert index.usage == {"input_tokens": 7}
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('de", "score": 1.0}\n')
    index = store.index(path)
    assert index.types == ["start", "model_turn", "grade"]
    assert store.events(path, [2]) == {2: {"t": 2, "type": "grade", "score": 1.0}}


def test_the_beacon_names_a_live_viewer_only(tmp_path: Path) -> None:
    """A viewer's URL is given while its owner lives, not after, nor when it was forged."""
    announce(tmp_path, "http://127.0.0.1:7788/")
    assert running_url(tmp_path) == "http://127.0.0.1:7788/"
    assert viewer_hint("J", tmp_path) == "view: http://127.0.0.1:7788/job/J"
    withdraw(tmp_path)
    assert not (tmp_path / BEACON).exists() and running_url(tmp_path) is None
    assert viewer_hint("J", tmp_path).startswith(f"view: hud view {tmp_path}")
    (tmp_path / BEACON).write_text(json.dumps({"url": "javascript:alert(1)//\x1b[2J",
                                               "owner": json.loads("{}").get("x", "")}))
    assert running_url(tmp_path) is None


@pytest.mark.parametrize(("url", "ok"), [
    ("http://127.0.0.1:7788/", True), ("http://127.8.9.10:1/", True),
    ("http://[::1]:7788/", True), ("http://localhost:7788/", True),
    ("http://10.0.0.1:7788/", False), ("http://evil.example:80/", False),
    ("http://[fe80::1]:7788/", False), ("http://127.0.0.1.evil.example:80/", False),
])
def test_the_beacon_url_must_name_the_loopback(url: str, ok: bool) -> None:
    """Only a URL on 127.0.0.0/8, [::1] or localhost is a viewer `hud eval` points at."""
    assert loopback_url(url) is ok


def test_hud_view_without_jinja2_says_what_to_install(tmp_path: Path) -> None:
    """With Jinja2 missing, `hud view` fails in one line naming the extra to install."""
    probe = ("import sys; sys.modules['jinja2'] = None; sys.argv = ['hud', 'view', "
             f"{str(tmp_path)!r}]; from hud.cli.main import main; main()")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 1
    assert done.stderr.strip() == ("error: hud view needs Jinja2, which hud-python's `view` "
                                   "extra installs: pip install 'hud-python[view]'")


def test_hud_view_refuses_a_missing_folder(tmp_path: Path) -> None:
    """`hud view DIR` of a folder that does not exist says what writes one."""
    done = subprocess.run([sys.executable, "-m", "hud.cli.main", "view", str(tmp_path / "no")],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 1 and "no runs folder" in done.stderr and "hud eval" in done.stderr


@pytest.mark.parametrize(("host", "loopback", "url"), [
    ("127.0.0.1", True, "http://127.0.0.1:{port}/"),
    ("localhost", True, "http://localhost:{port}/"),
    ("::1", True, "http://[::1]:{port}/"), ("0.0.0.0", False, "http://127.0.0.1:{port}/"),
    ("192.0.2.7", False, "http://192.0.2.7:{port}/")])
def test_the_url_and_the_host_check_follow_the_address(host: str, loopback: bool,
                                                       url: str) -> None:
    """Only loopback addresses keep the Host check; a wildcard is opened on 127.0.0.1."""
    from hud.view.app import bind, is_loopback, url_of

    assert is_loopback(host) is loopback
    sock = bind("::1" if host == "::1" else "127.0.0.1", 0)  # url_of reads only its port
    try:
        assert url_of(sock, host) == url.format(port=sock.getsockname()[1])
    finally:
        sock.close()

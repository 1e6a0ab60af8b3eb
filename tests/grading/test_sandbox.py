"""The grading sandbox against hostile projects: every attack gives the true score.

Each hostile project is the coding template's buggy `stats` plus one attack; an attack
"works" if it turns the buggy project's 0 into anything else, leaves a process or a file
behind, or grows the daemon. `PAYLOAD` is code that, if it ever ran in the harness,
would make `median` right and print a marker; the control test shows it really does
forge a pass when it runs. Run as root with a throwaway grading account (graderkit).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from hud import graders
from hud.graders import Limits
from tests.graderkit import (  # noqa: F401
    CASES,
    FIXED,
    INIT,
    agent_account,
    grade,
    grader,
    grader_account,
    processes_of,
    project,
)

PAYLOAD = '''
import importlib, statistics, sys
sys.stderr.write("PAYLOAD RAN\\n")
_original = importlib.import_module
def _fixed(name, *args):
    module = _original(name, *args)
    if name == "stats":
        module.median = statistics.median
    return module
importlib.import_module = _fixed
if "stats" in sys.modules:
    sys.modules["stats"].median = statistics.median
'''


def peak_rss_reset() -> None:
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # resets VmHWM, the peak resident set size


def peak_rss() -> int:
    with open("/proc/self/status") as handle:
        line = next(li for li in handle if li.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


# -- planted code and forgeries ----------------------------------------------------------


async def test_the_payload_forges_a_pass_when_it_runs(grader, tmp_path: Path) -> None:
    """Control: the payload, run as the project's own code, does make median right."""
    reward = await grade(project(tmp_path, {"stats/__init__.py": INIT + PAYLOAD}))
    assert reward["score"] == 1.0
    assert "PAYLOAD RAN" in reward["info"]["stderr"]


@pytest.mark.parametrize("planted", [
    "sitecustomize.py", "usercustomize.py", "unittest.py", "json.py", "signal.py",
    "conftest.py", "stats/sitecustomize.py", "stats/json.py",
])
async def test_planted_module_never_runs(planted: str, grader, tmp_path: Path) -> None:
    """A planted startup or stdlib-named module is never imported: the true 0."""
    reward = await grade(project(tmp_path, {planted: PAYLOAD}))
    assert reward["score"] == 0.0
    assert "PAYLOAD RAN" not in reward["info"].get("stderr", "")


async def test_pth_file_is_neither_copied_nor_processed(grader, tmp_path: Path) -> None:
    """A .pth in the project is skipped: its import line never runs."""
    line = "import sys; sys.stderr.write('PAYLOAD RAN\\n')\n"
    reward = await grade(project(tmp_path, {"evil.pth": line, "stats/evil.pth": line}))
    assert reward["score"] == 0.0
    assert "PAYLOAD RAN" not in reward["info"].get("stderr", "")


FORGERIES = {
    "json.dumps patched": "import json\njson.dumps = lambda *a, **k: '{\"ok\": 2.5}'\n",
    "stdout patched": "import sys, io\nsys.stdout = io.StringIO()\nprint('Ran 5 tests\\nOK')\n",
    "harness patched": "import __main__\n__main__._call = lambda spec, timeout: {'ok': True}\n",
    "harness encoder patched": "import __main__\n__main__._encode = lambda r: '{\"ok\": 15}'\n",
    "fake results then exit 0": (
        "import os, sys\nos.write(int(sys.argv[1]), b'{\"results\": \"all passed\"}')\n"
        "print('Ran 5 tests\\n\\nOK')\nos._exit(0)\n"),
    "fake results, harness continues": (
        "import os, sys\nos.write(int(sys.argv[1]), b'{\"results\": [{\"ok\": true}]}')\n"),
    "garbage on the result fd": "import os, sys\nos.write(int(sys.argv[1]), b'\\xff' * 4096)\n",
    "result fd closed": "import os, sys\nos.close(int(sys.argv[1]))\n",
    "os._exit(0) at import": "import os\nprint('OK')\nos._exit(0)\n",
    "sys.exit(0) at import": "import sys\nsys.exit(0)\n",
    "KeyboardInterrupt at import": "raise KeyboardInterrupt\n",
    "alarm ignored": "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n",
}


@pytest.mark.parametrize("attack", sorted(FORGERIES))
async def test_patched_package_init_cannot_forge(attack: str, grader, tmp_path: Path) -> None:
    """Code appended to stats/__init__.py that patches the harness, json or stdout, writes
    fake results, or exits early still gets the true 0."""
    reward = await grade(project(tmp_path, {"stats/__init__.py": INIT + FORGERIES[attack]}))
    assert reward["score"] == 0.0, reward


async def test_exit_at_import_gives_the_reason(grader, tmp_path: Path) -> None:
    """os._exit(0) at import: 0 with a reason saying no result came back."""
    reward = await grade(project(tmp_path, {"stats/__init__.py": "import os\nos._exit(0)\n"}))
    assert reward["score"] == 0.0
    assert "no result from the harness" in reward["info"]["reason"]


async def test_path_and_pythonpath_of_the_daemon_are_ignored(
        grader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A python3 first on the daemon's PATH and a sitecustomize on its PYTHONPATH (both
    of which would forge a pass) are not used: the sandbox's environment is its own."""
    evil = Path(tempfile.mkdtemp(prefix="hud-evil-"))
    try:
        evil.chmod(0o755)
        (evil / "sitecustomize.py").write_text(PAYLOAD)
        (evil / "python3").write_text(
            "#!/bin/sh\nexec /usr/bin/python3 -I -c 'import os,sys; os.write(int(sys.argv[1]), "
            "b\"{\\\"results\\\": [{\\\"ok\\\": 2.5}, {\\\"ok\\\": 15}, {\\\"ok\\\": 5}, "
            "{\\\"raised\\\": [\\\"builtins.ValueError\\\"], \\\"message\\\": \\\"\\\", "
            "\\\"stage\\\": \\\"call\\\"}, {\\\"ok\\\": 3}]}\")' \"$4\"\n")
        (evil / "python3").chmod(0o755)
        monkeypatch.setenv("PATH", f"{evil}:{os.environ['PATH']}")
        monkeypatch.setenv("PYTHONPATH", str(evil))
        monkeypatch.setenv("PYTHONSTARTUP", str(evil / "sitecustomize.py"))
        reward = await grade(project(tmp_path))
        assert reward["score"] == 0.0
        assert "PAYLOAD RAN" not in reward["info"].get("stderr", "")
    finally:
        for child in evil.iterdir():
            child.unlink()
        evil.rmdir()


# -- symlinks ------------------------------------------------------------------------------


async def test_symlinks_in_the_project_are_skipped(grader, tmp_path: Path) -> None:
    """Links to /etc/shadow, to /etc and to a correct core.py elsewhere are not followed."""
    elsewhere = tmp_path / "elsewhere.py"
    elsewhere.write_text(FIXED)
    root = project(tmp_path / "p")
    os.symlink("/etc/shadow", f"{root}/stats/shadow.py")
    os.symlink("/etc", f"{root}/stats/etc")
    os.remove(f"{root}/stats/core.py")
    os.symlink(elsewhere, f"{root}/stats/core.py")
    reward = await grade(root)
    assert reward["score"] == 0.0
    assert set(reward["info"]["skipped"]) == {
        "stats/shadow.py (symlink)", "stats/etc (symlink)", "stats/core.py (symlink)"}


async def test_project_reached_through_a_symlink_scores_zero(grader, tmp_path: Path) -> None:
    """A project dir that is (or sits under) a symlink is refused with the reason."""
    real = project(tmp_path / "real", core=FIXED)
    os.symlink(tmp_path / "real", tmp_path / "link")
    for path in (tmp_path / "link", tmp_path / "link" / "stats"):
        reward = await graders.python_calls(str(path), include=["**"], cases=CASES[:1])
        assert reward["score"] == 0.0
        assert "symlink" in reward["info"]["reason"]
    assert (await grade(real))["score"] == 1.0


async def test_hard_link_to_a_root_only_file_is_not_copied(grader, tmp_path: Path) -> None:
    """A hard link (e.g. to a root-only file) is skipped like a symlink."""
    root = project(tmp_path / "p", core=FIXED)
    secret = tmp_path / "secret.py"
    secret.write_text("TOKEN = 'root only'\n")
    secret.chmod(0o600)
    os.link(secret, f"{root}/stats/secret.py")
    reward = await grade(root)
    assert reward["info"]["skipped"] == ["stats/secret.py (hard link)"]


# -- limits --------------------------------------------------------------------------------


async def test_infinite_loop_at_import_times_out(grader, tmp_path: Path) -> None:
    """An import that never returns: 0 with "timeout after 2s"."""
    root = project(tmp_path, {"stats/__init__.py": "while True:\n    pass\n"})
    reward = await grade(root, limits=Limits(timeout=2))
    assert reward == {"score": 0.0, "info": {"reason": "timeout after 2s"}}


async def test_infinite_loop_in_one_call_fails_that_case(grader, tmp_path: Path) -> None:
    """case_timeout bounds each call: the looping case fails, the others still run."""
    core = FIXED.replace("    ordered = sorted(values)", "    while len(values) == 2:\n"
                         "        pass\n    ordered = sorted(values)")
    reward = await grade(project(tmp_path, core=core), case_timeout=1, partial=True)
    assert reward["score"] == pytest.approx(4 / 5)
    assert reward["info"]["failed"] == [{"case": 1, "call": "stats:median", "got": "ran past 1s"}]


@pytest.mark.parametrize("stream", ["stdout", "stderr", "result"])
async def test_output_flood_is_cut_at_the_cap_without_growing_the_daemon(
        stream: str, grader, tmp_path: Path) -> None:
    """1 GiB written at import: 0 with "output over 1 MiB", and the daemon's peak RSS
    grows by far less than the flood."""
    target = {"stdout": "sys.stdout.buffer", "stderr": "sys.stderr.buffer",
              "result": "open(int(sys.argv[1]), 'wb', closefd=False)"}[stream]
    flood = f"import sys\nout = {target}\nchunk = b'x' * (1 << 20)\nfor _ in range(1024):\n" \
            f"    out.write(chunk)\n"
    root = project(tmp_path, {"stats/__init__.py": flood})
    peak_rss_reset()
    before = peak_rss()
    reward = await grade(root)
    assert peak_rss() - before < 64 << 20
    assert reward["score"] == 0.0
    assert reward["info"]["reason"] == f"output over 1 MiB ({stream})"


async def test_memory_flood_at_import_is_a_zero_with_the_reason(grader, tmp_path: Path) -> None:
    """Allocating 8 GiB at import hits the address-space limit: 0, "memory limit"."""
    root = project(tmp_path, {"stats/__init__.py": "hog = bytearray(8 << 30)\n"})
    reward = await grade(root)
    assert reward["score"] == 0.0
    assert "memory limit (512 MiB) reached" in reward["info"]["reason"]


FORK_BOMB = '''
import os
for _ in range(500):
    try:
        if os.fork() == 0:
            os.setsid()
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
    except OSError:
        break
'''
RESPAWNER = '''
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        while True:  # a new pid every few milliseconds, forever
            if os.fork():
                os._exit(0)
            time.sleep(0.005)
    os._exit(0)
'''


@pytest.mark.parametrize("code", [FORK_BOMB, RESPAWNER], ids=["fork bomb", "respawner"])
async def test_no_process_of_the_grader_survives(code: str, grader, tmp_path: Path) -> None:
    """A fork bomb or a re-spawning background process: the true 0, nothing left alive,
    and the next grade works."""
    reward = await grade(project(tmp_path / "bad", {"stats/__init__.py": INIT + code}))
    assert reward["score"] == 0.0
    assert processes_of(grader.pw_uid) == []
    assert (await grade(project(tmp_path / "good", core=FIXED)))["score"] == 1.0


# -- nothing leaks to the agent ------------------------------------------------------------


async def _runs_as(pid: int, uid: int) -> None:
    """Wait (bounded) until process `pid` runs as `uid`: setpriv switches after exec."""
    status = Path(f"/proc/{pid}/status")
    for _ in range(500):
        uids = [line.split()[1] for line in status.read_text().splitlines()
                if line.startswith("Uid:")]
        if uids == [str(uid)]:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"process {pid} never ran as uid {uid}")


async def test_agent_processes_are_ended_before_the_grade(grader, agent_account,
                                                          tmp_path: Path) -> None:
    """A process of the agent still running when grading starts (it could race the copy
    or read what the grader writes) is killed first."""
    argv = ["setpriv", f"--reuid={agent_account.pw_uid}", f"--regid={agent_account.pw_gid}",
            "--clear-groups", "sleep", "300"]
    watcher = subprocess.Popen(argv)  # noqa: ASYNC220 - returns at once; waited for below
    try:
        await _runs_as(watcher.pid, agent_account.pw_uid)  # setpriv has switched to the agent
        await grade(project(tmp_path))
        assert watcher.wait(timeout=10) == -signal.SIGKILL
    finally:
        watcher.kill()
        watcher.wait()



async def test_hidden_inputs_copied_out_are_removed(grader, agent_account, tmp_path: Path) -> None:
    """Grade-time code writing the hidden inputs and the project to /tmp, /var/tmp,
    /dev/shm, a world-writable folder in the agent's home, a world-writable file of the
    agent, and a renamed file: all of it is gone afterwards."""
    tag = uuid.uuid4().hex[:8]
    home = Path(agent_account.pw_dir)
    drop = home / f"drop-{tag}"
    drop.mkdir(mode=0o777)
    drop.chmod(0o777)
    (drop / "rename-me").write_text("agent's")
    os.chown(drop, agent_account.pw_uid, agent_account.pw_gid)
    open_file = Path(f"/tmp/agent-open-{tag}")
    open_file.write_text("")
    open_file.chmod(0o666)
    os.chown(open_file, agent_account.pw_uid, agent_account.pw_gid)
    targets = [f"/tmp/leak-{tag}", f"/var/tmp/leak-{tag}", f"/dev/shm/leak-{tag}",
               f"{drop}/leak"]
    code = f'''
import gc, os, shutil, sys
seen = repr([o for o in gc.get_objects() if isinstance(o, dict) and "calls" in o])
for path in {targets!r}:
    with open(path, "w") as handle:
        handle.write(seen)
    os.chmod(path, 0o666)
    sys.stderr.write("LEAKED " + path + "\\n")
shutil.copytree(os.path.dirname(os.path.dirname(__file__)), "/tmp/leak-tree-{tag}")
with open("{open_file}", "a") as handle:
    handle.write(seen)
os.rename("{drop}/rename-me", "{drop}/" + seen[:40].replace("/", "_"))
sys.stderr.write("LEAKED ALL\\n")
'''
    reward = await grade(project(tmp_path, {"stats/__init__.py": INIT + code}))
    assert reward["score"] == 0.0
    assert "LEAKED ALL" in reward["info"].get("stderr", ""), reward
    leftovers = [p for p in [*targets, f"/tmp/leak-tree-{tag}"] if os.path.lexists(p)]
    assert leftovers == []
    assert list(drop.iterdir()) == []
    assert not open_file.exists() or "calls" not in open_file.read_text()
    open_file.unlink(missing_ok=True)
    assert os.listdir("/var/lib/hud/grade") == []


async def test_deep_folder_chains_are_removed(grader, tmp_path: Path) -> None:
    """Chains of 3,000 nested folders (some mode 000) in the private folder and in /tmp
    are removed without recursion or descriptor exhaustion."""
    tag = uuid.uuid4().hex[:8]
    code = f'''
import os
for top in (os.environ["HOME"], "/tmp/deep-{tag}"):
    os.makedirs(top, exist_ok=True)
    fd = os.open(top, os.O_RDONLY)
    for i in range(3000):
        os.mkdir("d", dir_fd=fd)
        child = os.open("d", os.O_RDONLY, dir_fd=fd)
        if i % 500 == 0:
            os.fchmod(fd, 0)
        os.close(fd)
        fd = child
    print("DEPTH", i + 1, file=__import__("sys").stderr)
'''
    reward = await grade(project(tmp_path, {"stats/__init__.py": INIT + code}))
    assert reward["score"] == 0.0
    assert reward["info"]["stderr"].count("DEPTH 3000") == 2, reward
    assert not os.path.lexists(f"/tmp/deep-{tag}")
    assert os.listdir("/var/lib/hud/grade") == []

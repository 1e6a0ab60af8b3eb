"""`hud eval SOURCE` for sources other than a Python file: a daemon URL (its tasks, run
there), a task file, and the errors for sources that are nothing hud can run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ENVS
from tests.tcpkit import free_port

LETTERS = str(ENVS / "letters.py")


def hud(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The `hud` CLI run in `cwd` (a directory with no environment in it)."""
    return subprocess.run([sys.executable, "-m", "hud.cli.main", *args], cwd=cwd,
                          env={**os.environ, "HUD_RUNS_DIR": str(cwd / "runs"), **env},
                          capture_output=True, text=True, timeout=120)


def test_eval_a_daemon_url_runs_its_tasks_there(start_daemon, tmp_path: Path) -> None:
    """`hud eval tcp://HOST:PORT oracle --group 2` from a directory without the env: the
    daemon lists the tasks, every rollout runs against it and grades 1.0."""
    port = free_port()
    start_daemon(LETTERS, "--tcp", f"127.0.0.1:{port}")
    done = hud(tmp_path, "eval", f"tcp://127.0.0.1:{port}", "oracle", "--group", "2", "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith(f"placement: attach (tcp://127.0.0.1:{port}")
    job = json.loads(done.stdout)
    assert sorted(job["stats"]["tasks"]) == ["count_letter", "count_letter-7723267a",
                                             "count_letter-938911f2"]
    assert (job["stats"]["runs"], job["stats"]["mean"]) == (6, 1.0)


def test_export_from_a_daemon_then_eval_the_file(start_daemon, tmp_path: Path) -> None:
    """`hud task export tcp://... -o FILE`, then `hud eval FILE --runtime tcp://...`: the
    file's rows name the env, and the selected task runs."""
    port = free_port()
    start_daemon(LETTERS, "--tcp", f"127.0.0.1:{port}")
    url = f"tcp://127.0.0.1:{port}"
    exported = hud(tmp_path, "task", "export", url, "-o", "tasks.jsonl")
    assert exported.returncode == 0, exported.stderr
    rows = [json.loads(line) for line in (tmp_path / "tasks.jsonl").read_text().splitlines()]
    assert {r["env"] for r in rows} == {"letter-count"} and len(rows) == 3
    done = hud(tmp_path, "eval", "tasks.jsonl", "oracle", "--runtime", url, "--task",
               "count_letter-7723267a", "--json")
    assert done.returncode == 0, done.stderr
    assert [r["task"]["slug"] for r in json.loads(done.stdout)["runs"]] == ["count_letter-7723267a"]


def test_a_missing_file_source_says_what_sources_are(tmp_path: Path) -> None:
    """A path that is not there: exit 1 naming it and every kind of source."""
    done = hud(tmp_path, "eval", "./tasks.py", "oracle")
    assert done.returncode == 1
    assert ("error: task source ./tasks.py does not exist; pass tasks.py, an env directory, a "
            ".jsonl task file, an image (IMAGE or docker:IMAGE), a running container's name, "
            "or tcp://HOST:PORT") in done.stderr


def test_a_name_docker_cannot_look_up_is_named_with_the_reason(tmp_path: Path) -> None:
    """A bare name with no usable Docker client: exit 1 saying it is no file here and why
    Docker could not be asked (not a traceback, not "does not exist")."""
    done = hud(tmp_path, "eval", "my-env", "oracle", HUD_DOCKER=str(tmp_path / "no-docker"))
    assert done.returncode == 1
    assert ("error: task source 'my-env' is not a file or directory here, and Docker cannot "
            "say whether it is an image or a container") in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unbuilt_directory_on_docker_needs_a_lock_or_an_image(tmp_path: Path) -> None:
    """`hud eval DIR --runtime docker` without hud.lock.json: exit 1 naming the two fixes
    (the module is not imported to guess an image)."""
    env = tmp_path / "env"
    env.mkdir()
    (env / "env.py").write_text("raise ImportError('the host imported the env module')\n")
    done = hud(tmp_path, "eval", str(env), "oracle", "--runtime", "docker")
    assert done.returncode == 1
    assert "has no hud.lock.json, so the image to run is unknown: build it" in done.stderr
    assert "--runtime docker:IMAGE" in done.stderr and "host imported" not in done.stderr


def test_network_applies_to_the_docker_placement_only(tmp_path: Path) -> None:
    """`--network bridge` with the local placement: a usage error (exit 2)."""
    done = hud(tmp_path, "eval", LETTERS, "nop", "--network", "bridge")
    assert done.returncode == 2
    assert "--cpus/--memory/--pids-limit/--network apply to the docker placement only" in \
        " ".join(done.stderr.split())

"""`hud eval`, `hud jobs`, `hud trace` end to end (local placement)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ENVS


def hud(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HUD_RUNS_DIR": str(tmp_path / "runs")}
    return subprocess.run([sys.executable, "-m", "hud.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_eval_oracle_prints_table_and_job(tmp_path: Path) -> None:
    """Exit 0, placement on stderr's first line, a table and the job id on stdout."""
    done = hud(tmp_path, "eval", str(ENVS / "letters.py"), "oracle", "--group", "3")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0].startswith("placement: local")
    assert "count_letter-7723267a" in done.stdout and "zero variance" in done.stdout
    assert "reward 1.000 over 9 completed runs" in done.stdout and "job id:" in done.stdout


def test_eval_json_and_jobs_and_trace(tmp_path: Path) -> None:
    """--json is one document; jobs lists it; trace renders a run."""
    done = hud(tmp_path, "eval", str(ENVS / "letters.py"), "nop", "--json", "--task", "count_letter")
    job = json.loads(done.stdout)
    assert done.returncode == 0 and job["group"] == 1
    assert all(r["reward"] == 0.0 for r in job["runs"])
    listed = hud(tmp_path, "jobs")
    assert job["id"] in listed.stdout
    runs = hud(tmp_path, "jobs", job["id"])
    trace_id = runs.stdout.split("\t")[0]
    rendered = hud(tmp_path, "trace", trace_id)
    assert rendered.returncode == 0 and "grade" in rendered.stdout and "score" in rendered.stdout


def test_eval_json_carries_the_job_statistics(tmp_path: Path) -> None:
    """--json has `stats`: counts by status, mean reward, and each task's group."""
    done = hud(tmp_path, "eval", str(ENVS / "letters.py"), "oracle", "--group", "2", "--json")
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)["stats"]
    assert (stats["runs"], stats["by_status"]["completed"], stats["mean"]) == (6, 6, 1.0)
    assert stats["tasks"]["count_letter"] | {"by_status": None} == {
        "runs": 2, "completed": 2, "counted": 2, "errors": 0, "mean": 1.0, "std": 0.0,
        "zero_variance": True, "by_status": None}
    assert sorted(stats["zero_variance_tasks"]) == sorted(stats["tasks"]) and len(stats["tasks"]) == 3


def test_eval_table_counts_grade_errors_as_zero(tmp_path: Path) -> None:
    """A grader that raised is the agent's outcome: in its task's mean as 0.0, and the
    job's reward line says how many runs counted that way."""
    done = hud(tmp_path, "eval", str(ENVS / "faults.py"), "nop", "--group", "2",
               "--task", "raises_in_grading", "--task", "count_letter")
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if "raises_in_grading " in line)
    assert [cell.strip() for cell in row.split("│")[2:6]] == ["2", "0.000", "0.000", "2"]
    assert ("reward 0.000 over 4 runs (2 completed; 2 timed out or failed grading, counted "
            "as 0.0)") in " ".join(done.stdout.split())


def test_jobs_lists_each_jobs_reward(tmp_path: Path) -> None:
    """`hud jobs` shows Job.reward of a stored job: a timed-out run counts as 0.0."""
    from hud.eval import Job, Run
    from hud.eval.traces import write_job
    from hud.task import Task

    runs = [Run(trace_id=f"t{i}", job_id="job1", task=Task(env="e", id="t"), group_id="g",
                index=i, status=status, reward=reward)
            for i, (status, reward) in enumerate([("completed", 1.0), ("timeout", None)])]
    write_job(Job(id="job1", agent="nop", placement="local", group=2, runs=runs, finished_at=1.0),
              tmp_path / "runs")
    assert hud(tmp_path, "jobs").stdout == "job1\tnop\t2 runs\treward 0.500\tlocal\n"


def test_eval_unknown_agent_exits_1(tmp_path: Path) -> None:
    """An unknown agent is an error before anything runs."""
    done = hud(tmp_path, "eval", str(ENVS / "letters.py"), "martian")
    assert done.returncode == 1 and "no agent 'martian'" in done.stderr


def test_eval_all_infra_errors_exits_1(tmp_path: Path) -> None:
    """When no rollout could run, the job is an error (exit 1)."""
    done = hud(tmp_path, "eval", str(ENVS / "faults.py"), "nop", "--task", "raises_in_setup")
    assert done.returncode == 1 and "no rollout could run" in done.stderr


def test_trace_unknown_id(tmp_path: Path) -> None:
    """An unknown trace id: exit 1 naming it."""
    done = hud(tmp_path, "trace", "deadbeef")
    assert done.returncode == 1 and "no trace 'deadbeef'" in done.stderr


def test_resource_limits_need_the_docker_placement(tmp_path: Path) -> None:
    """--cpus on a local run is a usage error (exit 2)."""
    done = hud(tmp_path, "eval", str(ENVS / "letters.py"), "nop", "--cpus", "1")
    assert done.returncode == 2 and "docker placement only" in done.stderr


def test_eval_docker_limits_are_refused_for_other_placements(tmp_path: Path) -> None:
    """--pids-limit with the local placement is a usage error (exit 2) naming the placement."""
    done = hud(tmp_path, "eval", str(ENVS / "letters.py"), "nop", "--runtime", "local",
               "--pids-limit", "64")
    assert done.returncode == 2 and "apply to the docker placement only" in done.stderr
    assert "not local (in-process letter-count" in " ".join(done.stderr.split())


def test_eval_help_documents_the_container_limits(tmp_path: Path) -> None:
    """`hud eval --help` gives each docker limit's default."""
    done = hud(tmp_path, "eval", "--help")
    from hud.eval.placement import DEFAULT_PIDS_LIMIT

    text = " ".join(done.stdout.split())
    assert "--pids-limit" in text and f"[default: {DEFAULT_PIDS_LIMIT}; 0 or -1: no limit]" in text
    assert "[default: no limit]" in text


def test_warm_needs_a_placement_that_starts_environments(tmp_path: Path) -> None:
    """--warm 2 with the local placement is a usage error (exit 2) that names the fix."""
    done = hud(tmp_path, "eval", str(ENVS / "letters.py"), "nop", "--runtime", "local",
               "--warm", "2")
    text = " ".join(done.stderr.split())
    assert done.returncode == 2 and "--warm: warm=2 starts environments ahead of demand" in text
    assert "runtime='docker:IMAGE'" in text


def test_warm_must_not_be_negative(tmp_path: Path) -> None:
    """--warm -1 is refused by the option itself (exit 2)."""
    done = hud(tmp_path, "eval", str(ENVS / "letters.py"), "nop", "--warm", "-1")
    assert done.returncode == 2 and "'--warm'" in done.stderr and "-1" in done.stderr


def test_warm_0_runs_as_before(tmp_path: Path) -> None:
    """--warm 0 (the default) is accepted by every placement: the local eval still runs."""
    done = hud(tmp_path, "eval", str(ENVS / "letters.py"), "oracle", "--warm", "0")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0].startswith("placement: local")
    assert "reward 1.000 over 3 completed runs" in done.stdout


def _trace_file(tmp_path: Path, lines: list[str]) -> str:
    """A trace in the store (job `j1`), written as given; its id."""
    folder = tmp_path / "runs" / "j1"
    folder.mkdir(parents=True)
    (folder / "abc123.jsonl").write_text("\n".join(lines) + "\n")
    return "abc123"


def test_trace_text_is_shown_as_text_never_markup(tmp_path: Path) -> None:
    """Brackets from a model or an env (`ordered[mid + 1]`, `[/b]`, `[/INST]`) print as
    they are and do not crash `hud trace`; a C1 control byte is shown escaped."""
    event = {"t": 1.5, "type": "tool", "input": {"old_str": "ordered[mid + 1]",
                                                  "note": "[/b] and [/INST] [bold]x\x9b2J"}}
    trace_id = _trace_file(tmp_path, [json.dumps(event, ensure_ascii=False)])
    done = hud(tmp_path, "trace", trace_id)
    assert done.returncode == 0, done.stderr
    assert "ordered[mid + 1]" in done.stdout and "[/b] and [/INST] [bold]x" in done.stdout
    assert "\x9b" not in done.stdout and "\\u009b2J" in done.stdout


def test_trace_shows_bidi_and_zero_width_characters_escaped(tmp_path: Path) -> None:
    """A right-to-left override, an isolate and a zero-width space in a turn's text or
    thinking cannot reorder or hide what `hud trace` shows: each prints as its escape."""
    event = {"t": 1, "type": "model_turn", "text": "ok \u202etxt.exe\u200b",
             "thinking": ["a\u2066b\u2069"]}
    trace_id = _trace_file(tmp_path, [json.dumps(event, ensure_ascii=False)])
    done = hud(tmp_path, "trace", trace_id)
    assert done.returncode == 0, done.stderr
    assert not {"\u202e", "\u200b", "\u2066", "\u2069"} & set(done.stdout)
    assert "\\u202etxt.exe\\u200b" in done.stdout and "a\\u2066b\\u2069" in done.stdout


def test_a_corrupt_trace_line_is_named_and_skipped(tmp_path: Path) -> None:
    """A torn or edited line: a warning naming file and line, the other events rendered."""
    trace_id = _trace_file(tmp_path, [json.dumps({"t": 0, "type": "rollout"}), '{"t": 1, "ty',
                                      "[1, 2]", json.dumps({"t": 2, "type": "end"})])
    done = hud(tmp_path, "trace", trace_id)
    assert done.returncode == 0, done.stderr
    assert "abc123.jsonl:2: not JSON" in done.stderr
    assert "abc123.jsonl:3: a JSON list, not an object" in done.stderr
    assert "rollout" in done.stdout and "end" in done.stdout and "Traceback" not in done.stderr


def test_jobs_names_and_skips_bad_job_files(tmp_path: Path) -> None:
    """A job.json that is not JSON, or not a job, is named on stderr; the others list."""
    done = hud(tmp_path, "eval", str(ENVS / "letters.py"), "nop", "--task", "count_letter*")
    assert done.returncode == 0, done.stderr
    for name, text in (("torn", '{"id": "torn", "ag'), ("alist", "[1, 2]"),
                       ("noid", '{"agent": "x", "placement": "y", "runs": []}')):
        (tmp_path / "runs" / name).mkdir()
        (tmp_path / "runs" / name / "job.json").write_text(text)
    listed = hud(tmp_path, "jobs")
    assert listed.returncode == 0, listed.stderr
    assert "\tnop\t3 runs\treward 0.000" in listed.stdout and "Traceback" not in listed.stderr
    for name in ("torn", "alist", "noid"):
        assert f"runs/{name}/job.json: " in listed.stderr


def test_a_killed_job_is_listed_with_the_runs_it_finished(tmp_path: Path) -> None:
    """SIGKILL an eval mid-job: `hud jobs` still lists it (job.json is written at the
    start), marked as not finished."""
    script = tmp_path / "slow_eval.py"
    script.write_text(
        "import asyncio\n"
        "from hud.eval import Taskset\n"
        f"tasks = Taskset.from_source({str(ENVS / 'letters.py')!r})\n"
        "async def sleepy(run):\n"
        "    print('AGENT-RUNNING', flush=True)\n"
        "    await asyncio.sleep(600)\n"
        "asyncio.run(tasks.filter(['count_letter']).run(sleepy, runtime='local'))\n")
    env = {**os.environ, "HUD_RUNS_DIR": str(tmp_path / "runs")}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "AGENT-RUNNING"
    finally:
        proc.kill()
        proc.wait(timeout=30)
    listed = hud(tmp_path, "jobs")
    assert listed.returncode == 0, listed.stderr
    assert "\t0 runs\treward -\tlocal" in listed.stdout
    assert "(running, or killed)" in listed.stdout


def test_eval_every_agent_error_exits_1(tmp_path: Path) -> None:
    """A provider that cannot be reached (a closed loopback port): every rollout is an
    agent_error, and the job exits 1 saying so, not 0."""
    from tests.tcpkit import free_port

    env = {**os.environ, "HUD_RUNS_DIR": str(tmp_path / "runs"), "ANTHROPIC_API_KEY": "x",
           "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{free_port()}"}
    done = subprocess.run([sys.executable, "-m", "hud.cli.main", "eval", str(ENVS / "letters.py"),
                           "claude-sonnet-4-5", "--task", "count_letter*"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "error: no rollout could run (3 agent_error)" in done.stderr


def test_eval_some_failed_exits_3(tmp_path: Path) -> None:
    """Some rollouts graded, one failed on setup (infra_error): exit 3 and a warning."""
    done = hud(tmp_path, "eval", str(ENVS / "faults.py"), "nop", "--task", "raises_in_setup",
               "--task", "count_letter")
    assert done.returncode == 3, done.stderr
    assert "warning: 1 of 2 rollouts failed" in done.stderr and "infra_error" in done.stderr

"""`hud task ...`, `hud manifest`, `hud health` against a real daemon."""

from __future__ import annotations

import json

from tests.conftest import ENVS


def test_list_prints_slugs_and_args(start_daemon) -> None:
    """One line per listed task: slug, then args when there are any."""
    daemon = start_daemon(str(ENVS / "letters.py"))
    done = daemon.hud("task", "list")
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "count_letter"
    assert lines[1].startswith("count_letter-") and '{"word": "raspberry"}' in lines[1]


def test_list_json(start_daemon) -> None:
    """--json prints exactly one JSON document with tasks and templates."""
    daemon = start_daemon(str(ENVS / "letters.py"))
    data = json.loads(daemon.hud("task", "list", "--json").stdout)
    assert len(data["tasks"]) == 3 and data["templates"][0]["id"] == "count_letter"


def test_start_with_args_and_json_output(start_daemon) -> None:
    """--arg values are coerced by the daemon; --json carries the session id."""
    daemon = start_daemon(str(ENVS / "faults.py"))
    done = daemon.hud("task", "start", "add", "--arg", "a=40", "--args", '{"b": 2}', "--json")
    frame = json.loads(done.stdout)
    assert frame["prompt"] == "What is 40 + 2?" and frame["session_id"]
    graded = daemon.hud("task", "grade", "add", "--answer", "42", "--json")
    assert json.loads(graded.stdout) == {"score": 1.0, "info": {"expected": 42}}


def test_grade_reads_answer_from_stdin_and_file(start_daemon, short_dir) -> None:
    """--answer - reads stdin; --answer-file reads a file."""
    daemon = start_daemon(str(ENVS / "letters.py"))
    daemon.hud("task", "start", "count_letter")
    assert daemon.hud("task", "grade", "count_letter", "--answer", "-", input="3\n").stdout.strip() == "1.0"
    answer = short_dir / "answer.txt"
    answer.write_text("2")
    daemon.hud("task", "start", "count_letter")
    assert daemon.hud("task", "grade", "--answer-file", str(answer)).stdout.strip() == "0.0"


def test_grade_never_starts_a_fresh_task(start_daemon) -> None:
    """Grading with nothing started is an error (exit 1), not a silent new task."""
    daemon = start_daemon(str(ENVS / "letters.py"))
    done = daemon.hud("task", "grade", "count_letter", "--answer", "3")
    assert done.returncode == 1 and "no task in progress for 'count_letter'" in done.stderr


def test_two_parked_sessions_need_a_session_id(start_daemon) -> None:
    """With two starts of one task, grade lists both; --session picks one."""
    daemon = start_daemon(str(ENVS / "letters.py"))
    ids = [json.loads(daemon.hud("task", "start", "count_letter", "--json").stdout)["session_id"]
           for _ in range(2)]
    ambiguous = daemon.hud("task", "grade", "count_letter", "--answer", "3")
    assert ambiguous.returncode == 1
    assert all(i in ambiguous.stderr for i in ids) and "--session" in ambiguous.stderr
    picked = daemon.hud("task", "grade", "count_letter", "--answer", "3", "--session", ids[1])
    assert picked.stdout.strip() == "1.0"


def test_cancel(start_daemon) -> None:
    """cancel ends the parked task; a later grade finds nothing."""
    daemon = start_daemon(str(ENVS / "letters.py"))
    daemon.hud("task", "start", "count_letter")
    assert daemon.hud("task", "cancel", "count_letter").stdout.strip() == "cancelled count_letter"
    assert daemon.hud("task", "grade", "--answer", "3").returncode == 1


def test_bad_args_json_is_a_usage_error() -> None:
    """Malformed --args is exit 2 (usage), before any connection."""
    from click.testing import CliRunner

    from hud.cli.main import cli

    result = CliRunner().invoke(cli, ["task", "start", "x", "--args", "{not json"])
    assert result.exit_code == 2 and "not JSON" in result.output


def test_grade_needs_exactly_one_answer_source() -> None:
    """Neither --answer nor --answer-file is a usage error."""
    from click.testing import CliRunner

    from hud.cli.main import cli

    result = CliRunner().invoke(cli, ["task", "grade", "x"])
    assert result.exit_code == 2 and "exactly one of --answer" in result.output


def test_task_error_shows_the_traceback(start_daemon) -> None:
    """A template raising in setup: exit 1, message and the template's traceback."""
    daemon = start_daemon(str(ENVS / "faults.py"))
    done = daemon.hud("task", "start", "key_error_in_setup")
    assert done.returncode == 1
    assert "task 'key_error_in_setup' raised KeyError: 'missing_key' during setup" in done.stderr
    assert 'data["missing_key"]' in done.stderr


def test_manifest_from_daemon_and_in_process(start_daemon) -> None:
    """`hud manifest` asks the daemon; `--module` loads the env without one."""
    daemon = start_daemon(str(ENVS / "letters.py"))
    remote = json.loads(daemon.hud("manifest").stdout)
    local = json.loads(daemon.hud("manifest", "--module", str(ENVS / "letters.py")).stdout)
    assert remote["env"] == local["env"] == {"name": "letter-count", "version": "0.1.0", "layer": "base",
                                            "concurrency": 64}
    assert remote["tasks"] == local["tasks"]


def test_manifest_module_import_error_exits_1_with_traceback(start_daemon) -> None:
    """A broken module: exit 1 and the traceback on stderr."""
    daemon = start_daemon(str(ENVS / "letters.py"))
    done = daemon.hud("manifest", "--module", str(ENVS / "broken.py"))
    assert done.returncode == 1 and "Traceback" in done.stderr and "definitely_missing" in done.stderr


def test_health_ok(start_daemon) -> None:
    """health exits 0 and prints ok for a serving daemon."""
    daemon = start_daemon(str(ENVS / "letters.py"))
    done = daemon.hud("health")
    assert (done.returncode, done.stdout.strip()) == (0, "ok")


ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x9b31m\u202e"


def test_list_shows_a_descriptions_control_characters_escaped(start_daemon, tmp_path) -> None:
    """A description with terminal escapes (title, clear screen, CSI, bidi override) prints
    each as its \\uXXXX escape, in the text list and in --json (the same JSON value)."""
    env = tmp_path / "hostile.py"
    env.write_text("from hud import Environment\n\nenv = Environment(name='hostile')\n\n\n"
                   f"@env.template(description={'plain ' + ESCAPES + ' end'!r})\n"
                   "async def t():\n    yield 'go'\n    yield 1.0\n")
    daemon = start_daemon(str(env))
    text = daemon.hud("task", "list").stdout
    assert "plain \\u001b]0;pwned\\u0007\\u001b[2J\\u009b31m\\u202e end" in text
    raw = daemon.hud("task", "list", "--json").stdout
    assert not {"\x1b", "\x07", "\x9b", "\u202e"} & set(raw)
    assert json.loads(raw)["tasks"][0]["description"] == f"plain {ESCAPES} end"

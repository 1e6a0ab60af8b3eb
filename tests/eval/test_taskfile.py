"""The task file (JSONL): written by `hud task export` and `hud task list --json`, read back
by `hud eval FILE` and `Taskset.from_file`; old files stay readable; bad rows are named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hud.cli.main import cli
from hud.errors import ConfigError, ProtocolError
from hud.eval import Taskset
from hud.eval.taskfile import ImageRef, drift_warning, manifest_rows
from tests.conftest import ENVS

LETTERS = str(ENVS / "letters.py")
IMAGE_ID = "sha256:" + "ab" * 32


def export(*args: str) -> str:
    """`hud task export ARGS...` through click; its stdout."""
    done = CliRunner().invoke(cli, ["task", "export", *args])
    assert done.exit_code == 0, done.output
    return done.stdout


def rows_of(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_export_writes_one_row_per_task_naming_its_env(tmp_path: Path) -> None:
    """`hud task export tasks.py -o FILE` writes a JSONL row per listed task, env first."""
    out = tmp_path / "t.jsonl"
    export(LETTERS, "-o", str(out))
    rows = rows_of(out.read_text())
    assert [r["slug"] for r in rows] == [t.slug for t in Taskset.from_source(LETTERS)]
    assert rows[1] == {"env": "letter-count", "id": "count_letter",
                       "args": {"word": "raspberry"}, "slug": "count_letter-7723267a"}


def test_export_then_from_file_gives_the_same_tasks(tmp_path: Path) -> None:
    """Round trip: the tasks read back from an exported file equal the source's."""
    out = tmp_path / "t.jsonl"
    export(LETTERS, "-o", str(out))
    assert Taskset.from_file(out).tasks == Taskset.from_source(LETTERS).tasks


def test_rows_keep_their_image_through_a_round_trip(tmp_path: Path) -> None:
    """A file whose rows name an image: read, written, read again — byte for byte the same,
    and the taskset knows the image (the default docker placement runs it)."""
    first = tmp_path / "a.jsonl"
    first.write_text("".join(json.dumps({"env": "e", "id": "t", "args": {"n": n}, "slug": f"t-{n}",
                                         "image": "my-env:1", "image_id": IMAGE_ID}) + "\n"
                             for n in range(3)))
    taskset = Taskset.from_file(first)
    again = taskset.to_file(tmp_path / "b.jsonl")
    assert again.read_text() == first.read_text()
    assert taskset.images == [ImageRef("my-env:1", IMAGE_ID, str(first))]
    assert taskset.placement(None).describe().startswith("docker (my-env:1,")


def test_export_to_stdout_is_the_same_file(tmp_path: Path) -> None:
    """`-o -` (the default) prints the very rows `-o FILE` writes."""
    out = tmp_path / "t.jsonl"
    export(LETTERS, "-o", str(out))
    assert export(LETTERS) == out.read_text()


def test_export_selects_with_task_patterns(tmp_path: Path) -> None:
    """`hud task export --task GLOB` writes only the tasks the glob selects."""
    rows = rows_of(export(LETTERS, "--task", "count_letter-*"))
    assert [r["args"]["word"] for r in rows] == ["raspberry", "blueberry"]


def test_task_list_json_of_a_daemon_is_a_task_file(start_daemon, tmp_path: Path) -> None:
    """What `hud task list --json` prints (against a daemon, as inside a container) is read
    back by `hud eval FILE`: its rows name their env (they did not: "env Field required")."""
    daemon = start_daemon(LETTERS)
    listed = daemon.hud("task", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    path = tmp_path / "listed.json"
    path.write_text(listed.stdout)
    assert Taskset.from_file(path).tasks == Taskset.from_source(LETTERS).tasks
    assert json.loads(listed.stdout)["templates"][0]["id"] == "count_letter"


def test_old_task_files_stay_readable(tmp_path: Path) -> None:
    """Rows as older hud wrote them (Task fields only, description null), as JSONL or as
    a JSON list, still load."""
    old = [{"env": "letter-count", "id": "count_letter", "args": {"word": "kiwi"},
            "slug": "count_letter-x", "description": None}]
    (tmp_path / "old.jsonl").write_text(json.dumps(old[0]) + "\n")
    (tmp_path / "old.json").write_text(json.dumps(old, indent=2))
    for name in ("old.jsonl", "old.json"):
        (task,) = Taskset.from_file(tmp_path / name)
        assert (task.slug, task.args) == ("count_letter-x", {"word": "kiwi"})


def test_a_row_without_a_slug_gets_the_computed_one(tmp_path: Path) -> None:
    """A hand-written row may leave the slug out: it is the template id plus the args' hash."""
    path = tmp_path / "hand.jsonl"
    path.write_text('{"env": "letter-count", "id": "count_letter", "args": {"word": "raspberry"}}\n')
    assert [t.slug for t in Taskset.from_file(path)] == ["count_letter-7723267a"]


@pytest.mark.parametrize(("text", "message"), [
    ('{"env": "e", "id": "t"}\n\n{"env": "e", "id": "t2"\n',
     r"bad\.jsonl line 3 is not JSON \(.*\): '\{\"env\".*one JSON object per line.*"
     r"hud task export IMAGE -o FILE\.jsonl"),
    ('{"env": "e", "id": "t"}\n{"slug": "t", "id": "t", "args": {}}\n',
     r"bad\.jsonl line 2: task 2 is invalid: env: Field required \(rows listed by an older "
     r"`hud task list --json` have no \"env\""),
    ('{"env": "e", "id": "t", "arg": {"a": 1}}\n',
     r"line 1: task 1 is invalid: arg: Extra inputs are not permitted"),
    ('{"env": "e", "id": "t", "image": "--privileged"}\n',
     r"line 1: task 1 is invalid: image: String should match pattern"),
    ('{"env": "e\\u001b[2J", "id": "t"}\n', r"env: 'e\\x1b\[2J' is longer than 256 characters "
     r"or holds control characters"),
])
def test_a_bad_row_is_named_with_its_line_and_the_fix(tmp_path: Path, text: str,
                                                      message: str) -> None:
    """Not JSON, no env, an unknown key, an image that would be a docker option, control
    characters: one error naming the file, the line and what a row must be."""
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        Taskset.from_file(path)


def test_eval_of_a_bad_task_file_exits_1_naming_the_line(tmp_path: Path) -> None:
    """`hud eval FILE` with a bad row: exit 1, `error: FILE line N ...`, no traceback."""
    path = tmp_path / "bad.jsonl"
    path.write_text('{"env": "e", "id": "t"}\n{"id": 5}\n')
    done = CliRunner().invoke(cli, ["eval", str(path), "nop"])
    assert done.exit_code == 1
    assert "bad.jsonl line 2: task 2 is invalid: env: Field required" in done.stderr
    assert "Traceback" not in done.output


def test_a_manifest_listing_an_invalid_task_is_refused() -> None:
    """A label or container whose listed task has a control character in its slug: a
    ProtocolError naming the source and the index; no row is made."""
    manifest = {"env": {"name": "e", "version": "1"},
                "tasks": [{"id": "t", "slug": "t"}, {"id": "t", "slug": "t\x1b[31m"}]}
    with pytest.raises(ProtocolError, match=r"image 'x' lists an invalid task \(tasks\[1\]: slug"):
        manifest_rows(manifest, "image 'x'")


def test_drift_warning_names_both_ids_and_the_fix() -> None:
    """Tasks listed from one image ID, run on another: one line with both IDs and the fixes;
    the same ID: no warning."""
    recorded = [ImageRef("my-env", IMAGE_ID, "tasks.jsonl")]
    assert drift_warning(recorded, "my-env", IMAGE_ID) is None
    line = drift_warning(recorded, "my-env", "sha256:" + "cd" * 32)
    assert line is not None and "\n" not in line
    assert line.startswith("warning: the tasks in tasks.jsonl were listed from image my-env "
                           "(sha256:abababababab) but my-env is now sha256:cdcdcdcdcdcd")
    assert "`hud task export my-env -o FILE.jsonl`" in line
    assert f"--runtime docker:{IMAGE_ID}" in line


def test_drift_warning_names_each_image_that_differs() -> None:
    """Rows of three images, one of them the running one: a line for each of the other two
    (the running image's rows do not excuse them), none for the same image twice."""
    now = "sha256:" + "cd" * 32
    recorded = [ImageRef("old-a:1", IMAGE_ID, "t.jsonl"), ImageRef("my-env", now, "t.jsonl"),
                ImageRef("old-b:1", "sha256:" + "ef" * 32, "t.jsonl"),
                ImageRef("old-a:1", IMAGE_ID, "t.jsonl")]
    warning = drift_warning(recorded, "my-env", now)
    assert warning is not None
    lines = warning.splitlines()
    assert [line.split(" were listed from image ")[1].split()[0] for line in lines] == \
        ["old-a:1", "old-b:1"]


def test_a_task_file_nested_past_the_depth_limit_is_refused(tmp_path: Path) -> None:
    """Args nested deeper than hud reads (yet shallow enough for the JSON parser): a
    ConfigError naming the file and the line, never a later RecursionError."""
    deep = "[" * 150 + "]" * 150
    path = tmp_path / "deep.jsonl"
    path.write_text('{"env": "e", "id": "t"}\n{"env": "e", "id": "u", "args": {"x": ' + deep
                    + "}}\n")
    with pytest.raises(ConfigError, match=r"deep\.jsonl line 2 is refused: its arrays and "
                                          r"objects nest deeper than 100 levels"):
        Taskset.from_file(path)

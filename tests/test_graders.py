"""hud.graders: the true score of a project, and the graders that run no agent code
(file_content, exact_answer) or run a command (command); the grading user's checks.

The hostile projects (planted modules, forgeries, floods, leaks) are in test_sandbox.py.
"""

from __future__ import annotations

import os
import pwd
import stat
import tempfile
from pathlib import Path

import pytest

from hud import graders
from hud.errors import ConfigError
from hud.graders import Case, Limits
from tests.graderkit import CASES, FIXED, agent_account, grade, grader, grader_account, project  # noqa: F401

# -- the true score ------------------------------------------------------------------------


async def test_correct_project_scores_one(grader, tmp_path: Path) -> None:
    """The fixed project passes every hidden case: 1.0."""
    reward = await grade(project(tmp_path, core=FIXED))
    assert reward["score"] == 1.0, reward
    assert reward["info"]["passed"] == len(CASES)


async def test_buggy_project_scores_zero_and_names_the_failed_cases(grader, tmp_path: Path) -> None:
    """The buggy project: 0.0, and info says which calls failed and what they gave."""
    reward = await grade(project(tmp_path))
    assert reward["score"] == 0.0
    assert [f["case"] for f in reward["info"]["failed"]] == [0, 1]
    assert "IndexError" in reward["info"]["failed"][1]["got"]


async def test_partial_scores_the_fraction_passed(grader, tmp_path: Path) -> None:
    """partial=True gives the fraction of cases passed."""
    reward = await grade(project(tmp_path), partial=True)
    assert reward["score"] == pytest.approx(3 / 5)


# -- file_content, exact_answer, command, the grading user ---------------------------------


def test_file_content_matches_exact_text(tmp_path: Path) -> None:
    """The right content scores 1.0, surrounding whitespace aside; other content 0.0."""
    (tmp_path / "out.txt").write_text("42\n")
    assert graders.file_content(str(tmp_path / "out.txt"), expect="42")["score"] == 1.0
    assert graders.file_content(str(tmp_path / "out.txt"), expect="4")["score"] == 0.0


def test_file_content_refuses_a_symlink(tmp_path: Path) -> None:
    """A symlink (here to a file with the right content) scores 0 with the reason."""
    (tmp_path / "real.txt").write_text("42")
    os.symlink(tmp_path / "real.txt", tmp_path / "out.txt")
    reward = graders.file_content(str(tmp_path / "out.txt"), expect="42")
    assert reward["score"] == 0.0
    assert "symlink" in reward["info"]["reason"]


def test_file_content_refuses_a_symlinked_folder_on_the_path(tmp_path: Path) -> None:
    """A symlink anywhere on the path is refused, not only at the end."""
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "out.txt").write_text("42")
    os.symlink(tmp_path / "real", tmp_path / "dir")
    reward = graders.file_content(str(tmp_path / "dir" / "out.txt"), expect="42")
    assert reward["score"] == 0.0
    assert "symlink" in reward["info"]["reason"]


def test_file_content_bounds_the_size(tmp_path: Path) -> None:
    """A file over max_bytes scores 0 with the reason, without reading it whole."""
    (tmp_path / "big").write_bytes(b"x" * 5000)
    reward = graders.file_content(str(tmp_path / "big"), expect=lambda t: True, max_bytes=1000)
    assert reward["score"] == 0.0
    assert "over the limit of 1000 bytes" in reward["info"]["reason"]


def test_file_content_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    """A fifo where the file should be is "not a regular file", and nothing hangs."""
    os.mkfifo(tmp_path / "out.txt")
    reward = graders.file_content(str(tmp_path / "out.txt"), expect="42")
    assert reward["info"]["reason"].endswith("is not a regular file")


def test_file_content_predicate_that_raises_is_a_zero(tmp_path: Path) -> None:
    """A predicate failing on the agent's content is a 0 with the reason, not an error."""
    (tmp_path / "out.txt").write_text("not a number")
    reward = graders.file_content(str(tmp_path / "out.txt"), expect=lambda t: int(t) == 42)
    assert reward["score"] == 0.0
    assert reward["info"]["reason"].startswith("expect raised ValueError")


@pytest.mark.parametrize(("answer", "score"), [
    ("3", 1.0), (" 3.\n", 1.0), ("0123456789", 0.0), ("3 apples", 0.0), ("33", 0.0),
    ("", 0.0), (None, 0.0),
])
def test_exact_answer(answer: object, score: float) -> None:
    """Only the number itself (whitespace and a final period aside) is right."""
    assert graders.exact_answer(answer, 3)["score"] == score


WC = "import sys\nprint(len(sys.stdin.read().split()))\n"


async def test_command_compares_output_on_hidden_input(grader, tmp_path: Path) -> None:
    """A word counter: right on the hidden input scores 1.0; a program that prints a
    success line and exits 0 scores 0."""
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "wc.py").write_text(WC)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "wc.py").write_text("print('OK: all tests passed')\n")
    for name, want in (("good", 1.0), ("bad", 0.0)):
        reward = await graders.command(str(tmp_path / name), ["python3", "wc.py"],
                                       stdin="one two three", expect_stdout="3", expect_exit=0)
        assert reward["score"] == want, reward


async def test_command_timeout_is_a_zero_with_the_reason(grader) -> None:
    """A command past its time is killed: 0, "timeout after 1s"."""
    reward = await graders.command(None, ["sleep", "30"], expect_exit=0, limits=Limits(timeout=1))
    assert (reward["score"], reward["info"]["reason"]) == (0.0, "timeout after 1s")


async def test_command_runs_as_the_grading_user(grader) -> None:
    """The command's uid is the grading account's, not root and not the agent."""
    reward = await graders.command(None, ["id", "-u"], expect_stdout=str(grader.pw_uid))
    assert reward["score"] == 1.0, reward


async def test_command_needs_an_expectation() -> None:
    """An exit code or output must be asked for: otherwise it is the author's mistake."""
    with pytest.raises(ConfigError, match="expect_stdout= and/or expect_exit="):
        await graders.command(None, ["true"])


def test_case_needs_exactly_one_of_expect_and_raises() -> None:
    """Case without an expectation, or with both, is refused."""
    with pytest.raises(ConfigError, match="exactly one of expect= and raises="):
        Case("stats:median", args=[[1]])
    with pytest.raises(ConfigError, match="exactly one of expect= and raises="):
        Case("stats:median", args=[[1]], expect=1, raises="ValueError")


def test_case_arguments_must_be_json() -> None:
    """Inputs cross into the sandbox as JSON: anything else is refused up front."""
    with pytest.raises(ConfigError, match="must be JSON data"):
        Case("stats:median", args=[{1, 2}], expect=1)


async def test_missing_grading_user_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    """No such account: a ConfigError saying how to create it or opt out."""
    monkeypatch.setenv("HUD_GRADER_USER", "hud-no-such-grader")
    with pytest.raises(ConfigError, match=r"useradd --system.*HUD_GRADER_USER="):
        await graders.command(None, ["true"], expect_exit=0)


async def test_grading_as_root_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """HUD_GRADER_USER=root is not isolation: refused."""
    monkeypatch.setenv("HUD_GRADER_USER", pwd.getpwuid(0).pw_name)
    with pytest.raises(ConfigError, match="is root or the agent's account"):
        await graders.command(None, ["true"], expect_exit=0)


async def test_empty_grader_user_runs_as_the_daemon_itself(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """HUD_GRADER_USER= (empty): no uid switch, the limits and the comparison still hold."""
    monkeypatch.setenv("HUD_GRADER_USER", "")
    reward = await graders.command(None, ["id", "-u"], expect_stdout=str(os.getuid()))
    assert reward["score"] == 1.0, reward
    assert (await grade(project(tmp_path)))["score"] == 0.0
    assert not any(stat.S_ISDIR(os.lstat(p).st_mode) for p in
                   Path(tempfile.gettempdir()).glob("hud-grade-*"))

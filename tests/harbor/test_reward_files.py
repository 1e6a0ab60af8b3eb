"""Reading a Harbor verifier's reward file: numbers are rewards, anything else is an error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hud.harbor.verifier import parse_reward, read_reward


@pytest.mark.parametrize(("text", "reward"), [("1", 1.0), ("0\n", 0.0), (" 0.25 ", 0.25),
                                              ("1e0", 1.0)])
def test_reward_txt_is_one_number(text: str, reward: float) -> None:
    """reward.txt holds one number (whitespace around it is fine)."""
    assert parse_reward("reward.txt", text.encode()) == (reward, {})


@pytest.mark.parametrize(("text", "why"), [("", "holds '', not a number"),
                                           ("pass", "holds 'pass', not a number"),
                                           ("1 0", "holds '1 0', not a number"),
                                           ("nan", "not a finite number")])
def test_reward_txt_that_is_not_a_number_is_an_error(text: str, why: str) -> None:
    """Empty, words, two numbers or NaN: an error, never a 0."""
    with pytest.raises(ValueError, match=why):
        parse_reward("reward.txt", text.encode())


def test_reward_json_takes_its_reward_key_and_keeps_the_numbers() -> None:
    """reward.json's "reward" is the reward; every number in it is kept as a metric."""
    data = b'{"reward": 0.5, "total_ok": 1.0, "regions_ok": 0.0, "note": "half"}'
    assert parse_reward("reward.json", data) == (
        0.5, {"reward": 0.5, "total_ok": 1.0, "regions_ok": 0.0})


def test_reward_json_with_one_number_uses_it() -> None:
    """No "reward" key but exactly one number: that number."""
    assert parse_reward("reward.json", b'{"accuracy": 0.75}') == (0.75, {"accuracy": 0.75})


@pytest.mark.parametrize(("text", "why"), [
    ("[1]", "holds a list, not an object"), ("{", "is not JSON"),
    ('{"a": 1, "b": 0}', r'no "reward" key and 2 numbers \(a, b\)'),
    ('{"reward": "1"}', r'"reward" is \'1\', not a number'),
    ('{"reward": true}', r'"reward" is True, not a number')])
def test_malformed_reward_json_is_an_error(text: str, why: str) -> None:
    """A list, broken JSON, an ambiguous object or a non-numeric reward: an error."""
    with pytest.raises(ValueError, match=why):
        parse_reward("reward.json", text.encode())


def test_reward_txt_wins_over_reward_json(tmp_path: Path) -> None:
    """With both files, reward.txt is the reward (as Harbor reads them)."""
    (tmp_path / "reward.txt").write_text("1")
    (tmp_path / "reward.json").write_text('{"reward": 0}')
    assert read_reward(str(tmp_path)) == (1.0, "reward.txt", {})


def test_no_reward_file_is_an_error(tmp_path: Path) -> None:
    """Neither file: an error naming both."""
    with pytest.raises(ValueError, match=r"neither \S+/reward\.txt nor \S+/reward\.json was "
                                         r"written"):
        read_reward(str(tmp_path))


def test_a_symlinked_reward_file_is_refused(tmp_path: Path) -> None:
    """A reward.txt that is a symlink is not followed: an error, not its target's number."""
    (tmp_path / "elsewhere").write_text("1")
    os.symlink(tmp_path / "elsewhere", tmp_path / "reward.txt")
    with pytest.raises(ValueError, match=r"reward\.txt is \(or passes through\) a symlink"):
        read_reward(str(tmp_path))

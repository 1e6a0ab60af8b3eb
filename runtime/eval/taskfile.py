"""The task file: tasks as data, one JSON object per line, each naming where it came from.

    {"env": "letter-count", "id": "count_letter", "args": {"word": "kiwi"},
     "slug": "count_letter-1f0c2a9e", "image": "letter-count", "image_id": "sha256:..."}

`hud task export SOURCE -o FILE.jsonl` writes it; `hud eval FILE.jsonl` and
`Taskset.from_file` read it. A row is a `hud.task.Task` (env, template id, args, slug,
description) plus the image it was listed from: `image`, the reference to run, and
`image_id`, the ID that reference had then, so an eval can warn when the image changed
since the tasks were listed. `slug` and `description` may be left out (the slug is then
computed from the id and args); `image` and `image_id` are left out for tasks listed
from a module or a daemon that knows no image.

Design decisions:
- Every row stands alone, so a file can be filtered, shuffled, split and concatenated
  with line tools (`grep`, `shuf`, `head`, `cat a b`) and stay valid.
- What older hud wrote stays readable: rows of `Task` alone, a JSON list of rows (a
  `.json` file), and the one document `hud task list --json` prints
  (`{"tasks": [rows], "templates": [...]}`).
- A row is strict (`extra="forbid"`, printable names): a task file or an image label may
  come from someone else. A bad row is an error naming the file, its line and the fix;
  nothing of the file is used.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hud.clients.untrusted import PRINTABLE, TooDeep, loads
from hud.errors import ConfigError, ProtocolError
from hud.task import Task
from hud.wire import INVALID_REQUEST

#: an image reference as docker takes it (never starting with `-`: it lands on argv)
IMAGE_REF = r"[A-Za-z0-9_][A-Za-z0-9_.:/@+-]{0,511}"
IMAGE_ID = r"[A-Za-z0-9_][A-Za-z0-9_.:+-]{0,255}"
ROW_EXAMPLE = '{"env": ENV, "id": TEMPLATE, "args": {...}}'
EXPORT_FIX = "`hud task export IMAGE -o FILE.jsonl` writes a valid one"


@dataclass(frozen=True)
class ImageRef:
    """The image some tasks were listed from: the reference to run, its ID then, and
    where that was recorded (for messages: a task file, hud.lock.json, an image)."""

    ref: str
    id: str | None
    origin: str


class TaskRow(BaseModel):
    """One line of a task file: a task and the image it was listed from."""

    model_config = ConfigDict(extra="forbid")

    env: str = Field(min_length=1)
    id: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)
    slug: str = ""
    description: str | None = Field(None, max_length=65536)
    image: str | None = Field(None, pattern=f"^{IMAGE_REF}$")
    image_id: str | None = Field(None, pattern=f"^{IMAGE_ID}$")

    @field_validator("env", "id", "slug")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not PRINTABLE.fullmatch(value):
            raise ValueError(f"{value[:80]!r} is longer than 256 characters or holds "
                             f"control characters")
        return value

    @classmethod
    def of(cls, task: Task, image: ImageRef | None = None) -> TaskRow:
        """The row of `task`, listed from `image` (or from no image)."""
        return cls(env=task.env, id=task.id, args=task.args, slug=task.slug,
                   description=task.description, image=image.ref if image else None,
                   image_id=image.id if image else None)

    def task(self) -> Task:
        """The runnable `Task` of this row (the slug computed when the row has none)."""
        return Task(env=self.env, id=self.id, args=self.args, slug=self.slug,
                    description=self.description)

    def dump(self) -> dict[str, Any]:
        """The row as written: keys in a fixed order, absent values left out."""
        return self.model_dump(mode="json", exclude_none=True)


def _problems(exc: ValidationError) -> str:
    shown = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "row"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] not in ("missing", "value_error"):
            text = repr(error.get("input"))
            message += f" (got {text if len(text) <= 80 else text[:80] + '…'})"
        shown.append(f"{where}: {message}")
    return "; ".join(shown)


def _row(item: Any, where: str) -> TaskRow:
    """`item` as a row; a ConfigError naming `where` and the fix when it is not one."""
    try:
        return TaskRow.model_validate(item)
    except ValidationError as exc:
        hint = ""
        if isinstance(item, dict) and "env" not in item and "id" in item:
            hint = (' (rows listed by an older `hud task list --json` have no "env": '
                    'export the tasks again, or add "env": NAME to each row)')
        raise ConfigError(f"{where} is invalid: {_problems(exc)}{hint}; each task is one "
                          f"JSON object {ROW_EXAMPLE}; {EXPORT_FIX}") from None


def read_rows(path: str | Path) -> list[TaskRow]:
    """The rows of a task file: JSON Lines, a JSON list of rows, or the document
    `hud task list --json` prints.

    Raises:
        ConfigError: the file cannot be read, a line is not JSON, or a row is invalid
            (the message names the file, the line or task number, and the fix).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read task file {path}: {exc}") from exc
    try:
        whole = loads(text) if text.strip() else []
    except TooDeep as exc:
        raise ConfigError(f"task file {path} is refused: {exc}; {EXPORT_FIX}") from None
    except ValueError:
        whole = None  # not one JSON document: JSON Lines
    if isinstance(whole, dict) and isinstance(whole.get("tasks"), list):
        whole = whole["tasks"]  # `hud task list --json`
    if isinstance(whole, list):
        return [_row(item, f"{path}: task {n}") for n, item in enumerate(whole, 1)]
    rows: list[TaskRow] = []
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = loads(line)
        except TooDeep as exc:
            raise ConfigError(f"{path} line {line_no} is refused: {exc}; {EXPORT_FIX}") from None
        except ValueError as exc:
            raise ConfigError(f"{path} line {line_no} is not JSON ({exc}): {line[:80]!r}; a "
                              f"task file has one JSON object per line, {ROW_EXAMPLE}; "
                              f"{EXPORT_FIX}") from None
        rows.append(_row(item, f"{path} line {line_no}: task {len(rows) + 1}"))
    return rows


def write_rows(path: str | Path, rows: Iterable[TaskRow]) -> Path:
    """Write `rows` as JSON Lines (a JSON list for a `.json` path); return the path."""
    path = Path(path)
    dumped = [row.dump() for row in rows]
    if path.suffix == ".json":
        path.write_text(json.dumps(dumped, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    else:
        path.write_text(format_rows(dumped), encoding="utf-8")
    return path


def format_rows(rows: Iterable[dict[str, Any]]) -> str:
    """Rows as JSON Lines text."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def manifest_rows(manifest: dict[str, Any], source: str,
                  image: ImageRef | None = None) -> list[TaskRow]:
    """The tasks a manifest lists (already through `parse_manifest`), as rows.

    Args:
        manifest: the validated manifest of an image label, a container or a daemon.
        source: what sent it, for the message, e.g. "image 'letter-count'".
        image: the image the tasks were listed from, recorded in each row.

    Raises:
        ProtocolError: a listed task is not a valid row (the source, index and field
            are named; nothing of the manifest is used).
    """
    env = manifest["env"]["name"]
    rows = []
    for index, item in enumerate(manifest.get("tasks", [])):
        # the protocol may add keys to a listed task: only these make a task
        fields = {k: item[k] for k in ("id", "args", "slug", "description")
                  if isinstance(item, dict) and k in item}
        try:
            rows.append(TaskRow.model_validate({
                "env": env, **fields, "image": image.ref if image else None,
                "image_id": image.id if image else None}))
        except ValidationError as exc:
            raise ProtocolError(INVALID_REQUEST, f"{source} lists an invalid task (tasks"
                                f"[{index}]: {_problems(exc)}), so none of its tasks was "
                                f"used; rebuild the image with a current hud, or do not run "
                                f"an image you do not trust") from None
    return rows


def drift_warning(recorded: Iterable[ImageRef], ref: str, current: str, *,
                  container: bool = False) -> str | None:
    """One line for each image the tasks were listed from (`recorded`, per task) whose
    ID is not `current`, the ID of what runs (image `ref`, or the image of container
    `ref`), naming both IDs and the fix; None when every recorded ID is `current` (or
    none was recorded). Tasks listed from the running image do not excuse the others."""
    stale = list({(image.ref, image.id): image for image in recorded
                  if image.id and image.id != current}.values())
    if not stale:
        return None
    return "\n".join(_drift_line(then, ref, current, container) for then in stale)


def _drift_line(then: ImageRef, ref: str, current: str, container: bool) -> str:
    if container:
        now = f"container {ref} runs {_short(current)}"
    else:
        now = f"{ref} is {'now ' if ref == then.ref else ''}{_short(current)}"
    again = (f"`hud build {Path(then.origin).parent}`" if then.origin.endswith("hud.lock.json")
             else f"`hud task export {ref} -o FILE.jsonl`")
    return (f"warning: the tasks in {then.origin} were listed from image {then.ref} "
            f"({_short(then.id)}) but {now}, so they may differ: list them again ({again}) "
            f"or run the image they came from (--runtime docker:{then.id})")


def _short(image_id: str | None) -> str:
    return (image_id or "?")[:19]  # "sha256:" + 12 hex digits, as docker shows it

"""`Task`: one template bound to concrete arguments. Minting a task runs nothing.

The slug names a task stably across processes and machines: the template id when the
task overrides no argument, else the id plus a short hash of the canonical arguments
(JSON with sorted keys, defaults dropped), so `count_letter()` and
`count_letter(word="strawberry")` are the same task.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SLUG_HASH_CHARS = 8


def canonical_json(value: Any) -> str:
    """JSON text that is equal for equal values (sorted keys, no whitespace)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def make_slug(template_id: str, args: dict[str, Any]) -> str:
    """`template_id` alone for no arguments, else `template_id-<hash of args>`."""
    if not args:
        return template_id
    digest = hashlib.sha256(canonical_json(args).encode()).hexdigest()[:SLUG_HASH_CHARS]
    return f"{template_id}-{digest}"


class Task(BaseModel):
    """A runnable task: environment name, template id, arguments and slug."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str
    id: str
    args: dict[str, Any] = Field(default_factory=dict)
    slug: str = ""
    description: str | None = None

    def model_post_init(self, __context: Any) -> None:
        if not self.slug:
            object.__setattr__(self, "slug", make_slug(self.id, self.args))

    def __hash__(self) -> int:
        return hash((self.env, self.slug))

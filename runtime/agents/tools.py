"""Tools an agent harness offers a model, built from the capabilities a manifest binds.

A `Tool` is provider-neutral: a name, a description, a JSON Schema for its input, and an
async `run(args) -> ToolResult`. Each provider harness translates tools to its own
wire format (Anthropic tools, OpenAI function tools, Gemini function declarations).
Tools exist only for the capabilities the manifest offers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

#: tool output beyond this many characters is cut (head and tail kept) before the model sees it
MAX_OUTPUT_CHARS = 20_000


@dataclass
class ToolResult:
    """What a tool call returns to the model."""

    text: str
    is_error: bool = False
    #: PNG screenshots and the like, for providers that take images in tool results
    images: list[bytes] = field(default_factory=list)


@dataclass
class Tool:
    """A provider-neutral tool."""

    name: str
    description: str
    parameters: dict[str, Any]
    run: Callable[[dict[str, Any]], Awaitable[ToolResult]]
    #: seconds one call may take before it is reported to the model as timed out
    timeout: float = 120.0
    #: facts a harness may need to declare the tool natively (e.g. a computer's display size)
    meta: dict[str, Any] = field(default_factory=dict)


def truncate(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    """Keep the head and the tail of long output, saying how much was cut."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - limit} characters cut ...]\n{text[-half:]}"

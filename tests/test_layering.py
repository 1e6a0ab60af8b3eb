"""The in-container path stays light: `hud task ...` imports no heavy or host-only module."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("pydantic", "rich", "ray", "anthropic", "openai", "google.genai", "asyncssh", "mcp",
         "uvicorn", "httpx", "docker", "numpy", "asyncio")

PROBE = """
import json, sys
sys.argv = ["hud", *{argv!r}]
try:
    from hud.cli.main import main
    main()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize("argv", [["task", "start", "x"], ["task", "grade", "--answer", "1"],
                                  ["task", "list"], ["connect", "--tunnel", "shell"], ["health"]])
def test_in_container_commands_import_nothing_heavy(argv: list[str], tmp_path) -> None:
    """No pydantic, asyncio, provider SDKs or Docker helpers on the `hud task` path."""
    env = {"HUD_SOCKET": str(tmp_path / "none.sock"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], env=env,
                          capture_output=True, text=True, timeout=60)
    modules = json.loads(done.stderr.strip().splitlines()[-1])
    loaded = [m for m in modules if m.split(".")[0] in {h.split(".")[0] for h in HEAVY}
              and any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert loaded == []

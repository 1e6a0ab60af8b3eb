"""An environment module that fails to import."""

from hud import Environment

env = Environment(name="broken")
raise ImportError("no module named 'definitely_missing_dependency'")

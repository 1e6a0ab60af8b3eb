"""`hud.cli`: the click command layer, thin over the `hud` library.

Commands are imported lazily (see main.py) so that the in-container path
(`hud task start`) pays only for the command it runs.
"""

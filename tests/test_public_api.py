"""The public surface: `hud.__all__` complete and sorted; every name importable."""

from __future__ import annotations

import inspect

import hud
from hud.clients import control as client
from hud import messages as protocol


def test_all_is_sorted_and_importable() -> None:
    """Every exported name resolves, and the list is sorted."""
    assert hud.__all__ == sorted(hud.__all__)
    for name in hud.__all__:
        assert getattr(hud, name) is not None


def test_all_covers_every_public_class_of_the_exported_modules() -> None:
    """A public class in an exporting module that is missing from __all__ fails this."""
    import importlib

    modules = {importlib.import_module(m) for m in hud._EXPORTS.values()}
    for module in modules:
        for name, value in vars(module).items():
            if inspect.isclass(value) and value.__module__ == module.__name__ and not name.startswith("_"):
                if module.__name__ in ("hud.messages",):
                    continue  # wire models: public through hud.messages, not the root
                assert name in hud.__all__, f"{module.__name__}.{name} is not exported"


def test_client_mirrors_protocol_constants() -> None:
    """The pydantic-free client uses the same wire constants as hud.messages."""
    assert client.JSONRPC == protocol.JSONRPC
    assert client.ENV_LOAD_ERROR == protocol.ENV_LOAD_ERROR


def test_eval_and_agents_exports_are_sorted_and_resolve() -> None:
    """hud.eval and hud.agents export sorted, importable names."""
    import hud.agents
    import hud.eval

    for module in (hud.eval, hud.agents):
        assert module.__all__ == sorted(module.__all__)
        for name in module.__all__:
            assert getattr(module, name) is not None

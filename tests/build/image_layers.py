"""What an image's layers hold, read from `docker save`: the wheel files in each layer.

`docker history` shows a layer's size and command, not its files: a wheel copied in one
layer and deleted in the next still costs its bytes, and only the layer tarballs show it.
Used by tests/build/test_no_wheelhouse.py and bench/bench_images.py.
"""

from __future__ import annotations

import json
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from hud.build.docker import check, inspect_image


@dataclass(frozen=True)
class Layer:
    """One filesystem layer of an image: the command that made it, its size, its wheels."""

    created_by: str
    size: int
    wheels: dict[str, int] = field(default_factory=dict)

    @property
    def wheel_bytes(self) -> int:
        """Bytes of the `.whl` files this layer carries."""
        return sum(self.wheels.values())


def layer_count(image: str) -> int:
    """How many filesystem layers `image` has (0 when there is no such image)."""
    info = inspect_image(image) or {}
    return len((info.get("RootFS") or {}).get("Layers") or [])


def image_layers(image: str) -> list[Layer]:
    """Every filesystem layer of `image`, bottom first, with the wheel files in each.

    Raises:
        DockerError: `docker save` failed (e.g. there is no such image).
    """
    with tempfile.TemporaryDirectory(prefix="hud-layers-") as work:
        archive = Path(work) / "image.tar"
        check("save", "-o", str(archive), image, timeout=600, what=f"docker save {image}")
        with tarfile.open(archive) as outer:
            manifest = json.load(_member(outer, "manifest.json"))[0]
            config = json.load(_member(outer, manifest["Config"]))
            # history holds metadata-only steps too; the others pair with Layers in order
            made = [h.get("created_by", "") for h in config["history"]
                    if not h.get("empty_layer")]
            layers = []
            for created_by, path in zip(made, manifest["Layers"], strict=True):
                member = outer.getmember(path)
                layers.append(Layer(created_by, member.size, _wheels(outer, member)))
    return layers


def _member(outer: tarfile.TarFile, name: str) -> IO[bytes]:
    handle = outer.extractfile(name)
    assert handle is not None, f"docker save wrote no {name}"
    return handle


def _wheels(outer: tarfile.TarFile, member: tarfile.TarInfo) -> dict[str, int]:
    found: dict[str, int] = {}
    with tarfile.open(fileobj=_member(outer, member.name), mode="r|") as layer:
        for entry in layer:
            if entry.isfile() and entry.name.endswith(".whl"):
                found[entry.name] = entry.size
    return found

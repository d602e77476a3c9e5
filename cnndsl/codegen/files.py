"""How generated text names a spec's files: never with a path of the machine."""

from __future__ import annotations

from pathlib import PurePath


def shown(name: str) -> str:
    """A file as generated code names it: `std/resnet.cnn` for the standard library, `<string>` for text,
    else the file's name alone (`resnet50.cnn`), wherever it lies."""
    if name.startswith("std/") or name.startswith("<"):
        return name
    return PurePath(name).name or name

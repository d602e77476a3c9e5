"""THE registry: one entry per layer kind. The checker and the code generator read only this."""

from __future__ import annotations

from cnndsl.ops import activation, channels, conv, dense, merge, misc, norm, pool, scaling, tokens
from cnndsl.ops.base import REQUIRED, Args, ArgSpec, CodeArgs, Op, Shape, Symbol, Window

REGISTRY: dict[str, Op] = {}
ALIASES: dict[str, str] = {}

for _module in (misc, conv, pool, dense, norm, scaling, channels, activation, merge, tokens):
    for _op in _module.ENTRIES:
        assert _op.name not in REGISTRY, _op.name
        REGISTRY[_op.name] = _op
        for _alias in _op.aliases:
            ALIASES[_alias] = _op.name

ACTIVATIONS = activation.NAMES


def lookup(name: str) -> Op | None:
    """The entry for a layer name or one of its aliases (`linear` → dense)."""
    return REGISTRY.get(name) or REGISTRY.get(ALIASES.get(name, ""))


__all__ = ["REGISTRY", "REQUIRED", "ACTIVATIONS", "ArgSpec", "Args", "CodeArgs", "Op", "Shape", "Symbol", "Window",
           "lookup"]

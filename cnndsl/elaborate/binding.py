"""Which argument of a call goes to which parameter, for layers, blocks and functions alike: errors for unknown,
missing, repeated and surplus arguments. It evaluates nothing, so expressions (a function call binds its
arguments too) and layer arguments both build on it."""

from __future__ import annotations

from dataclasses import dataclass

from cnndsl.errors import CnnError, did_you_mean
from cnndsl.syntax import ast


@dataclass
class Slot:
    """A parameter as the binder sees it."""

    name: str
    aliases: tuple[str, ...] = ()
    positional: bool = True
    required: bool = True


class Slots(list):
    """A layer's slots with their lookups made once: every call of the layer binds against them."""

    def __init__(self, slots: list[Slot]):
        super().__init__(slots)
        self.positional = [s for s in slots if s.positional]
        self.names = {alias: s.name for s in slots for alias in (s.name, *s.aliases)}


def bind(call: ast.Call, slots: list[Slot], what: str) -> dict[str, ast.Arg]:
    """Which argument goes to which parameter; errors for unknown, missing or repeated ones."""
    got: dict[str, ast.Arg] = {}
    if not isinstance(slots, Slots):  # a block's parameters: made for this call
        slots = Slots(slots)
    positional, names = slots.positional, slots.names
    pos_index = 0
    for arg in call.args:
        if arg.name is None:
            if pos_index >= len(positional):
                raise _too_many(call, arg, slots, what)
            slot = positional[pos_index].name
            pos_index += 1
        else:
            if arg.name not in names:
                raise CnnError(f"{what} has no argument `{arg.name}`", arg.span,
                               did_you_mean(arg.name, names) or _takes(slots))
            slot = names[arg.name]
        if slot in got:
            raise CnnError(f"`{slot}` of {what} is given twice", arg.span,
                           label="given again here").note("first given here", got[slot].span)
        got[slot] = arg
    for s in slots:
        if s.required and s.name not in got:
            raise CnnError(f"{what} is missing its `{s.name}` argument", call.span, _takes(slots))
    return got


def _takes(slots: list[Slot]) -> str:
    parts = [s.name if s.required else f"{s.name}=…" for s in slots]
    return f"it takes: {' '.join(parts)}" if parts else "it takes no arguments"


def _too_many(call: ast.Call, arg: ast.Arg, slots: list[Slot], what: str) -> CnnError:
    positional = [s for s in slots if s.positional]
    named = [f"{s.name}=…" for s in slots if not s.positional]
    hint = f"name the others: {' '.join(named)}" if named else "remove the extra value"
    if not positional:
        return CnnError(f"{what} takes no positional arguments", arg.span, hint)
    names = ", ".join(s.name for s in positional)
    return CnnError(f"{what} takes at most {len(positional)} positional argument"
                    f"{'s' if len(positional) > 1 else ''} ({names})", arg.span, hint)

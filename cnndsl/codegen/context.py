"""What the statement writers share: the module being filled, what they see, and the generator's errors."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cnndsl.errors import CnnError

if TYPE_CHECKING:
    from cnndsl.codegen.naming import Names


# A call's `in_size` argument, until the file is put together: whether the class takes one depends on its
# callers (Generator.settle).
SIZE = re.compile("\x00([^\x01]*)\x01([^\x02]*)\x02")


def size_marker(cls_name: str, text: str) -> str:
    """`, (h, w)` as the argument `in_size` of a call of the class, should the class take it."""
    return f"\x00{cls_name}\x01, {text}\x02"


class Unsupported(CnnError):
    """A construct `cnndsl check` accepts but the code generator cannot write yet."""


class Retry(Exception):  # noqa: N818 (a signal, not an error)
    """This way of writing the module cannot express what the body does: try the next (codegen/generator.py)."""


class Opaque(Exception):  # noqa: N818
    """A caller cannot write a block's output shape as a formula of its arguments: it reads the block's
    `out_channels` instead."""


@dataclass(eq=False)
class Slot:
    """A named output (`e1: conv ...`) in one scope: a local variable of the forward."""

    hint: str


@dataclass(eq=False)
class Box:
    """A module being filled with children: the class itself, a shortcut or a merge's branch.

    `access` says how the forward reaches its children: by attribute (`self.branch2.conv1`), by walking
    them in order (`next(layers)`: where names are computed), or not at all (`whole`: an nn.Sequential
    the forward calls as one module). `expr` is the module in __init__, `path` in the forward.
    """

    expr: str
    names: Names
    access: str  # "attr", "iter" or "whole"
    path: str | None = None  # where access is "attr": `self`, `self.branch2`


@dataclass
class ClassState:
    """What the writing of one class learns along the way.

    A decision the constructor makes once (an `if`'s arm, an optional shortcut) is an attribute of the class
    the forward reads (`self.use_residual`); those made in a loop, and a loop's turns, are appended to the
    list `self._plan`, which the forward replays in order. `bases` are what the class's children's names
    are made of (codegen/naming.py `child_bases`): no decision's attribute is one of their names."""

    bases: frozenset[str] = frozenset()
    plan: bool = False  # the constructor records decisions in self._plan for the forward
    attrs: list[str] = field(default_factory=list)  # attributes holding decisions made once, in order


@dataclass
class Ctx:
    """Where statements go and what they see: the module being filled, the current shape, names."""

    box: Box
    shape: tuple  # current output shape: ints, or Src
    names: dict  # spec variables → values or Src
    in_shape: tuple  # `in`
    steps: list  # the forward's steps (codegen/forward.py)
    labels: dict = field(default_factory=dict)  # named output → (Slot, shape)
    slots: dict = field(default_factory=dict)  # named output → its Slot, shared by the scope's arms and turns
    cls: ClassState | None = None
    frozen: bool = False
    # the kind of layer that made the current tensor in straight-line code, when nothing else reads it: a
    # relu may then overwrite it in place, as torchvision's do
    made_by: str | None = None
    moved: bool = False  # the current tensor is a named output (after `from`): never overwritten in place
    dynamic: bool = False  # inside an `if` or a loop decided at construction
    looped: bool = False  # inside a loop written as a Python `for`: its decisions are recorded in self._plan
    pinned: tuple = ()  # values the code around a branch or a body still reads: their variables stay put
    dead: bool = False  # this code raises at construction (see Statements.body)
    bound: frozenset[str] = frozenset()  # the names the definition binds: `act` alone applies one
    returned: list | None = None  # the shapes of the tensors a block's `return a, b` gives
    channels_last: bool = False  # the current tensor is permuted to (N, H, W, C) (codegen/layout.py)

"""What the statement writers share: where statements go, what they see, and the generator's errors."""

from __future__ import annotations

from dataclasses import dataclass, field

from cnndsl.codegen.naming import ClassState
from cnndsl.errors import CnnError


class Unsupported(CnnError):
    """A construct `cnndsl check` accepts but the code generator cannot write yet."""


class Dynamic(Exception):
    """The class's own children depend on constructor arguments in a way a fixed class cannot name as the
    report does: write it as a Chain instead."""


@dataclass
class Ctx:
    """Where statements go and what they see: the chain being filled, the current shape, names."""

    chain: str  # Python expression of the Chain being filled ("self" in a fixed class)
    shape: tuple  # current output shape: ints, or Src
    names: dict  # spec variables → values or Src
    in_shape: tuple  # `in`
    labels: dict = field(default_factory=dict)  # named output → (Python expr of its child name, shape)
    pending: list | None = None  # inputs of the next layer, after `from`
    frozen: bool = False
    # the kind of layer that made the current tensor in straight-line code of this chain, when nothing
    # else reads it: a relu may then overwrite it in place, as torchvision's do
    made_by: str | None = None
    cls: ClassState | None = None  # set where children are fixed attributes of the class
    steps: list | None = None  # where a fixed class's forward steps go (codegen/forward.py)
    dynamic: bool = False  # inside an `if` or a loop decided at construction
    loop: bool = False  # inside a loop decided at construction: the children are not fixed
    conditional: bool = False  # inside an `if` decided at construction
    assign: frozenset[str] = frozenset()  # names a `let` must assign as Python variables (a loop carries them)
    dead: bool = False  # this code raises at construction (see Statements.body)
    bound: frozenset[str] = frozenset()  # the names the definition binds: `act` alone applies one

    @property
    def fixed(self) -> bool:
        """Children become `self.name = ...` attributes and forward steps."""
        return self.cls is not None and self.cls.static and self.steps is not None

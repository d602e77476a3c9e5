"""Names in the generated source: Python-safe spellings, class names, and the children of a fixed class.

A child is named as `cnndsl check` names its layer (cnndsl/elaborate/core.py `name`): kind + a counter per
block (conv1, conv2), a label as given (`_2` where taken); a residual's body layers count in the block, its
shortcut is `shortcut`, a merge's branches `branch1`, `branch2`... and a sum or merge is a layer `add1`.
"""

from __future__ import annotations

import builtins
import keyword
import re
from dataclasses import dataclass, field

from cnndsl.build import FORBIDDEN
from cnndsl.codegen import prelude
from cnndsl.graph import numbered

# Names the generated code uses itself, Python's builtins, and what build.vet refuses: a spec name equal to
# one of them gets a trailing `_` (a parameter `eval` is `eval_`).
RESERVED = {"self", "nn", "torch", "F", "math", "in_channels", "in_features", "in_size", "in_height", "in_width",
            "x", "x_in", "current", "frozen", *prelude.HELPERS, *dir(builtins), *FORBIDDEN}


def pyname(name: str) -> str:
    return name + "_" if keyword.iskeyword(name) or name in RESERVED else name


def camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part) or "Block"


@dataclass
class ClassState:
    """The children of the class being written, when they are fixed (`self.conv1 = ...` and a forward).

    `claims` keeps every name given, in order, with whether it was given under an `if` decided at
    construction: there the report names only the arm taken, so a later name of the same kind would
    differ (see `ambiguous`).
    """

    static: bool
    counts: dict[str, int] = field(default_factory=dict)
    taken: set[str] = field(default_factory=set)
    claims: list[tuple[str, str, bool]] = field(default_factory=list)  # (name, kind or label, conditional)
    attrs: list[str] = field(default_factory=list)  # names that are attributes (a sum's is not)
    nulled: set[str] = field(default_factory=set)  # attributes set to None before the `if` that may fill them
    steps: list = field(default_factory=list)  # the forward (codegen/forward.py)
    result: str | None = None  # the child whose output the forward returns, when not the last (`from e1`)

    def claim(self, kind: str, label: str | None, conditional: bool, attribute: bool = True) -> str:
        name = self._fresh(kind, label)
        self.taken.add(name)
        self.claims.append((name, label or kind, conditional))
        if attribute:
            self.attrs.append(name)
        return name

    def _fresh(self, kind: str, label: str | None) -> str:
        if label is not None:
            name, n = label, 1
            while name in self.taken:
                n += 1
                name = f"{label}_{n}"
            return name
        while True:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            name = numbered(kind, self.counts[kind])
            if name not in self.taken:
                return name

    def ambiguous(self) -> bool:
        """Whether a name given under an `if` could shift a later one: then only a Chain names them right."""
        for i, (name, base, conditional) in enumerate(self.claims):
            if conditional and any(b == base or _stem(n) == base or _stem(name) == b
                                   for n, b, _ in self.claims[i + 1:]):
                return True
        return False


def claim_local(base: str, taken: set[str]) -> str:
    """A local variable name not yet in `taken` (base, base_2, base_3...), now taken."""
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


def _stem(name: str) -> str:
    return re.sub(r"_?\d+$", "", name)

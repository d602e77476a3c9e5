"""Names in the generated source: Python-safe spellings, class names, and the children of each module.

A child is named as `cnndsl check` names its layer (cnndsl/elaborate/core.py `name`, cnndsl/graph.py
`numbered`): kind + a counter per scope (conv1, conv2), a label as given (`_2` where taken); a residual's
body layers count in the block, its shortcut is `shortcut`, a merge's branches `branch1`, `branch2`...
and a sum or merge is a layer `add1` that has no module.

`Names` gives those names in one of three ways, the first that the module allows:

- static: every name is known when the code is written (`self.conv1 = ...`);
- counted: a name inside a loop is a formula of the loop's index (`f"bottleneck{i + 2}"`), which needs
  every loop's turns to name the same children and no two families of names (`conv1, conv2...`,
  `e, e_2...`) that could meet;
- tracked: the module keeps what check keeps, a set of the names given and a counter per kind, and
  the generated `child_name` helper names each child as check does.

Each way gives a child a base (a kind, a label, `shortcut`, `branch`) alone or followed by a number, with
or without a `_` (conv1, block35_1, e_2): so an attribute of the class that is none of its bases, with or
without a number after it, is never a child's name (`decision_attribute`).
"""

from __future__ import annotations

import builtins
import keyword
import re
from dataclasses import dataclass, field

from cnndsl.codegen import prelude
from cnndsl.codegen.context import ClassState, Retry
from cnndsl.codegen.linear import Lin
from cnndsl.codegen.vet import FORBIDDEN
from cnndsl.graph import numbered
from cnndsl.ops import REGISTRY
from cnndsl.ops.activation import ENTRIES as _ACTIVATIONS
from cnndsl.ops.source import MODULE_ATTRIBUTES, Src, literal
from cnndsl.syntax import ast

# Names the generated code uses itself, Python's builtins, and what vet refuses: a spec name equal to one
# of them gets a trailing `_` (a parameter `eval` is `eval_`).
RESERVED = {"self", "nn", "torch", "F", "math", "OrderedDict", "in_channels", "in_features", "in_size",
            "in_height", "in_width", "in_length", "x", "frozen", "names", "counts", *prelude.HELPERS, *dir(builtins),
            *FORBIDDEN}


def pyname(name: str) -> str:
    return name + "_" if keyword.iskeyword(name) or name in RESERVED else name


def camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part) or "Block"


def claim_local(base: str, taken: set[str]) -> str:
    """A local variable name not yet in `taken` (base, base_2, base_3...), now taken."""
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


def child_bases(blocks, body: list[ast.Stmt]) -> frozenset[str]:
    """What the names of a class's children are made of, more than enough: every kind of layer (the
    registry's, a sum's `add`, a merge's op), every block of the program (`blocks`), `shortcut` and
    `branch`, and every label in the definition's body (those of its branches, whose children are not the
    class's, included)."""
    labels = {s.label for s in ast.statements(body) if isinstance(s, ast.Labeled)}
    return frozenset({*REGISTRY, *blocks, "shortcut", "branch", *labels})


def decision_attribute(base: str, cls: ClassState) -> str:
    """The attribute of a class that keeps a decision its constructor makes once (`self.use_residual`):
    `base`, else base_2, base_3..., the first that is free (`attribute_free`), now taken.

    Where a child's base is `base` (a label `use_residual`: use_residual_2... are its names too), no number
    will do: past base_99 the name grows by `_attr` until free, which ends it, since a name that ends in a
    letter is only ever a child's base given exactly, and they are finitely many."""
    assert base.isidentifier() and not base.startswith("_"), base
    name, n = base, 1
    while not attribute_free(name, cls):
        n += 1
        name = f"{base}_{n}" if n < _NUMBERED else f"{name if n > _NUMBERED else base}_attr"
    cls.attrs.append(name)
    return name


_NUMBERED = 100  # the numbers a decision's attribute tries


def attribute_free(name: str, cls: ClassState) -> bool:
    """Whether a decision's attribute may take `name`: no child of the class can be named so (no base of
    theirs, alone or followed by a number), no attribute of nn.Module or of the generated classes has it
    (nor any private one: no leading `_`), it is no keyword and no other decision's."""
    if name in cls.attrs or name in MODULE_ATTRIBUTES or name.startswith("_") or keyword.iskeyword(name):
        return False
    return not any(name == b or re.fullmatch(re.escape(b) + r"_?\d+", name) for b in cls.bases)


ACTIVATION_KINDS = frozenset(op.name for op in _ACTIVATIONS)

# counters reaching these would give an attribute's name (bfloat16): numbered() writes kind_n instead
_DIGIT_ATTRIBUTES = sorted(a for a in MODULE_ATTRIBUTES if a[-1:].isdigit())


@dataclass
class Names:
    """The names given to the children of one module (a class, a shortcut or a branch), as check gives them.

    `counts` holds each family's count so far: a kind's (`conv`) or a label's (`label:e1`), an int, or a
    Lin of loop indices where the module is counted. `unsure` are families whose count depends on which
    arm of an `if` ran: naming one of them again needs the tracked way. `doubt` are static names taken in
    some arms only.
    """

    mode: str  # "static", "counted" or "tracked" ("acts": counted, and activations counted at construction)
    counts: dict[str, object] = field(default_factory=dict)
    taken: set[str] = field(default_factory=set)
    unsure: set[str] = field(default_factory=set)
    doubt: set[str] = field(default_factory=set)
    bases: set[tuple[str, bool]] = field(default_factory=set)  # (kind or label, is a label), counted mode
    locals: tuple[str, str] | None = None  # tracked: the variables holding the names given and the counts
    attrs: list[str] = field(default_factory=list)  # children made as attributes, in order
    nulled: set[str] = field(default_factory=set)  # attributes set to None before the `if` that may make them
    acts: str | None = None  # "acts": the dict counting each activation kind's children at construction

    def copy(self) -> Names:
        return Names(self.mode, dict(self.counts), set(self.taken), set(self.unsure), set(self.doubt),
                     set(self.bases), self.locals, list(self.attrs), set(self.nulled), self.acts)

    def counting_acts(self, var: str) -> None:
        """Activations named from a dict at construction (a block given its activation as an argument)."""
        self.acts = var
        self.bases |= {(kind, False) for kind in ACTIVATION_KINDS}

    def claim(self, kind: str, label: str | None = None) -> str | Src:
        """The next child's name: a str where it is known now, else the source that computes it."""
        if self.mode == "tracked":
            base, flag = (label, ", label=True") if label is not None else (kind, "")
            return Src(f"child_name({self.locals[0]}, {self.locals[1]}, {literal(base)}{flag})")
        key = f"label:{label}" if label is not None else kind
        if key in self.unsure:
            raise Retry("a name here depends on an `if` taken at construction")
        if self.mode in ("counted", "acts"):
            return self._counted(kind, label, key)
        return self._static(kind, label, key)

    def _static(self, kind: str, label: str | None, key: str) -> str:
        if label is not None:
            name, n = label, 1
            while self._taken(name):
                n += 1
                name = f"{label}_{n}"
        else:
            n = self.counts.get(key, 0)
            while True:
                n += 1
                name = numbered(kind, n)
                if not self._taken(name):
                    break
        self.counts[key] = n
        self.taken.add(name)
        return name

    def _taken(self, name: str) -> bool:
        if name in self.doubt:  # taken or not, depending on an arm taken at construction
            raise Retry(f"whether `{name}` is taken depends on an `if`")
        return name in self.taken

    def _counted(self, kind: str, label: str | None, key: str) -> str | Src:
        base = (label, True) if label is not None else (kind, False)
        if base not in self.bases:
            if any(_may_meet(base, other) for other in self.bases):
                raise Retry(f"the names of `{base[0]}` and of another statement could meet")
            if label is None and any(re.fullmatch(re.escape(kind) + r"\d+", a) for a in _DIGIT_ATTRIBUTES):
                raise Retry(f"a counter of `{kind}` could reach an attribute's name")
            self.bases.add(base)
        n = Lin.of(self.counts.get(key, 0)) + 1
        self.counts[key] = n.value()
        if n.known():
            return f"{label}_{n.const}" if label is not None and n.const > 1 else label or numbered(kind, n.const)
        if label is not None:
            first = (n - 1).source()
            return Src(f"{literal(label)} if {first} == 0 else f{literal(label + '_{' + n.source() + '}')}", 1)
        sep = "_" if kind[-1:].isdigit() or kind.endswith("_") else ""
        return Src("f" + literal(f"{kind}{sep}{{{n.source()}}}"))

    def merge(self, arms: list[Names]) -> None:
        """After an `if` taken at construction: the families whose count depends on the arm."""
        for key in set().union(*(a.counts for a in arms)):
            values = [a.counts.get(key, 0) for a in arms]
            if any(v != values[0] for v in values):
                self.unsure.add(key)
            self.counts[key] = values[0]
        taken = [a.taken for a in arms]
        self.doubt |= set().union(*taken) - set.intersection(*taken)
        self.taken = set().union(*taken)
        for a in arms:
            self.unsure |= a.unsure
            self.doubt |= a.doubt
            self.bases |= a.bases
            self.nulled |= a.nulled
        self.attrs = list(dict.fromkeys(x for a in arms for x in a.attrs))


def _may_meet(a: tuple[str, bool], b: tuple[str, bool]) -> bool:
    """Whether two families of names could give one name: label `conv2` and kind `conv`, label `e` (e,
    e_2...) and label `e_2`. Kinds never meet each other (numbered's `_`); this errs on the safe side."""
    if not a[1] and not b[1]:
        return False
    x, y = a[0], b[0]
    return x.startswith(y) or y.startswith(x)


def name_text(name: str | Src) -> str:
    """A child's name as Python source: a literal, or the expression that computes it."""
    return name.text if isinstance(name, Src) else literal(name)

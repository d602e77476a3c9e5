"""Checked program → readable PyTorch source: a class per block definition, one for the network.

Each class mirrors its definition: parameters become constructor arguments, `if` and `repeat` become
Python `if` and `for`. A class whose children are fixed has them as attributes and a forward that reads
like torchvision's (codegen/forward.py); one whose children a loop over an argument decides is a `Chain`,
filled with `Chain.add(kind, module)`. Either way a module's path in the built network is the layer's name
in the report (codegen/naming.py). Values known at generation time are folded (`3 * 4` → 12); the rest
stays Python source. The statement writers are mixins: statements.py, control.py, merges.py.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass

from cnndsl.codegen import functions, prelude
from cnndsl.codegen.annotate import ParamTypes, arguments
from cnndsl.codegen.context import Ctx, Dynamic, Unsupported
from cnndsl.codegen.control import ControlFlow
from cnndsl.codegen.forward import methods
from cnndsl.codegen.lines import Lines
from cnndsl.codegen.merges import Merges
from cnndsl.codegen.naming import RESERVED, ClassState, camel, pyname
from cnndsl.codegen.statements import Statements
from cnndsl.codegen.symbolic import evaluate
from cnndsl.elaborate.validate import bound_names
from cnndsl.errors import CnnError, Span
from cnndsl.ops.base import Symbol
from cnndsl.ops.source import Src, docstring, is_real, py
from cnndsl.syntax import ast
from cnndsl.syntax.loader import Program

__all__ = ["Generator", "Unsupported", "pyname"]


@dataclass
class BlockClass:
    name: str
    source: str
    needs_size: bool
    rank: int


class Generator(Statements, ControlFlow, Merges):
    def __init__(self, program: Program):
        self.program = program
        self.classes: dict[tuple[str, int], BlockClass] = {}
        self.generating: list[str] = []  # blocks whose class is being written, to refuse recursion
        self.class_names: set[str] = set(prelude.HELPERS)
        self.examples: dict[str, object] = {}  # the network's parameters as check saw them (the input's rank)
        self.types = ParamTypes(program)  # what calls give a required parameter: its annotation
        self.numeric: dict[str, set[str]] = {}  # block → parameters only ever given numbers (numeric_params)
        self.class_names.update(pyname(d.name) for d in program.definitions.values() if d.kind == "function")

    # -- files

    def module(self, network: ast.Definition, header: str, overrides: dict, ends_in_softmax: bool = False
               ) -> tuple[str, str]:
        """The whole file, and the network's class name; `overrides` become the class's defaults.

        A network whose last top-level layer is a softmax also gets `logits()`: the runner trains on it.
        """
        net_name, net_source = self.network_class(network, overrides, ends_in_softmax)
        classes = [c.source for c in self.classes.values()] + [net_source]
        helpers = prelude.helpers_source(prelude.used(classes))
        written = [network, *(self.program.definitions[name] for name, _ in self.classes)]
        helpers += functions.source(functions.used(self.program, written))  # the spec's `def`s
        main = _MAIN.format(name=net_name)
        parts = [header, prelude.imports(helpers + "".join(classes) + main), helpers]
        parts += ["\n" + c for c in classes]
        parts.append(main)
        return "\n".join(p.rstrip("\n") + "\n" for p in parts if p).replace("\n\n\n\n", "\n\n\n"), net_name

    def class_name(self, base: str) -> str:
        name, n = camel(base), 1
        while name in self.class_names or keyword.iskeyword(name) or name in RESERVED:  # not `None`, `F`
            n += 1
            name = f"{camel(base)}{n}"
        self.class_names.add(name)
        return name

    def network_class(self, d: ast.Definition, overrides: dict, ends_in_softmax: bool) -> tuple[str, str]:
        lines, params, state = self.write_class(d, (), set(), overrides)
        name = self.class_name(d.name)
        doc = docstring(f"network {ast.signature(d)} ({d.span.source.name}:{d.span.line}).")
        init = ["    def __init__(self" + "".join(f", {p}" for p in params) + ") -> None:",
                "        super().__init__()", *lines.lines]
        if ends_in_softmax:
            init.append("        self.ends_in_softmax = True  # model(x) gives probabilities; train on logits(x)")
        forward = methods(state, ends_in_softmax)
        base = "nn.Module" if state.static else "Chain"
        src = "\n".join([f"class {name}({base}):", f"    {doc}", "", *init, *forward]) + "\n"
        return name, src

    def write_class(self, d: ast.Definition, in_shape: tuple, taken: set[str], overrides: dict | None = None
                    ) -> tuple[Lines, list[str], ClassState]:
        """The body of a class's __init__: with fixed children if it can, else as a Chain."""
        for static in (True, False):
            lines = Lines(taken=set(taken))
            params, names = self.signature(d, lines, {}, in_shape, overrides)
            state = ClassState(static)
            ctx = Ctx("self", in_shape, names, in_shape, cls=state, steps=state.steps if static else None,
                      bound=frozenset(bound_names(d)))
            try:
                self.body(d.body, ctx, lines)
                if state.ambiguous():
                    raise Dynamic()
            except Dynamic:
                continue
            if ctx.pending is not None:  # the body ends in `from e1`: e1 is the output
                if static:
                    state.result = ctx.pending[0]
                else:
                    lines.add(f"self.result = {ctx.pending[0]}")
            lines.drop_unread(lines.carried)
            return lines, params, state
        raise AssertionError("the Chain form always works")

    def signature(self, d: ast.Definition, lines: Lines, names: dict, in_shape: tuple,
                  overrides: dict | None = None) -> tuple[list[str], dict]:
        """Constructor parameters; defaults that are not literals are computed in the body."""
        params = []
        lines.taken.update(pyname(p.name) for p in d.params)
        for p in d.params:
            py_name = pyname(p.name)
            names[p.name] = Src(py_name)
            if overrides and p.name in overrides:
                value = overrides[p.name]
                params.append(f"{py_name}{_annotation(value)} = {py(value)}")
            elif p.default is None:
                kind = self.types.of(d).get(p.name)
                params.append(f"{py_name}: {kind}" if kind else py_name)
                value = None
            elif isinstance(p.default, ast.Const) or _word(p.default, names):
                value = evaluate(p.default, names, in_shape)  # a literal, or a word such as `relu`
                params.append(f"{py_name}{_annotation(value)} = {py(value)}")
            else:
                params.append(f"{py_name}=None")
                value = evaluate(p.default, dict(names), in_shape)
                with lines.nested(f"if {py_name} is None:"):
                    lines.add(f"{py_name} = {py(value)}")
            word = not _numeric(value) if overrides is not None else p.name not in self.numeric_params(d)
            names[p.name] = Src(py_name, real=is_real(value), word=word)  # q = 1.0: int(q) for a count
            if overrides is not None:  # the network's: the values check used
                self.examples[p.name] = value
        return params, names

    def numeric_params(self, d: ast.Definition) -> set[str]:
        """The block's parameters that every call in the program gives a number or a pair (and whose
        default is one): a `padding=padding` then goes to PyTorch as it is, never as `same`."""
        if d.name not in self.numeric:
            given = arguments(self.program, d)
            self.numeric[d.name] = {name for name, uses in given.items()
                                    if all(_number_valued(e) for _, e in uses)}
        return self.numeric[d.name]

    def block_class(self, d: ast.Definition, rank: int, span: Span) -> BlockClass:
        key = (d.name, rank)
        if key in self.classes:
            return self.classes[key]
        if d.name in self.generating:
            cycle = " → ".join([*self.generating[self.generating.index(d.name):], d.name])
            raise CnnError(f"block `{d.name}` calls itself ({cycle})", span,
                           "blocks cannot be recursive, even in a branch not taken; use `repeat`")
        if any(k[0] == d.name for k in self.classes):
            raise Unsupported(f"block `{d.name}` is called on images and on flat vectors; compile cannot write "
                              "one class for both yet", span)
        self.generating.append(d.name)
        try:
            return self._block_class(d, rank, key)
        finally:
            self.generating.pop()

    def _block_class(self, d: ast.Definition, rank: int, key: tuple[str, int]) -> BlockClass:
        first = "in_channels" if rank == 3 else "in_features"
        in_shape = (Src("in_channels"), Src("in_height"), Src("in_width")) if rank == 3 else (Src("in_features"),)
        body, params, state = self.write_class(d, in_shape, {"in_channels", "in_height", "in_width",
                                                             "in_features", "in_size"})
        text = "\n".join(body.lines)
        needs_size = "in_height" in text or "in_width" in text
        head = [first + ": int"] + (["in_size: tuple[int, int]"] if needs_size else []) + params
        init = ["    def __init__(self, " + ", ".join(head) + ") -> None:", "        super().__init__()"]
        if needs_size:
            init.append("        in_height, in_width = in_size")
        doc = docstring(f"block {ast.signature(d)} ({d.span.source.name}:{d.span.line}).")
        name = self.class_name(d.name)
        base = "nn.Module" if state.static else "Chain"
        src = "\n".join([f"class {name}({base}):", f"    {doc}", "", *init, *body.lines, *methods(state)]) + "\n"
        self.classes[key] = BlockClass(name, src, needs_size, rank)
        return self.classes[key]


def _numeric(v) -> bool:
    if isinstance(v, tuple):
        return all(map(_numeric, v))
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _number_valued(e: ast.Expr) -> bool:
    """Whether an expression gives a number or a pair whatever the parameters: arithmetic does
    (`k // 2`, `in.channels`), a bare name may hold a word such as `same`."""
    if isinstance(e, ast.Const):
        return _numeric(e.value)
    if isinstance(e, ast.TupleExpr):
        return all(map(_number_valued, e.items))
    if isinstance(e, ast.BinOp):
        return e.op in ("+", "-", "*", "/", "//", "%", "**")
    if isinstance(e, ast.Unary):
        return e.op == "-"
    return isinstance(e, (ast.Func, ast.InAttr))



def _word(e: ast.Expr, names: dict) -> bool:
    """Whether a default is a bare word (`act = relu`, `padding = same`): a string default, not a variable."""
    return isinstance(e, ast.Name) and e.id not in names


def _annotation(value) -> str:
    if isinstance(value, Symbol):
        return ": str"
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return f": {kind.__name__}"
    return ""


_MAIN = '''

if __name__ == "__main__":
    model = {name}().eval()
    x = torch.randn(2, *model.input_shape)
    with torch.no_grad():
        y = model(x)
    params = sum(p.numel() for p in model.parameters())
    print(f"{name}: input {{tuple(x.shape)}} -> output {{tuple(y.shape)}}, {{params:,}} parameters")
'''

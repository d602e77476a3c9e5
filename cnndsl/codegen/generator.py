"""Checked program → readable PyTorch source: a class per block definition, one for the network.

Each class mirrors its definition: parameters become constructor arguments, `if` and `repeat` become
Python `if` and `for`. A class is written in the first of these forms its body allows:

- children as attributes and a forward that reads like torchvision's (`x = self.conv1(x)`);
- an nn.Sequential subclass, where each child reads the previous output but a loop over an argument
  decides the children (`self.add_module(f"bottleneck{i + 2}", ...)`);
- children named at construction and a forward that walks them in order (`next(layers)`).

An `if` the constructor decides whose arm the forward must know is kept in an attribute of the class, as
torchvision's InvertedResidual keeps `use_res_connect` (`self.use_residual = stride == 1 and in_channels ==
filters`; control.py); a loop's turns and an arm taken in a loop, which differ from turn to turn, are
appended to the list `self._plan`, which the forward replays in order.

Either way a module's path in the built network is the layer's name in the report (codegen/naming.py). A
class records its output size (`self.out_channels`) where a caller reads it. Values known at generation
time are folded (`3 * 4` → 12); the rest stays Python source. The statement writers are mixins:
statements.py, control.py, merges.py.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field, replace

from cnndsl.codegen import functions, prelude
from cnndsl.codegen.annotate import ParamTypes, arguments
from cnndsl.codegen.context import SIZE, Box, ClassState, Ctx, Retry, Slot, Unsupported
from cnndsl.codegen.control import ControlFlow
from cnndsl.codegen.files import shown
from cnndsl.codegen.forward import Inputs, Save, methods, sequential
from cnndsl.codegen.lines import Lines
from cnndsl.codegen.merges import Merges
from cnndsl.codegen.naming import RESERVED, Names, camel, child_bases, claim_local, pyname
from cnndsl.codegen.statements import Statements
from cnndsl.codegen.symbolic import WHOLE, evaluate
from cnndsl.codegen.wrap import wrap_all
from cnndsl.elaborate.validate import bound_names
from cnndsl.errors import CnnError, Span
from cnndsl.ops import plugins
from cnndsl.ops.base import Symbol
from cnndsl.ops.source import Src, docstring, is_real, py
from cnndsl.syntax import ast
from cnndsl.syntax.loader import Program

__all__ = ["Generator", "Unsupported", "pyname"]

# the forms of a class, in the order tried: (how the forward reaches the children, how they are named)
_FORMS = [("attr", "static"), ("whole", "counted"), ("whole", "acts"), ("whole", "tracked"), ("iter", "counted"),
          ("iter", "acts"), ("iter", "tracked")]


@dataclass
class Written:
    """A class as its body wrote it. What depends on its callers is settled when the file is put together
    (Generator.settle): which output sizes it records (`self.out_channels`) and whether it takes its input's
    size (`in_size`), which its callers pass through a marker (SIZE) until then."""

    name: str
    base: str  # nn.Module or nn.Sequential
    doc: str
    first: str | None  # in_channels or in_features; None for the network
    params: list[str]
    lines: Lines
    out: tuple  # the shape its body ends in, in its own terms
    methods: list[str]
    reads: list  # (a child's variable, its BlockClass) whose output size this class may read
    needs: set[str] = field(default_factory=set)  # out_channels, out_size, out_features: read by a caller
    sized: bool = False  # takes `in_size`: its body reads its input's height or width
    inputs: list[tuple[str, str | None]] = field(default_factory=list)  # `with lo`: (lo_channels, lo_size)
    tokens: bool = False  # its input is L x D tokens: `in_size` is the token count L

    def body(self, sized: dict[str, bool]) -> list[str]:
        """The __init__'s lines as they stand: size markers resolved, output sizes recorded, unread sizes
        dropped."""
        lines = replace(self.lines, lines=[SIZE.sub(lambda m: m[2] if sized.get(m[1]) else "", line)
                                           for line in self.lines.lines])
        if "out_channels" in self.needs:
            lines.add(f"self.out_channels = {py(self.out[-1] if self.tokens else self.out[0])}")
        if "out_size" in self.needs:
            lines.add(f"self.out_size = {py(self.out[0] if self.tokens else tuple(self.out[1:]))}")
        if "out_features" in self.needs:
            lines.add(f"self.out_features = {py(self.out[0])}")
        lines.drop_unread()
        return lines.lines

    def text(self, sized: dict[str, bool]) -> str:
        body = self.body(sized)
        head = ["self"] + ([f"{self.first}: int"] if self.first else [])
        head += [f"in_size: {'int' if self.tokens else 'tuple[int, int]'}"] if self.sized else []
        for channels, size in self.inputs:  # a `with` input's size only where the body reads it, as in_size
            head += [f"{channels}: int"] + ([f"{size}: tuple[int, int]"] if sized.get(f"{self.name}.{size}") else [])
        head += self.params
        init = ["    def __init__(" + ", ".join(head) + ") -> None:", "        super().__init__()"]
        init += [f"        {'in_length' if self.tokens else 'in_height, in_width'} = in_size"] if self.sized else []
        lines = [f"class {self.name}({self.base}):", f"    {self.doc}", "", *init, *body, *self.methods]
        return "\n".join(wrap_all(lines)) + "\n"


@dataclass
class BlockClass:
    name: str
    rank: int
    out_rank: int
    floats: set[str]  # parameters given as floats: passed as they are, never through whole()
    written: Written | None  # None while its body is being written
    inputs: list[tuple[str, str | None]] = field(default_factory=list)  # `with lo`: (lo_channels, lo_size)


class Generator(Statements, ControlFlow, Merges):
    def __init__(self, program: Program):
        self.program = program
        self.classes: dict[tuple, BlockClass] = {}  # by (block, rank, ranks of its `with` inputs)
        self.done: list[BlockClass] = []  # the classes written, in the order they were finished
        self.generating: list[str] = []  # blocks whose class is being written
        self.shaping: list[str] = []  # blocks whose output shape a caller is working out (block_shape)
        self.class_names: set[str] = set(prelude.HELPERS) | _plugin_classes()  # no class of ours shadows them
        self.examples: dict[str, object] = {}  # the network's parameters as check saw them (the input's rank)
        self.types = ParamTypes(program)  # what calls give a required parameter: its annotation
        self.numeric: dict[str, set[str]] = {}  # block → parameters only ever given numbers (numeric_params)
        self.reads: list = []  # in the class being written: children whose output size it reads
        self.returned = None  # the last block call's step and the shapes of the tensors it returns
        self.class_names.update(pyname(d.name) for d in program.definitions.values() if d.kind == "function")
        self.whole = functions.whole(program)  # the spec's functions that give whole numbers

    # -- files

    def module(self, network: ast.Definition, header: str, overrides: dict, ends_in_softmax: bool = False
               ) -> tuple[str, str]:
        """The whole file, and the network's class name; `overrides` become the class's defaults.

        A network whose last top-level layer is a softmax also gets `logits()`: the runner trains on it.
        """
        net = self.network_class(network, overrides, ends_in_softmax)
        written = [c.written for c in self.done] + [net]  # each class after those it calls
        sized = self.settle(written)
        classes = [w.text(sized) for w in written]
        helpers = prelude.helpers_source(prelude.used(classes))
        called = [network, *(self.program.definitions[key[0]] for key in self.classes)]
        helpers += functions.source(functions.used(self.program, called))  # the spec's `def`s
        main = _MAIN.format(name=net.name)
        parts = [header, prelude.imports(helpers + "".join(classes) + main, plugins.torch_classes()), helpers]
        parts += ["\n" + c for c in classes]
        parts.append(main)
        text = "\n".join(p.rstrip("\n") + "\n" for p in parts if p)
        return re.sub(r"\n{4,}", "\n\n\n", text), net.name

    def settle(self, written: list[Written]) -> dict[str, bool]:
        """What each class records of its output and whether it takes `in_size`, as its callers need: from
        the callers down (each class comes after the classes it calls), again until nothing changes, since
        a size no longer passed may leave a caller's variable unread."""
        sized = _sized(written, {w.name: w.lines.lines for w in written})
        for _ in range(len(written) + 1):  # sizes only ever go: a few rounds
            needs: dict[int, set[str]] = {id(w): set() for w in written}
            for w in reversed(written):  # callers first
                w.needs = needs[id(w)]
                text = "\n".join(w.body(sized))
                for handle, cls in w.reads:
                    needs[id(cls.written)].update(a for a in ("out_channels", "out_size", "out_features")
                                                  if f"{handle}.{a}" in text)
            now = _sized(written, {w.name: w.body(sized) for w in written})
            if now == sized:
                break
            sized = now
        for w in written:
            w.sized = sized.get(w.name, False)
        return sized

    def class_name(self, base: str) -> str:
        name, n = camel(base), 1
        while name in self.class_names or keyword.iskeyword(name) or name in RESERVED:  # not `None`, `F`
            n += 1
            name = f"{camel(base)}{n}"
        self.class_names.add(name)
        return name

    def network_class(self, d: ast.Definition, overrides: dict, ends_in_softmax: bool) -> Written:
        lines, params, ctx, reads = self.write_class(d, (), set(), overrides)
        name = self.class_name(d.name)
        doc = docstring(f"network {ast.signature(d)} ({shown(d.span.source.name)}:{d.span.line}).")
        if ends_in_softmax:
            lines.add("self.ends_in_softmax = True  # model(x) gives probabilities; train on logits(x)")
        return Written(name, _BASES[ctx.box.access], doc, None, params, lines, ctx.shape,
                       methods(ctx.box, ctx.steps, ends_in_softmax), reads)

    def write_class(self, d: ast.Definition, in_shape: tuple, taken: set[str], overrides: dict | None = None,
                    ins: tuple = ()) -> tuple[Lines, list[str], Ctx, list]:
        """The body of a class's __init__, in the first form its statements allow."""
        bases = child_bases(self.program.definitions, d.body)
        for access, mode in _FORMS:
            lines = Lines(taken=set(taken))
            params, names = self.signature(d, lines, {}, in_shape, overrides)
            box = Box("self", Names(mode), access, "self" if access == "attr" else None)
            self.start_names(box, lines)
            ctx = Ctx(box, in_shape, names, in_shape, [], cls=ClassState(bases), bound=frozenset(bound_names(d)))
            self.own_input(d, ctx, ins)
            self.reads = []
            try:
                self.body(d.body, ctx, lines)
                if access == "whole" and not sequential(ctx.steps):
                    raise Retry("not a sequence")
            except Retry:
                continue
            if ctx.cls.plan:
                lines.lines.insert(0, "        self._plan = []  # what the constructor decided, for the forward")
            return lines, params, ctx, self.reads
        raise AssertionError("the last form writes any body")

    def start_names(self, box: Box, lines: Lines) -> None:
        """The variables a module's names are kept in at construction, where it keeps any."""
        if box.names.mode == "tracked":
            box.names.locals = (lines.local("names"), lines.local("counts"))
            lines.add(f"{box.names.locals[0]}, {box.names.locals[1]} = set(), {{}}")
        elif box.names.mode == "acts":
            box.names.counting_acts(lines.local("acts"))
            lines.add(f"{box.names.acts} = {{}}  # how many activations of each kind, for their names")

    def signature(self, d: ast.Definition, lines: Lines, names: dict, in_shape: tuple,
                  overrides: dict | None = None) -> tuple[list[str], dict]:
        """Constructor parameters; defaults that are not literals are computed in the body."""
        params = []
        names[WHOLE] = self.whole
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

    def scratch_ctx(self, d: ast.Definition, in_shape: tuple, names: dict, ins: tuple = ()) -> Ctx:
        """Where a caller runs a block's body for its output shape only."""
        box = Box("_", Names("tracked", locals=("_", "_")), "iter")
        ctx = Ctx(box, in_shape, names, in_shape, [], cls=ClassState(), bound=frozenset(bound_names(d)))
        self.own_input(d, ctx, ins)
        return ctx

    def own_input(self, d: ast.Definition, ctx: Ctx, ins: tuple = ()) -> None:
        """A block's `with lo`: the forward's parameters; `from in`, `concat in`: the forward keeps its input in a
        variable (`x_in = x`) where the body names it."""
        if d.inputs:
            slots = [Slot(name) for name in d.inputs]
            ctx.steps.append(Inputs(slots))
            ctx.labels.update((name, (slot, shape)) for name, slot, shape in zip(d.inputs, slots, ins))
        if any(isinstance(s, (ast.From, ast.MergeWith, ast.Outputs)) and any(n.id == "in" for n in _names(s))
               for s in ast.statements(d.body)):
            slot = Slot("x_in")
            ctx.steps.append(Save(slot))
            ctx.labels["in"] = (slot, ctx.shape)

    def block_class(self, d: ast.Definition, rank: int, span: Span, in_ranks: tuple = ()) -> BlockClass:
        key = (d.name, rank, in_ranks)
        if key in self.classes:  # (also the class being written: a block that calls itself, a tree)
            return self.classes[key]
        self.generating.append(d.name)
        reads = self.reads
        try:
            return self._block_class(d, rank, key)
        finally:
            self.generating.pop()
            self.reads = reads

    def _block_class(self, d: ast.Definition, rank: int, key: tuple) -> BlockClass:
        first = "in_features" if rank == 1 else "in_channels"
        in_shape = {3: (Src("in_channels"), Src("in_height"), Src("in_width")),
                    2: (Src("in_length"), Src("in_channels"))}.get(rank, (Src("in_features"),))  # 2: L x D tokens
        taken = {"in_channels", "in_height", "in_width", "in_length", "in_features", "in_size"}
        params = {pyname(p.name) for p in d.params}
        inputs, ins = [], []
        for name, r in zip(d.inputs, key[2]):  # `with lo`: the constructor takes `lo_channels` (and `lo_size`)
            channels = claim_local(f"{pyname(name)}_{'channels' if r == 3 else 'features'}", taken | params)
            size = claim_local(f"{pyname(name)}_size", taken | params) if r == 3 else None
            taken.update({channels, size} - {None})
            inputs.append((channels, size))
            ins.append((Src(channels), Src(f"{size}[0]"), Src(f"{size}[1]")) if size else (Src(channels),))
        # named and known before its body is written: a block that calls itself makes an instance of its own class
        head, _ = self.signature(d, Lines(taken=set(taken)), {}, in_shape)
        floats = {p.name for p, text in zip(d.params, head) if ": float" in text}
        cls = self.classes[key] = BlockClass(self.class_name(d.name), rank, rank, floats, None, inputs)
        try:
            lines, params, ctx, reads = self.write_class(d, in_shape, taken, ins=tuple(ins))
        except BaseException:
            del self.classes[key]
            raise
        doc = docstring(f"block {ast.signature(d)} ({shown(d.span.source.name)}:{d.span.line}).")
        cls.out_rank = len(ctx.shape)
        cls.written = Written(cls.name, _BASES[ctx.box.access], doc, first, params, lines, ctx.shape,
                              methods(ctx.box, ctx.steps), reads, inputs=inputs, tokens=rank == 2)
        self.done.append(cls)
        return cls


def _names(s) -> list[ast.Name]:
    return [s.name] if isinstance(s, ast.From) else s.names if isinstance(s, (ast.MergeWith, ast.Outputs)) else []


def _sized(written: list, texts: dict) -> dict[str, bool]:
    """Which classes take their input's size (`in_size`, by class name) and their `with` inputs' (`Fuse.lo_size`):
    those whose body reads it."""
    sized = {w.name: _reads_size("\n".join(texts[w.name])) for w in written if w.first}
    for w in written:
        for _, size in w.inputs:
            if size:
                sized[f"{w.name}.{size}"] = re.search(rf"\b{size}\b", "\n".join(texts[w.name])) is not None
    return sized


def _reads_size(text: str) -> bool:
    return re.search(r"\bin_(height|width|length)\b", text) is not None


_BASES = {"attr": "nn.Module", "iter": "nn.Module", "whole": "nn.Sequential"}


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


def _plugin_classes() -> set[str]:
    """The enabled plugins' module class names, which the generated file imports: a plugin class that has the
    name of one of the file's own helpers could not be told from it, so it is refused."""
    classes = plugins.torch_classes()
    clash = sorted(set(classes) & set(prelude.HELPERS))
    if clash:
        raise CnnError(f"the plugin class {classes[clash[0]]} has the name of a helper of the generated code",
                       hint=f"the plugin {plugins.plugin_of_class(clash[0])} must name its class otherwise")
    return set(classes)

"""Keras and PyTorch written into a spec: the cnndsl line a pasted call means, and the kind a class name is.

Readers of Keras books and PyTorch tutorials write what they know: `Conv2D(32, 3, activation="relu")`,
`nn.Conv2d(3, 16, 3)`, `model.add(layers.Dense(10))`. Such a statement is a syntax error or an unknown layer, and
its error then gives the line that means the same (`conv 32 kernel=3 activation=relu`). The statement is read with
Python's own parser (`ast.parse` builds a tree and runs nothing), and its call translated through the registry:
each kind's `foreign` classes give the class names and the order of their positional parameters, and the
arguments' aliases give the keywords (`kernel_size` is `kernel`), so there is no second table of arguments here.
"""

from __future__ import annotations

import ast
import functools
import keyword
import math
import re
from dataclasses import dataclass, field

from cnndsl import limits
from cnndsl.errors import CnnError, Source, Span
from cnndsl.ops import ACTIVATIONS, REGISTRY, ArgSpec, Op
from cnndsl.ops.base import PAIRED, Foreign, channels_first, pair

MAX_TEXT = 4000  # characters of a statement read as Python: a pasted nn.Sequential of a dozen layers fits
MAX_DEPTH = 8  # levels of a value's expression translated: `1 / 255`, not a tower

KERAS_MODULES = frozenset({"keras", "layers", "tf", "tensorflow", "models"})
TORCH_MODULES = frozenset({"nn", "torch"})
INFERRED = frozenset({"in_channels", "in_features", "num_features", "num_channels", "normalized_shape"})
# what changes nothing in a cnndsl network: memory, names, the layout (cnndsl is channels first), the axis a
# Keras layer works on (the channels, as cnndsl's)
IGNORED = frozenset({"inplace", "name", "dtype", "device", "data_format", "axis", "dim", "trainable", "seed"})
KERAS_ACTIVATIONS = {"linear": None, "leaky_relu": "leakyrelu", "hard_sigmoid": "hardsigmoid",
                     "hard_swish": "hardswish", "hard_silu": "hardswish"}
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class _Code:
    """A value written as cnndsl text: a parameter's name, `(1.0 / 255)`."""

    text: str


_BAD = object()  # a value that has no cnndsl form
NO_FORM = _BAD  # the same, for the importer's values (convert_argument notes it and leaves it out)


@dataclass
class Translation:
    """What a pasted statement is, and the cnndsl lines that mean the same (none for a merge or an unknown class)."""

    what: str  # "Keras' Conv2D call"
    lines: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    kind: str | None = None  # the registry's kind, when there is one
    partial: bool = False  # some argument could not be written
    missing: str = "cnndsl has no such layer"  # what the error says where there are no lines and no kind


# ---- the classes the registry knows ---------------------------------------------------------------------------


@functools.cache
def _classes() -> dict[str, list[tuple[Foreign, Op]]]:
    """Each Keras and PyTorch class name of the registry, lower-cased, and the entries that are it."""
    found: dict[str, list[tuple[Foreign, Op]]] = {}
    for op in REGISTRY.values():
        for f in op.foreign:
            found.setdefault(f.name.lower(), []).append((f, op))
    return found


def _find(name: str, framework: str | None, exact: bool = False) -> tuple[Foreign, Op] | None:
    """The class `name` in `framework` (None: Keras' first, the readers' books being Keras'); the name as written
    first, then in any case unless `exact`."""
    matches = _classes().get(name.lower(), [])
    same = [m for m in matches if m[0].name == name]
    for group in (same, [] if exact else matches):
        mine = [m for m in group if framework in (None, m[0].framework)]
        mine.sort(key=lambda m: m[0].framework != "keras")
        if mine:
            return mine[0]
    return None


def find_class(name: str, framework: str) -> tuple[Foreign, Op] | None:
    """The registry's class `name` of `framework`, spelt exactly, and the kind that is it (the importer's look-up)."""
    return _find(name, framework, exact=True)


def suggestion(word: str) -> str | None:
    """Did-you-mean for a layer name that is a Keras or PyTorch class (`MaxPooling2D`): the registry's kind."""
    if word.lower() == "activation":
        return "an activation is a layer of its own in cnndsl: `relu`, `sigmoid`, `softmax`, ... " \
               "(or `activation=relu` on the layer before)"
    found = _find(word, None)
    if found is None:
        return None
    f, op = found
    return f"did you mean `{op.name}`? ({f.owner} {f.shown})"


# ---- a statement of the source ------------------------------------------------------------------------------


def foreign_call(source: Source, line: int, col: int, kind: type[CnnError] = CnnError) -> CnnError | None:
    """The error for a Keras or PyTorch statement that starts at or after line:col (blanks and comments before
    it skipped), saying the cnndsl line that means the same; None where the statement is no such thing."""
    text = source.text
    start = _skip_blank(text, source.offset(line, col))
    end = _statement_end(text, start)
    if end is None:
        return None
    snippet = text[start:end].rstrip().rstrip(",").rstrip()  # a line copied out of a list of layers
    translation = translate(snippet)
    if translation is None:
        return None
    span = Span(source, *source.position(start), *source.position(start + len(snippet)))
    return _error(translation, span, kind)


def _error(t: Translation, span: Span, kind: type[CnnError]) -> CnnError:
    if t.lines:
        error = kind(f"this is {t.what}; in cnndsl write:", span, "\n".join(t.lines))
    elif t.kind is None:
        error = kind(f"this is {t.what}; {t.missing}", span, "`cnndsl layers` lists the layers it has")
    elif REGISTRY[t.kind].category == "merge":
        error = kind(f"this is {t.what}; in cnndsl it is the merge `{t.kind}`", span,
                     f"a merge is a statement of its own: `{t.kind} {{ branch {{ ... }} branch {{ ... }} }}`,\n"
                     f"or `{t.kind} e1` for the current tensor and the output named `e1`")
    else:
        error = kind(f"this is {t.what}; in cnndsl it is the layer `{t.kind}`", span,
                     f"write it as `{t.kind}` and its arguments, without parentheses or commas "
                     f"(`cnndsl layers {t.kind}` lists them)")
    for note in t.notes:
        error.note(note)
    return error


def _skip_blank(text: str, at: int) -> int:
    """The start of the statement after blanks, line continuations and comments."""
    while at < len(text):
        if text[at] in " \t\r\n\f\\":
            at += 1
        elif text[at] == "#":
            newline = text.find("\n", at)
            at = len(text) if newline == -1 else newline
        else:
            break
    return at


def _statement_end(text: str, start: int) -> int | None:
    """Where a Python statement starting at `start` ends: a newline, `;` or `}` outside brackets and strings, or
    the end of a line with a string left open (`activation=relu")`: what Python cannot read may still be named).
    None where its brackets are not closed (or it is longer than MAX_TEXT): then it is not a call to read."""
    opened: list[str] = []
    at, stop = start, min(len(text), start + MAX_TEXT)
    while at < stop:
        ch = text[at]
        if ch in "\"'":
            close = text.find(ch, at + 1, stop)
            newline = text.find("\n", at + 1, stop)
            if close == -1 or -1 < newline < close:
                return newline if newline != -1 else stop
            at = close
        elif ch == "#":
            newline = text.find("\n", at, stop)
            at = stop if newline == -1 else newline - 1
        elif ch in "([{":
            opened.append(")]}"["([{".index(ch)])
        elif ch in ")]}":
            if not opened:
                return at if ch == "}" else None
            if opened.pop() != ch:
                return None
        elif ch in "\n;" and not opened:
            return at
        at += 1
    return at if not opened and stop == len(text) else None


# ---- a statement read as Python ------------------------------------------------------------------------------


def translate(snippet: str) -> Translation | None:
    """The translation of one Python statement, or None when it is no Keras or PyTorch layer call."""
    try:
        return _translate(snippet)
    except (RecursionError, MemoryError):  # `a + a + ... + a`, thousands deep: Python's tree is no help then
        return None


def _translate(snippet: str) -> Translation | None:
    snippet = snippet.rstrip().rstrip(",")  # a line copied out of a list of layers
    try:
        tree = ast.parse(snippet)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return _named_only(snippet)
    if len(tree.body) != 1 or not isinstance(tree.body[0], (ast.Expr, ast.Assign, ast.AnnAssign)):
        return None
    call = _unwrapped(tree.body[0].value)
    if call is None:
        return None
    path = _dotted(call.func)
    if path is None:
        return None
    if path[-1] == "Sequential":
        return _sequential(call, path)
    return _call(call, path)


def _unwrapped(value) -> ast.Call | None:
    """The layer call in `model.add(Conv2D(...))`, `x = Conv2D(...)(x)`, `(Conv2D(...),)`."""
    for _ in range(8):
        if isinstance(value, ast.Tuple) and len(value.elts) == 1:
            value = value.elts[0]
        elif isinstance(value, ast.Call) and isinstance(value.func, ast.Call):
            value = value.func
        elif isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "add" \
                and len(value.args) == 1 and isinstance(value.args[0], ast.Call):
            value = value.args[0]
        else:
            break
    return value if isinstance(value, ast.Call) else None


def _dotted(node) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


def _framework(path: list[str]) -> str | None:
    prefix = set(path[:-1])
    if prefix & TORCH_MODULES:
        return "torch"
    if prefix & KERAS_MODULES:
        return "keras"
    return None


def _class_like(path: list[str]) -> bool:
    """A class, not a function: `Conv2D`, `nn.ReLU`; not cnndsl's `relu(`, nor `F.relu` or nn.functional's."""
    return path[-1][:1].isupper() and "functional" not in path


def _class(path: list[str]) -> tuple[Foreign, Op] | None:
    """The class a call names: as written, or in another case after a module (`nn.Conv2D`)."""
    if not _class_like(path):
        return None
    framework = _framework(path)
    return _find(path[-1], framework, exact=framework is None)


def _named_only(snippet: str) -> Translation | None:
    """A call Python cannot read (`Conv2D(32, 3, activation=relu")`) whose class is still plain."""
    m = re.match(r"(?:[A-Za-z_]\w*\s*=\s*)?((?:[A-Za-z_]\w*\s*\.\s*)*)([A-Za-z_]\w*)\s*\(", snippet)
    if m is None:
        return None
    path = [p.strip() for p in m.group(1).split(".") if p.strip()] + [m.group(2)]
    found = _class(path)
    if found is None:
        return None
    f, op = found
    return Translation(f"{f.owner} {f.shown} call", kind=op.name)


def _sequential(call: ast.Call, path: list[str]) -> Translation | None:
    framework = _framework(path) or ("torch" if call.args and not isinstance(call.args[0], ast.List) else "keras")
    items = call.args[0].elts if call.args and isinstance(call.args[0], (ast.List, ast.Tuple)) else call.args
    owner = "a PyTorch nn.Sequential" if framework == "torch" else "a Keras Sequential model"
    out = Translation(owner)
    for item in items:
        inner = _unwrapped(item)
        inner_path = _dotted(inner.func) if inner is not None else None
        done = _call(inner, inner_path) if inner_path is not None else None
        if done is None or not done.lines:
            name = inner_path[-1] if inner_path else ast.unparse(item)[:40]
            out.notes.append(f"`{name}` has no cnndsl line here" + (f": see `cnndsl layers {done.kind}`"
                                                                      if done and done.kind else ""))
            continue
        out.lines += done.lines
        out.notes += [f"{inner_path[-1]}: {note}" for note in done.notes]
    return out if out.lines or out.notes else None


def _call(call: ast.Call, path: list[str]) -> Translation | None:
    framework = _framework(path)
    name = path[-1]
    if name == "Activation" and framework != "torch":
        return _activation(call)
    if not _class_like(path):
        return None
    found = _class(path)
    if found is None:
        if framework is None:
            return None
        unknown = Foreign(framework, name)
        return Translation(f"{unknown.owner} {unknown.shown} call")
    f, op = found
    out = Translation(f"{f.owner} {f.shown} call", kind=op.name)
    if op.category == "merge":
        return out
    values = _arguments(call, f, op, out)
    out.lines.append(_line(op, values))
    if out.partial:
        out.notes.append(f"`cnndsl layers {op.name}` lists what {op.name} takes")
    return out


def _activation(call: ast.Call) -> Translation:
    """Keras' `Activation("relu")`: the layer `relu`."""
    out = Translation("Keras' Activation call")
    value = _value(call.args[0]) if call.args else _BAD
    if isinstance(value, str):
        value = KERAS_ACTIVATIONS.get(value, value)
    if value is None:  # "linear"
        out.lines.append("identity")
    elif isinstance(value, _Code) or (isinstance(value, str) and _is_word(value)):
        out.lines.append(_text(value, None))  # `relu`, or a parameter that holds an activation
    else:
        out.missing = "in cnndsl an activation is a layer of its own: `relu`, `sigmoid`, `softmax`, ..."
    return out


# ---- arguments ------------------------------------------------------------------------------------------------


def _arguments(call: ast.Call, f: Foreign, op: Op, out: Translation) -> dict[str, object]:
    """The call's arguments as registry arguments (name → value), the class's own defaults filled in; what has
    no cnndsl form is noted in `out`."""
    given: list[tuple[str, object]] = []
    for i, node in enumerate(call.args):
        if isinstance(node, ast.Starred) or i >= len(f.params):
            out.notes.append(f"`{ast.unparse(node)[:40]}` is left out: cnndsl knows no more positional values "
                             f"of {f.shown}")
            out.partial = True
            continue
        given.append((f.params[i], node))
    for kw in call.keywords:
        if kw.arg is None:
            out.notes.append(f"`**{ast.unparse(kw.value)[:40]}` is left out")
            out.partial = True
            continue
        given.append((kw.arg, kw.value))
    values: dict[str, object] = {}
    for name, node in given:
        _argument(name, node, f, op, values, out)
    written = class_defaults(f, values)
    if written:
        shown = " and ".join(f"{n}={_text(v, op.arg(n))}" for n, v in written)
        out.notes.append(f"{shown} {'is' if len(written) == 1 else 'are'} {f.owner} "
                         f"default{'' if len(written) == 1 else 's'}, written out (cnndsl's are PyTorch's)")
    return values


def class_defaults(f: Foreign, values: dict) -> list[tuple[str, object]]:
    """The class's own defaults, where they differ from cnndsl's, filled into `values` where not given."""
    written = [(n, v) for n, v in f.defaults if n not in values]
    for n, v in written:
        values[n] = v
    return written


def _argument(name: str, node, f: Foreign, op: Op, values: dict, out: Translation) -> None:
    convert_argument(name, _value(node), f"`{name}={ast.unparse(node)[:40]}`", f, op, values, out)


def convert_argument(name: str, value, shown: str, f: Foreign, op: Op, values: dict, out: Translation) -> None:
    """Parameter `name` of class `f` with `value` (a constant, a tuple, _Code or _BAD) as a registry argument of
    `op` in `values`; what has no cnndsl form is noted in `out` (and marks it partial). The importer
    (cnndsl/interop/keras_import.py) reads a Keras layer's config through it too."""
    if name in IGNORED or value is None:
        return
    if name == "input_shape" and op.name != "input":  # Keras' first layer says the network's input
        shape = channels_first(value) if isinstance(value, tuple) else _BAD
        if shape is _BAD or not all(isinstance(d, int) and d > 0 for d in shape):
            out.notes.append(f"{shown} is left out: write the network's `input` line")
            out.partial = True
        else:
            out.lines.insert(0, f"input {'x'.join(map(str, shape))}")
        return
    if name in INFERRED:
        out.notes.append(f"{shown} is not written: cnndsl infers it from the layer before")
        return
    target = dict(f.renames).get(name, "shape" if name == "input_shape" else name)
    spec = op.arg(target) if target else None
    if spec is None:
        out.notes.append(f"{shown} is left out: cnndsl's {op.name} has no such argument")
        out.partial = True
        return
    convert = dict(f.convert).get(spec.name)
    if convert is not None and not isinstance(value, _Code) and value is not _BAD:
        value = convert(value)
    if spec.kind == "activation" and isinstance(value, str):
        value = KERAS_ACTIVATIONS.get(value, value)
        if value is None:
            return
    if value is _BAD:
        out.notes.append(f"{shown} is left out: it is not a value cnndsl can write")
        out.partial = True
        return
    values[spec.name] = value


def _value(node, depth: int = 0):
    """A Python expression as a value: a constant, a tuple of them, a name (`_Code`), simple arithmetic (`_Code`),
    `tf.nn.relu` as the word `relu`; None for Python's None; _BAD for anything else."""
    if depth > MAX_DEPTH:
        return _BAD
    if isinstance(node, ast.Constant):
        v = node.value
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, int):
            return v if abs(v) <= limits.NUMBER else _BAD
        if isinstance(v, float):
            return v if math.isfinite(v) and abs(v) <= limits.NUMBER else _BAD
        return _BAD
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _value(node.operand, depth + 1)
        if isinstance(inner, (int, float)) and not isinstance(inner, bool):
            return -inner
        return _Code(f"(-{inner.text})") if isinstance(inner, _Code) else _BAD
    if isinstance(node, (ast.Tuple, ast.List)):
        items = tuple(_value(e, depth + 1) for e in node.elts)
        ok = items and all(isinstance(v, (int, float, _Code)) and not isinstance(v, bool) for v in items)
        return items if ok else _BAD
    if isinstance(node, ast.Name):
        return _Code(node.id) if _is_word(node.id) else _BAD
    if isinstance(node, ast.Attribute):  # tf.nn.relu, keras.activations.relu
        path = _dotted(node)
        return path[-1] if path and path[-1] in ACTIVATIONS else _BAD
    if isinstance(node, ast.BinOp):
        return _arithmetic(node, depth)
    return _BAD


_OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
              ast.Pow: "**"}


def _arithmetic(node: ast.BinOp, depth: int):
    op = _OPERATORS.get(type(node.op))
    left, right = _value(node.left, depth + 1), _value(node.right, depth + 1)
    numbers = all(isinstance(v, (int, float, _Code)) and not isinstance(v, bool) for v in (left, right))
    if op is None or not numbers:
        return _BAD
    return _Code(f"({_number(left)} {op} {_number(right)})")


def _number(v) -> str:
    return v.text if isinstance(v, _Code) else repr(v)


def _is_word(text: str) -> bool:
    return bool(_WORD.fullmatch(text)) and not keyword.iskeyword(text)


# ---- the cnndsl line -------------------------------------------------------------------------------------------


def _line(op: Op, values: dict[str, object]) -> str:
    """`conv 32 kernel=3 activation=relu`: the first positional argument bare, the others by name in the
    registry's order, each left out where it is the registry's default."""
    lead = next((a for a in op.args if a.positional), None)
    parts = [op.name]
    for spec in op.args:
        if spec.name not in values:
            continue
        value = values[spec.name]
        if spec is not lead and is_default(value, spec):
            continue
        text = _text(value, spec)
        parts.append(text if spec is lead else f"{spec.name}={text}")
    return " ".join(parts)


def is_default(value, spec: ArgSpec) -> bool:
    """Whether `value` is the argument's default, so that a written line leaves it out."""
    if isinstance(value, _Code):
        return False
    if spec.kind in PAIRED and isinstance(value, int) and not isinstance(value, bool):
        value = pair(value)
    if spec.kind == "padding" and spec.default == "valid" and value in ((0, 0), 0):
        return True  # no padding is `valid`
    if isinstance(value, bool) != isinstance(spec.default, bool):
        return False
    return value == spec.default


def _text(value, spec: ArgSpec | None) -> str:
    if isinstance(value, _Code):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return value if _is_word(value) else '"' + value.replace('"', "'").replace("\n", " ") + '"'
    if spec is not None and spec.kind in ("pair", "padding") and len(value) == 2 and value[0] == value[1]:
        return _text(value[0], None)  # (3, 3) is 3
    if all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        return "x".join(map(str, value))
    return "(" + ", ".join(_text(v, None) for v in value) + ")"

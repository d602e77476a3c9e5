"""What one registry entry is: a layer kind's arguments, shape rule, counts, and receptive field.

Shapes never include the batch: (C, H, W) for images, (F,) for flat vectors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from cnndsl.errors import ShapeError, TooSmallError

Shape = tuple[int, ...]

REQUIRED = object()  # marks an argument without a default


@dataclass(frozen=True)
class Symbol:
    """A bare word that is not a variable, such as `same` or `relu`.

    It carries the names that were in scope, so an error can suggest one ("did you mean").
    """

    name: str
    known: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class ArgSpec:
    """One argument of a layer kind.

    kind: int | float | bool | pair | padding | choice | shape | ints
    """

    name: str
    kind: str
    default: object = REQUIRED
    aliases: tuple[str, ...] = ()
    positional: bool = False
    choices: tuple[str, ...] = ()
    low: float | None = None  # smallest allowed value
    high: float | None = None  # values must be below this
    above: float | None = None  # values must be above this (batchnorm's eps: PyTorch refuses 0 in training)
    rank: bool = False  # decides the output's rank: written out, not a parameter (the generated code needs it)
    doc: str = ""

    def __post_init__(self) -> None:
        if self.kind in PAIRED and isinstance(self.default, int):  # stored as the binder coerces a given value
            object.__setattr__(self, "default", pair(self.default))

    @property
    def required(self) -> bool:
        """Whether a call must give it (it has no default)."""
        return self.default is REQUIRED


PAIRED = ("pair", "padding", "ints")  # kinds whose single number means the same on both axes: held as (h, w)


@dataclass(frozen=True)
class Foreign:
    """A Keras or PyTorch class that a layer kind is (Keras' `Conv2D`, PyTorch's `nn.Conv2d` for `conv`).

    Did-you-mean knows its name, and a call of it pasted into a spec is read through it (ops/foreign.py). A
    parameter is read as the registry argument whose name or alias it is (`kernel_size` is `kernel`), so only what
    the aliases cannot say is written here: the order of the positional parameters, and where the class differs.
    """

    framework: str  # "keras" or "torch"
    name: str  # the class
    params: tuple[str, ...] = ()  # its parameters in its signature's order, as far as calls give them by position
    renames: tuple[tuple[str, str], ...] = ()  # a parameter that is another registry argument ("" for none)
    convert: tuple[tuple[str, Callable], ...] = ()  # a registry argument whose value the class writes otherwise
    defaults: tuple[tuple[str, object], ...] = ()  # registry arguments whose default the class has otherwise

    @property
    def shown(self) -> str:
        """As a program names it: `Conv2D`, `nn.Conv2d`."""
        return f"nn.{self.name}" if self.framework == "torch" else self.name

    @property
    def owner(self) -> str:
        return "PyTorch's" if self.framework == "torch" else "Keras'"


def keras(name: str, params: str = "", **differences) -> Foreign:
    """`keras("Dense", "units activation use_bias")`: a Keras layer class and its positional parameters."""
    return Foreign("keras", name, tuple(params.split()), **differences)


def pytorch(name: str, params: str = "", **differences) -> Foreign:
    """`pytorch("Linear", "in_features out_features bias")`: a torch.nn class and its positional parameters."""
    return Foreign("torch", name, tuple(params.split()), **differences)


def channels_first(shape):
    """Keras' (H, W, C) as (C, H, W); a Keras (H, W) image, which has no channel axis, as (1, H, W)."""
    if isinstance(shape, tuple) and len(shape) == 3:
        return (shape[2], shape[0], shape[1])
    if isinstance(shape, tuple) and len(shape) == 2:
        return (1, *shape)
    return shape


def keras_momentum(m):
    """Keras' batchnorm momentum is the weight of the old statistics (0.99), PyTorch's that of the new (0.01)."""
    return round(1 - m, 12) if isinstance(m, (int, float)) and not isinstance(m, bool) else m


@dataclass
class Window:
    """The receptive-field effect of a layer along H and W: effective kernel and stride."""

    kh: int = 1
    kw: int = 1
    sh: float = 1  # below 1 for upsampling
    sw: float = 1


class _Values:
    """Attribute access to argument values: `a.filters` for `a.values["filters"]`."""

    def __getattr__(self, name: str):
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass
class Args(_Values):
    """Resolved arguments handed to an entry's functions."""

    values: dict[str, object]
    labels: list[str] = field(default_factory=list)  # names of the inputs, for merge messages
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        self.warnings.append(message)


@dataclass
class CodeArgs(_Values):
    """What an entry's `torch` function sees: argument values (known, or Src) and input shapes."""

    values: dict[str, object]
    ins: list[tuple]
    channels_last: bool = False  # the code generator runs this layer on an (N, H, W, C) tensor (a fused run)

    @property
    def x(self) -> tuple:
        return self.ins[0]


def _zero(a: Args, ins: list[Shape]) -> int:
    return 0


def _unit_window(a: Args, ins: list[Shape]) -> Window:
    return Window()


def _same_shape(a: Args, ins: list[Shape]) -> Shape:
    return ins[0]


@dataclass(frozen=True)
class Op:
    """One layer kind. The checker and the code generator both read this entry, and only it."""

    name: str
    doc: str
    category: str
    args: tuple[ArgSpec, ...] = ()
    shape: Callable[[Args, list[Shape]], Shape] = _same_shape
    params: Callable[[Args, list[Shape]], int] = _zero
    buffers: Callable[[Args, list[Shape]], int] = _zero
    macs: Callable[[Args, list[Shape], Shape], int] = lambda a, ins, out: 0
    window: Callable[[Args, list[Shape]], Window] = _unit_window
    label: Callable[[Args, list[Shape]], str] | None = None  # short text for the report's op column
    explain: Callable[[Args, list[Shape], Shape], list[str]] | None = None
    aliases: tuple[str, ...] = ()
    shape_rule: str = "output shape = input shape"  # for docs/language.md
    # code generation: the PyTorch module as source text, and the output shape when some sizes are
    # known only at construction (when all are known, `shape` above is used)
    torch: Callable[[CodeArgs], str] | None = None
    sym_shape: Callable[[CodeArgs], tuple] | None = None
    # a layer its block's forward computes in place (a merge): the expression, from its inputs' variables
    # and their ranks, and the layer's arguments (torch.cat([a, b], dim=1))
    expression: Callable[[list[str], list[int], dict], str] | None = None
    # False where autograd keeps only the inputs for the backward pass: a relu after such a layer
    # may overwrite its output in place (torchvision's ReLU(inplace=True))
    output_saved: bool = True
    # the Keras and PyTorch classes this kind is: did-you-mean knows them, and a call of one is translated
    foreign: tuple[Foreign, ...] = ()
    # the class `check --keras` names this kind's rows by, where it is not the first Keras class above (Keras
    # writes most activations `Activation("relu")`), or a name in Keras' style for a kind Keras lacks
    keras: str = ""
    # import (`cnndsl import`, cnndsl/interop/): the dotted path of the torch module class this kind's layers are
    # built as, when it is not one of `foreign`'s `torch.nn` classes (a plugin's "cnndsl_cbam.layers.CBAM"; generated
    # code imports it by that path), and a function reading such a module's spec arguments back (None: the importer
    # reads the module's attributes named as the torch Foreign's parameters)
    torch_class: str = ""
    from_torch: Callable[[object], dict[str, object]] | None = None

    @property
    def keras_class(self) -> str:
        """The class `check --keras` shows: its own `keras` name, else its first Keras class."""
        return self.keras or next((f.name for f in self.foreign if f.framework == "keras"), "")

    @property
    def in_keras(self) -> bool:
        """Whether Keras has this kind of layer (else its summary name is ours, in Keras' style); every
        activation is Keras' `Activation("name")`."""
        return self.category == "activation" or any(f.framework == "keras" for f in self.foreign)

    def arg(self, name: str) -> ArgSpec | None:
        for spec in self.args:
            if name == spec.name or name in spec.aliases:
                return spec
        return None

    def describe(self, a: Args, ins: list[Shape]) -> str:
        return self.label(a, ins) if self.label else self.name

    def defaults(self) -> dict[str, object]:
        """Every argument at its default: the layer an `activation=elu` on another layer adds."""
        return {spec.name: spec.default for spec in self.args}


# ---- helpers shared by entries ------------------------------------------------------------------


def fmt_shape(shape: Shape) -> str:
    return "x".join(str(d) for d in shape)


def fmt_int(n: int) -> str:
    return f"{n:,}"


def need_image(op: str, shape: Shape) -> tuple[int, int, int]:
    if len(shape) == 2:
        raise ShapeError(f"{op} needs a CxHxW input, got {shape[0]:,} tokens of {shape[1]:,} features",
                         hint="on tokens, use the layers that work per token: dense, layernorm, attention")
    if len(shape) != 3:
        raise ShapeError(
            f"{op} needs a CxHxW input, got a flat vector of {shape[0]:,}",
            hint="convolutions and pools work on images: give the network an image input "
            "(`input 1x28x28`) or `reshape` the vector first",
        )
    return shape  # type: ignore[return-value]


def need_flat(op: str, shape: Shape) -> int:
    if len(shape) != 1:
        c, h, w = shape
        raise ShapeError(
            f"{op} needs a flat input, got {fmt_shape(shape)}",
            hint=f"add `flatten` before it (keeps all {c * h * w:,} values) "
            f"or `globalavgpool` (one average per channel: {c:,} values)",
        )
    return shape[0]


def nearest_divisor(n: int, k: int) -> int:
    """The divisor of n nearest k (the smaller on a tie): the hint for groups or heads that do not divide n."""
    return min((d for d in range(1, n + 1) if n % d == 0), key=lambda d: (abs(d - k), d))


def pair(v) -> tuple:
    """(h, w) of a size given as one number; the binder applies it, so entries always see tuples."""
    return v if isinstance(v, tuple) else (v, v)


def pads(padding, n: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """Padding before and after along one axis. `same` follows Keras (more after, for stride > 1)."""
    if padding == "same":
        out = -(-n // s)
        total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
        return total // 2, total - total // 2
    if padding == "valid":
        return 0, 0
    return padding, padding


def axis_out(n: int, before: int, after: int, k: int, s: int, d: int = 1, ceil: bool = False) -> int:
    """PyTorch's output size along one axis (also Keras' for valid and same padding)."""
    span = n + before + after - d * (k - 1) - 1
    if span < 0:
        return 0
    if not ceil:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= n + before:  # the last window must start inside the input or left padding
        out -= 1
    return out


PADDED_PIXELS = 1 << 24  # a padded map (a temporary of PyTorch's) may be this large whatever its input


def spatial(op: str, a: Args, shape: Shape, kernel: tuple, stride: tuple, dilation: tuple = (1, 1), ceil=False):
    """Output H, W and the padding used, raising a located-friendly error when a size reaches 0."""
    c, h, w = need_image(op, shape)
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    padding = a.values.get("padding", "valid")
    ph, pw = pads(pair_or(padding, 0), h, kh, sh, dh), pads(pair_or(padding, 1), w, kw, sw, dw)
    padded = (h + sum(ph)) * (w + sum(pw))
    if padded > max(4 * h * w, PADDED_PIXELS):  # `avgpool 65535 padding=same` pads 2x1 to 65536x65535
        raise ShapeError(f"{op} pads its {h}x{w} input to {h + sum(ph):,}x{w + sum(pw):,}, far more padding "
                         "than input", hint="use a kernel no larger than the input")
    ho = axis_out(h, *ph, kh, sh, dh, ceil)
    wo = axis_out(w, *pw, kw, sw, dw, ceil)
    if ho <= 0 or wo <= 0:
        ek = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
        raise TooSmallError(
            f"{op} kernel {fmt_shape(ek)} is larger than its {h}x{w} input"
            + (f" padded by {ph[0] + ph[1]}x{pw[0] + pw[1]}" if ph != (0, 0) or pw != (0, 0) else ""),
            hint="use padding=same, a smaller kernel, or fewer downsampling layers before it",
        )
    dropped = [_dropped(n, b, k, s, d, out) for n, (b, _), k, s, d, out in
               ((h, ph, kh, sh, dh, ho), (w, pw, kw, sw, dw, wo))]
    if any(dropped):
        what = " and ".join(f"{n} {axis}{'s' if n > 1 else ''}" for n, axis in zip(dropped, ("row", "column")) if n)
        a.warn(f"{op} never sees the last {what} of its {h}x{w} input: {h}x{w} -> {ho}x{wo}")
    return ho, wo, ph, pw


def _dropped(n: int, before: int, k: int, s: int, d: int, out: int) -> int:
    """Input rows after the last window. Strided 1x1 convs skip rows by design: not counted."""
    effective = d * (k - 1) + 1
    if effective < s:
        return 0
    last_seen = (out - 1) * s - before + effective - 1
    return max(0, n - 1 - last_seen)


def pair_or(padding, axis: int):
    if isinstance(padding, tuple):
        return padding[axis]
    return padding


def out_formula(n: int, pad: tuple[int, int], k: int, s: int, d: int, out: int, padding, ceil=False) -> str:
    """`floor((28 + 2*1 - 3) / 1) + 1 = 28`, the formula the tutorials teach."""
    if padding == "same":
        return f"ceil({n} / {s}) = {out}  (same: pads {pad[0]} before, {pad[1]} after)"
    p = f"2*{pad[0]}" if pad[0] == pad[1] else f"{pad[0]}+{pad[1]}"
    k_text = str(k) if d == 1 else f"{d}*({k}-1) - 1"
    rnd = "ceil" if ceil else "floor"
    return f"{rnd}(({n} + {p} - {k_text}) / {s}) + 1 = {out}"


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def prod(xs) -> int:
    return math.prod(xs)

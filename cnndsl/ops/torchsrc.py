"""Shared pieces of the registry's PyTorch source: constructor calls, padding, output sizes."""

from __future__ import annotations

from cnndsl.ops.base import CodeArgs, axis_out, pads
from cnndsl.ops.source import Src, binop, call, is_known, py


def ctor(name: str, *positional, **keywords) -> str:
    """`nn.Conv2d(3, 64, kernel_size=7)`: keywords that are None are left out."""
    parts = [py(p) for p in positional]
    parts += [f"{k}={py(v)}" for k, v in keywords.items() if v is not None]
    return f"{name}({', '.join(parts)})"


def unpair(v):
    """3 for (3, 3): PyTorch takes either."""
    if isinstance(v, tuple) and len(v) == 2 and v[0] == v[1]:
        return v[0]
    return v


def two(v) -> tuple:
    """(h, w) of a pair argument. The binder made every known one a tuple; one known only at construction
    (a block's parameter) may be an int or a tuple then, so the generated code splits it with its `pair`."""
    if isinstance(v, Src):
        return Src(f"pair({v.text})[0]"), Src(f"pair({v.text})[1]")
    return v


def effective(k, d):
    return binop("+", binop("*", d, binop("-", k, 1)), 1)


def axis_pads(padding, n, k, s, d, axis: int = 0):
    """(before, after) padding along one axis; Src when it depends on construction-time sizes.

    A padding that is a constructor argument may be `same`, `valid`, a number or a pair: `pads_of`
    sorts it out when the module is built (`pair` where it is known to be a number or a pair)."""
    if isinstance(padding, Src):
        if not padding.word:
            return (Src(f"pair({padding.text})[{axis}]"),) * 2
        return Src(f"pads_of({padding.text}, {axis}, {py(n)}, {py(k)}, {py(s)}, {py(d)})")
    if padding in ("same",):
        if is_known((n, k, s, d)):
            return pads("same", n, k, s, d)
        if s == 1 and is_known((k, d)) and (d * (k - 1)) % 2 == 0:
            return (d * (k - 1) // 2,) * 2
        return Src(f"same_pads({py(n)}, {py(k)}, {py(s)}, {py(d)})")
    if padding == "valid":
        return (0, 0)
    return (padding, padding)


def _pads(g: CodeArgs, kernel, stride, dilation):
    """(before, after) along H and along W, and the padding argument as given."""
    (kh, kw), (sh, sw), (dh, dw) = two(kernel), two(stride), two(dilation)
    p = g.values.get("padding", "valid")
    ph = axis_pads(p if not isinstance(p, tuple) else p[0], g.x[1], kh, sh, dh, 0)
    pw = axis_pads(p if not isinstance(p, tuple) else p[1], g.x[2], kw, sw, dw, 1)
    return ph, pw, p


def padding(g: CodeArgs, kernel, stride, dilation, torch_same: bool = True) -> tuple[object, object]:
    """(padding= value for a symmetric case, (left, right, top, bottom) for an asymmetric one).

    torch_same: the module takes PyTorch's own padding="same" (convolutions do, pools do not)."""
    (sh, sw), ph, pw, p = two(stride), *_pads(g, kernel, stride, dilation)
    if isinstance(p, Src) and not p.word:  # a number or a pair, as PyTorch takes it
        return p, None
    if isinstance(ph, Src) or isinstance(pw, Src):
        if torch_same and p == "same" and (sh, sw) == (1, 1):  # the odd extra goes after, as in Keras
            return "same", None
        return None, Src(f"(*{_src_pair(pw)}, *{_src_pair(ph)})")
    if ph[0] == ph[1] and pw[0] == pw[1]:
        sym = unpair((ph[0], pw[0]))
        return (sym if sym != 0 else None), None
    return None, (pw[0], pw[1], ph[0], ph[1])


def _src_pair(v) -> str:
    return py(v) if isinstance(v, Src) else f"({py(v[0])}, {py(v[1])})"


def out_size(n, before_after, k, s, d, ceil=False):
    """Output size along one axis, folded when every part is known."""
    if isinstance(before_after, Src):
        total = Src(f"sum({before_after.text})")
        before = Src(f"{before_after.text}[0]")
    else:
        total = binop("+", before_after[0], before_after[1])
        before = before_after[0]
    if is_known((n, total, k, s, d)):
        return axis_out(n, before, total - before, k, s, d, ceil)
    if s == 1 and is_known((total, k, d)):  # stride 1: n plus a constant, often n itself
        return binop("+", n, total - d * (k - 1)) if total != d * (k - 1) else n
    return call("conv_out", n, k, s, total, d, *((True,) if ceil else ()))


def spatial_out(g: CodeArgs, kernel, stride, dilation=1, ceil=False) -> tuple:
    """(H, W) after a conv or pool, as values or source."""
    (kh, kw), (sh, sw), (dh, dw) = two(kernel), two(stride), two(dilation)
    ph, pw, p = _pads(g, kernel, stride, dilation)
    if p == "same":  # ceil(n / s), whatever the kernel
        return tuple(n if s == 1 else binop("//", binop("+", n, binop("-", s, 1)), s)
                     for n, s in ((g.x[1], sh), (g.x[2], sw)))
    h, w = out_size(g.x[1], ph, kh, sh, dh, ceil), out_size(g.x[2], pw, kw, sw, dw, ceil)
    return h, w

"""Runs of layers applied at each position, written channels-last as torchvision's CNBlock writes them.

`layernorm`, `dense per_position=true` and value-wise activations in a row on a map are one run: the forward
permutes to (N, H, W, C) once before it, applies nn.LayerNorm and nn.Linear there, and permutes back after it.
Written layer by layer (LayerNorm2d, Linear2d) the values would be the same function but not the same bits:
an activation such as GELU rounds otherwise on a permuted view than on a contiguous tensor, and the convs
after the block would see other strides. A run opens at a layernorm or a dense only where a dense follows,
so a layernorm alone stays LayerNorm2d (ConvNeXt's stem and downsampling).
"""

from __future__ import annotations

from cnndsl.codegen.context import Ctx
from cnndsl.codegen.forward import Permute
from cnndsl.elaborate.validate import applies_variable
from cnndsl.errors import CnnError
from cnndsl.ops import lookup
from cnndsl.ops.source import is_known
from cnndsl.syntax import ast

TO_LAST, TO_FIRST = (0, 2, 3, 1), (0, 3, 1, 2)
# value-wise: the same on (N, H, W, C) as on (N, C, H, W) (softmax is over the channels: not one of them)
VALUE_WISE = frozenset({"elu", "gelu", "hardsigmoid", "hardswish", "leakyrelu", "relu", "relu6", "sigmoid", "silu",
                        "tanh", "dropout"})


def before(gen, stmts: list[ast.Stmt], i: int, ctx: Ctx) -> None:
    """Opens a run at statement i or closes the one before it."""
    s = stmts[i]
    if isinstance(s, ast.Let):
        return
    kind = _kind(gen, s, stmts, ctx)
    if ctx.channels_last and kind is None:
        close(ctx)
    elif not ctx.channels_last and kind in ("dense", "layernorm") and _dense_ahead(gen, stmts, i, ctx):
        ctx.steps.append(Permute(TO_LAST))
        ctx.channels_last = True


def close(ctx: Ctx) -> None:
    if ctx.channels_last:
        ctx.steps.append(Permute(TO_FIRST))
        ctx.channels_last = False


def _dense_ahead(gen, stmts: list[ast.Stmt], i: int, ctx: Ctx) -> bool:
    for s in stmts[i:]:
        if isinstance(s, ast.Let):
            continue
        kind = _kind(gen, s, stmts, ctx)
        if kind is None:
            return False
        if kind == "dense":
            return True
    return False


def _kind(gen, s: ast.Stmt, stmts: list[ast.Stmt], ctx: Ctx) -> str | None:
    """As _position_wise; a labeled layer is in a run when nothing reads its label (its output is channels-last
    there)."""
    if not isinstance(s, ast.Labeled):
        return _position_wise(gen, s, ctx)
    kind = None if s.more else _position_wise(gen, s.stmt, ctx)
    if kind is None:
        return None
    read = {n.id for r in ast.statements(stmts) if isinstance(r, ast.MergeWith) for n in r.names}
    read |= {r.name.id for r in ast.statements(stmts) if isinstance(r, ast.From)}
    return None if s.label in read else kind


def _position_wise(gen, s: ast.Stmt, ctx: Ctx) -> str | None:
    """"dense" (per position), "layernorm" or "value-wise" for a layer of a run on a map; else None."""
    if not isinstance(s, ast.Call) or len(ctx.shape) != 3 or ctx.frozen or applies_variable(gen.program, s, ctx.bound) \
            or s.name in gen.program.definitions:
        return None
    try:
        op = lookup(s.name)
        if op is None:
            return None
        values = gen.layer_values(op, s, ctx) if op.name in ("dense", "layernorm") else {}
    except (CnnError, KeyError, TypeError, ValueError):
        return None
    if op.name == "dense":
        per_position, activation = values.get("per_position"), values.get("activation", "none")
        ok = per_position is True and is_known(activation) and (activation == "none" or activation in VALUE_WISE)
        return "dense" if ok else None
    if op.name == "layernorm":
        return "layernorm"
    return "value-wise" if op.name in VALUE_WISE and not s.args else None

"""Sequences of tokens, as a vision transformer uses them: tokens, classtoken, posembed, attention, token.

A sequence of L tokens of D features has the shape L x D, the tensor's own (N, L, D) without the batch, as
torchvision's VisionTransformer and nn.MultiheadAttention(batch_first=True) hold it. `in.channels` is D there, and
`layernorm` and `dense` work on the last axis, D.
"""

from __future__ import annotations

from cnndsl.errors import ShapeError
from cnndsl.ops.base import Args, ArgSpec, Op, Shape, fmt_int, fmt_shape, keras, nearest_divisor, need_image, pytorch
from cnndsl.ops.source import binop
from cnndsl.ops.torchsrc import ctor


def need_tokens(op: str, shape: Shape) -> tuple[int, int]:
    """(L, D) of a sequence of tokens, else a located error that says how to make one."""
    if len(shape) != 2:
        raise ShapeError(
            f"{op} needs a sequence of tokens (L x D), got {fmt_shape(shape)}",
            hint="`tokens` turns a C x H x W map into H*W tokens of C features (after a patchify conv)",
        )
    return shape  # type: ignore[return-value]


def _tokens_shape(a: Args, ins: list[Shape]) -> Shape:
    c, h, w = need_image("tokens", ins[0])
    return (h * w, c)


TOKENS = Op(
    "tokens",
    "A C x H x W map as H*W tokens of C features, row by row (torchvision's ViT: reshape and permute to "
    "(N, L, D); `x.flatten(2).transpose(1, 2)`). Put it after a patchify conv (`conv 768 kernel=16 stride=16`).",
    "shape",
    shape=_tokens_shape,
    explain=lambda a, ins, out: [f"{ins[0][1]} * {ins[0][2]} = {out[0]} tokens of {out[1]} features; params = 0"],
    torch=lambda g: "Tokens()",
    sym_shape=lambda g: (binop("*", g.x[1], g.x[2]), g.x[0]),
    aliases=("patches",),
    shape_rule="C x H x W → (H*W) x C: L x D tokens",
    keras="Tokens",
)


def _length_shape(op: str, extra: int):
    def shape(a: Args, ins: list[Shape]) -> Shape:
        n, d = need_tokens(op, ins[0])
        return (n + extra, d)
    return shape


CLASSTOKEN = Op(
    "classtoken",
    "A learned token put in front of the sequence (ViT's class token, BERT's [CLS]): L x D → (L+1) x D. "
    "D parameters, starting at zero as torchvision's.",
    "tokens",
    shape=_length_shape("classtoken", 1),
    params=lambda a, ins: ins[0][1],
    explain=lambda a, ins, out: [f"params = {ins[0][1]} features = {fmt_int(ins[0][1])} (one learned token)",
                                 f"{ins[0][0]} + 1 = {out[0]} tokens"],
    torch=lambda g: ctor("ClassToken", g.x[1]),
    sym_shape=lambda g: (binop("+", g.x[0], 1), g.x[1]),
    aliases=("cls_token", "class_token"),
    keras="ClassToken",
)


POSEMBED = Op(
    "posembed",
    "A learned position embedding added to the tokens (ViT's pos_embedding): one D vector per position, "
    "L * D parameters, starting normal with std 0.02 as torchvision's.",
    "tokens",
    shape=lambda a, ins: need_tokens("posembed", ins[0]),
    params=lambda a, ins: ins[0][0] * ins[0][1],
    explain=lambda a, ins, out: [f"params = {ins[0][0]} positions * {ins[0][1]} features = "
                                 f"{fmt_int(ins[0][0] * ins[0][1])}"],
    torch=lambda g: ctor("PosEmbed", g.x[1], g.x[0]),
    aliases=("pos_embed", "position_embedding", "pos_embedding"),
    keras="PositionEmbedding",
)


def _attention_shape(a: Args, ins: list[Shape]) -> Shape:
    _, d = need_tokens("attention", ins[0])
    if d % a.heads:
        near = nearest_divisor(d, a.heads)
        raise ShapeError(f"attention splits {d} features into {a.heads} heads: {d} is not divisible by {a.heads}",
                         hint=f"use heads={near} (a divisor of {d})")
    return ins[0]


def _attention_params(a: Args, ins: list[Shape]) -> int:
    d = ins[0][1]
    return 4 * d * d + 4 * d  # query, key, value and output projections, with their biases


def attention_macs(n: int, d: int) -> int:
    """The projections (4 * L * D * D) and the two products over the sequence (scores and the weighted sum:
    2 * L * L * D): FlopCounterMode's count on SDPA's math path, and torchvision's published figure."""
    return 4 * n * d * d + 2 * n * n * d


ATTENTION = Op(
    "attention",
    "Multi-head self-attention over the tokens (nn.MultiheadAttention with batch_first=True, called as "
    "torchvision's ViT calls it: query, key and value the input, need_weights=False). 4D^2 + 4D parameters.",
    "tokens",
    args=(ArgSpec("heads", "int", 8, aliases=("num_heads",), positional=True, low=1,
                  doc="attention heads; must divide the features"),
          ArgSpec("dropout", "float", 0.0, aliases=("attention_dropout",), low=0.0, high=1.0,
                  doc="dropout on the attention weights while training")),
    shape=_attention_shape,
    params=_attention_params,
    macs=lambda a, ins, out: attention_macs(*ins[0]),
    label=lambda a, ins: f"attention {a.heads} heads",
    explain=lambda a, ins, out: [
        f"{a.heads} heads of {ins[0][1] // a.heads} features over {ins[0][0]} tokens",
        f"params = 4 * {ins[0][1]}^2 + 4 * {ins[0][1]} = {fmt_int(_attention_params(a, ins))} "
        "(query, key, value, output projections and biases)",
        f"MACs = 4 * {ins[0][0]} * {ins[0][1]}^2 + 2 * {ins[0][0]}^2 * {ins[0][1]} = "
        f"{fmt_int(attention_macs(*ins[0]))}",
    ],
    torch=lambda g: ctor("SelfAttention", g.x[1], g.heads, dropout=None if g.dropout == 0.0 else g.dropout),
    aliases=("multiheadattention", "mha", "selfattention"),
    foreign=(keras("MultiHeadAttention", "num_heads key_dim", renames=(("key_dim", ""),)),
             pytorch("MultiheadAttention", "embed_dim num_heads dropout", renames=(("embed_dim", ""),))),
)


def _token_shape(a: Args, ins: list[Shape]) -> Shape:
    n, d = need_tokens("token", ins[0])
    if not -n <= a.index < n:
        raise ShapeError(f"token index {a.index} is outside the {n} tokens",
                         hint="index 0 is the class token `classtoken` put in front")
    return (d,)


TOKEN = Op(
    "token",
    "One token of the sequence as a flat vector of D features: `x[:, index]` (ViT's class token, index 0).",
    "shape",
    args=(ArgSpec("index", "int", 0, positional=True, doc="which token: 0 the first, -1 the last"),),
    shape=_token_shape,
    label=lambda a, ins: f"token {a.index}",
    explain=lambda a, ins, out: [f"token {a.index} of {ins[0][0]}: {ins[0][1]} features; params = 0"],
    torch=lambda g: ctor("Token", g.index),
    sym_shape=lambda g: (g.x[1],),
    aliases=("select_token",),
    keras="Token",
)

ENTRIES = (TOKENS, CLASSTOKEN, POSEMBED, ATTENTION, TOKEN)

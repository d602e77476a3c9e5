"""Channel plumbing: split (one of equal channel parts, `x.chunk(n, dim=1)[i]`, ShuffleNet), slice (a range of
channels, `x[:, :c]`: GhostNet, ReXNet, DPN) and channelshuffle (torchvision's `channel_shuffle`). None has
parameters nor MACs."""

from __future__ import annotations

from cnndsl.errors import ShapeError
from cnndsl.ops.base import Args, ArgSpec, Op, Shape, need_image, pytorch
from cnndsl.ops.source import binop
from cnndsl.ops.torchsrc import ctor


def _divisors(c: int) -> str:
    return ", ".join(str(d) for d in range(2, c + 1) if c % d == 0 and d <= 16) or "none"


def _split_shape(a: Args, ins: list[Shape]) -> Shape:
    c = ins[0][0]
    if a.part >= a.parts:
        raise ShapeError(f"split {a.parts} has parts 0 to {a.parts - 1}, not part={a.part}",
                         hint="parts count from 0, as `x.chunk(n, dim=1)[i]` does")
    if c % a.parts:
        raise ShapeError(f"split cannot cut {c} channels into {a.parts} equal parts",
                         hint=f"split into a divisor of {c} ({_divisors(c)}), or change the channels before it")
    return (c // a.parts, *ins[0][1:])


def _split_explain(a: Args, ins: list[Shape], out: Shape) -> list[str]:
    n = out[0]
    return [f"channels {a.part * n}..{(a.part + 1) * n - 1} of {ins[0][0]} (part {a.part} of {a.parts} equal "
            f"parts); params = 0"]


SPLIT = Op(
    "split",
    "One of `parts` equal parts of the channels, `x.chunk(parts, dim=1)[part]` (ShuffleNetV2's "
    "`x1, x2 = x.chunk(2, dim=1)`): `split 2 part=0` is x1, `split 2 part=1` is x2.",
    "shape",
    args=(ArgSpec("parts", "int", 2, positional=True, aliases=("chunks",), low=1,
                  doc="how many equal parts the channels are cut into"),
          ArgSpec("part", "int", aliases=("index",), low=0, doc="which part, counted from 0")),
    shape=_split_shape,
    label=lambda a, ins: f"split {a.part}/{a.parts}",
    explain=_split_explain,
    torch=lambda g: ctor("Split", g.parts, g.part),
    sym_shape=lambda g: (binop("//", g.x[0], g.parts), *g.x[1:]),
    aliases=("chunk",),
    shape_rule="C/parts x H x W (or F/parts)",
    keras="Split",
)


def _slice_shape(a: Args, ins: list[Shape]) -> Shape:
    c = ins[0][0]
    what = "channels" if len(ins[0]) == 3 else "features"
    if a.end > c:
        raise ShapeError(f"slice {a.end} reaches past the {c} {what} of its input",
                         hint=f"`slice` keeps the {what} from `start` up to `end` (at most {c}), as `x[:, start:end]`")
    if a.start >= a.end:
        raise ShapeError(f"slice start={a.start} end={a.end} keeps no {what}",
                         hint="`start` must be below `end`: `slice 8 start=2` keeps channels 2 to 7")
    return (a.end - a.start, *ins[0][1:])


def _slice_explain(a: Args, ins: list[Shape], out: Shape) -> list[str]:
    return [f"channels {a.start}..{a.end - 1} of {ins[0][0]}: {a.end} - {a.start} = {out[0]} kept; params = 0"]


def _slice_label(a: Args, ins: list[Shape]) -> str:
    return f"slice {a.end}" if a.start == 0 else f"slice {a.start}:{a.end}"


SLICE = Op(
    "slice",
    "The channels from `start` up to `end`, `x[:, start:end]`: GhostNet's `out[:, :oup]` is `slice oup`, DPN's "
    "`x[:, :c]` and `x[:, c:]` are `slice c` and `slice in.channels start=c`.",
    "shape",
    args=(ArgSpec("end", "int", positional=True, aliases=("stop",), low=1,
                  doc="one past the last channel kept (Python's slice end)"),
          ArgSpec("start", "int", 0, low=0, doc="the first channel kept, counted from 0")),
    shape=_slice_shape,
    label=_slice_label,
    explain=_slice_explain,
    torch=lambda g: ctor("ChannelSlice", g.start, g.end),
    sym_shape=lambda g: (binop("-", g.end, g.start), *g.x[1:]),
    shape_rule="end-start x H x W (or end-start features)",
    keras="Slice",
)


def _shuffle_shape(a: Args, ins: list[Shape]) -> Shape:
    c, _, _ = need_image("channelshuffle", ins[0])
    if c % a.groups:
        raise ShapeError(f"channelshuffle cannot cut {c} channels into {a.groups} groups",
                         hint=f"use groups among the divisors of {c} ({_divisors(c)})")
    return ins[0]


def _shuffle_explain(a: Args, ins: list[Shape], out: Shape) -> list[str]:
    c, g = ins[0][0], a.groups
    return [f"{c} channels as {g} groups of {c // g}, interleaved: out[c] = in[(c % {g}) * {c // g} + c // {g}]; "
            "params = 0"]


CHANNELSHUFFLE = Op(
    "channelshuffle",
    "Interleaves the channels of `groups` groups (torchvision's channel_shuffle, nn.ChannelShuffle), so that "
    "the next grouped or split layer mixes them. Shape unchanged.",
    "shape",
    args=(ArgSpec("groups", "int", 2, positional=True, low=1, doc="the number of groups interleaved"),),
    shape=_shuffle_shape,
    label=lambda a, ins: f"channelshuffle {a.groups}",
    explain=_shuffle_explain,
    torch=lambda g: ctor("ChannelShuffle", g.groups),
    foreign=(pytorch("ChannelShuffle", "groups"),),
    keras="ChannelShuffle",
)

ENTRIES = (SPLIT, SLICE, CHANNELSHUFFLE)

"""Helpers that every generated file carries, so that it needs nothing but torch.

Each helper is a piece of source text; the generator includes the ones a network uses, in this order.
"""

from __future__ import annotations

import re

from cnndsl.ops.source import MODULE_ATTRIBUTES


def imports(body: str, plugin_classes: dict[str, str] | None = None) -> str:
    """The import lines the generated body needs, sorted as isort would: the standard library, torch, then the
    enabled plugins' module classes the body constructs (`plugin_classes`: class name → dotted path)."""
    lines = ["import math"] if re.search(r"\bmath\.", body) else []
    if re.search(r"\bOrderedDict\(", body):
        lines.append("from collections import OrderedDict")
    lines += [""] if lines else []
    lines.append("import torch")
    if re.search(r"\bF\.", body):
        lines.append("import torch.nn.functional as F")
    lines.append("from torch import nn")
    lines += plugin_imports(body, plugin_classes or {})
    return "\n".join(lines) + "\n"


def plugin_imports(body: str, plugin_classes: dict[str, str]) -> list[str]:
    """`from cnndsl_cbam.layers import CBAM` for each plugin class the body constructs, after a blank line."""
    used = sorted(path for name, path in plugin_classes.items() if re.search(rf"\b{name}\(", body))
    lines = [f"from {path.rpartition('.')[0]} import {path.rpartition('.')[2]}" for path in used]
    return ["", *lines] if lines else []

HELPERS: dict[str, str] = {
    "conv_out": '''
def conv_out(n: int, k: int, s: int = 1, pad: int = 0, d: int = 1, ceil: bool = False) -> int:
    """Output size along one axis; `pad` is the total padding (PyTorch's rule, ceil mode included)."""
    span = n + pad - d * (k - 1) - 1
    if not ceil:
        return span // s + 1
    out = -(-span // s) + 1
    return out - 1 if (out - 1) * s >= n + pad // 2 else out
''',
    "pads_of": '''
def pads_of(padding, axis: int, n: int, k: int, s: int = 1, d: int = 1) -> tuple[int, int]:
    """(before, after) along one axis for a padding given as `same`, `valid`, a number or a pair."""
    if isinstance(padding, tuple):
        padding = padding[axis]
    if padding == "same":
        return same_pads(n, k, s, d)
    return (0, 0) if padding == "valid" else (padding, padding)
''',
    "whole": '''
def whole(v):
    """2 for 2.0: a whole float given where a block may need an int (`filters / 2`)."""
    return int(v) if isinstance(v, float) and v.is_integer() else v
''',
    "pair": '''
def pair(v) -> tuple[int, int]:
    """(h, w) of a size given as an int or a pair."""
    return v if isinstance(v, tuple) else (v, v)
''',
    "same_pads": '''
def same_pads(n: int, k: int, s: int = 1, d: int = 1) -> tuple[int, int]:
    """Keras' `same` padding along one axis: output ceil(n / s), any extra padding after."""
    total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
    return total // 2, total - total // 2
''',
    "Reshape": '''
class Reshape(nn.Module):
    def __init__(self, *shape: int) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)
''',
    "Conv2dSame": '''
class Conv2dSame(nn.Conv2d):
    """A convolution with Keras' asymmetric `same` padding (left, right, top, bottom)."""

    def __init__(self, *args, pads: tuple[int, int, int, int], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pads = pads

    def forward(self, x):
        return super().forward(F.pad(x, self.pads))
''',
    "tconv_pads": '''
def tconv_pads(padding, output_padding: int, k: int, s: int = 1, d: int = 1) -> tuple[int, int, int]:
    """(padding, output_padding, rows trimmed first) of a transposed conv along one axis: a number is
    PyTorch's padding; `valid` and `same` are Keras' (same: output = input * stride), as Keras 3 maps them."""
    if padding not in ("same", "valid"):
        return padding, output_padding, 0
    if output_padding:
        raise ValueError(f"output_padding goes with a numeric padding, not padding={padding}")
    ek = d * (k - 1) + 1
    if padding == "valid":
        return 0, max(ek, s) - ek, 0
    extra = s - ek % 2
    p = max(-((ek % 2 - ek + extra) // 2), 0)
    op = 2 * p + ek % 2 - ek + extra
    return (p, op, 0) if op < max(s, d) else (p - 1, 0, 1)
''',
    "tconv_out": '''
def tconv_out(n: int, padding, output_padding: int, k: int, s: int = 1, d: int = 1, axis: int = 0) -> int:
    """Output size of a transposed conv along one axis: (n-1)*s - 2p + d*(k-1) + output_padding + 1."""
    p, op, trim = tconv_pads(padding[axis] if isinstance(padding, tuple) else padding, output_padding, k, s, d)
    return (n - 1) * s - 2 * p + d * (k - 1) + op + 1 - trim
''',
    "ConvTranspose2dSame": '''
class ConvTranspose2dSame(nn.ConvTranspose2d):
    """A transposed convolution whose padding may be Keras' `same` (output = input * stride) or `valid`.

    PyTorch's padding and output_padding come from `tconv_pads`; where output_padding would have to reach
    the stride (stride 1, an even kernel), the padding is one less and the first row or column is trimmed.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1) -> None:
        k, s, d, op = pair(kernel_size), pair(stride), pair(dilation), pair(output_padding)
        axes = [tconv_pads(padding[i] if isinstance(padding, tuple) else padding, op[i], k[i], s[i], d[i])
                for i in (0, 1)]
        super().__init__(in_channels, out_channels, k, s, (axes[0][0], axes[1][0]), (axes[0][1], axes[1][1]),
                         groups, bias, d)
        self.trim = (axes[0][2], axes[1][2])

    def forward(self, x):
        return super().forward(x)[:, :, self.trim[0]:, self.trim[1]:]
''',
    "SeparableConv2d": '''
class SeparableConv2d(nn.Module):
    """A depthwise conv without bias, then a 1x1 conv (Keras SeparableConv2D)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 multiplier: int = 1, bias: bool = True, pads: tuple[int, int, int, int] | None = None) -> None:
        super().__init__()
        mid = in_channels * multiplier
        if pads is None:
            self.depthwise = nn.Conv2d(in_channels, mid, kernel_size, stride, padding, dilation,
                                       groups=in_channels, bias=False)
        else:
            self.depthwise = Conv2dSame(in_channels, mid, kernel_size, stride, 0, dilation, groups=in_channels,
                                        bias=False, pads=pads)
        self.pointwise = nn.Conv2d(mid, out_channels, 1, bias=bias)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))
''',
    "PoolSame": '''
class PoolSame(nn.Module):
    """A pool padded by hand: Keras' asymmetric `same`, or a padding known only when the module is made.
    Max pools never see the padding; averages count it as count_include_pad says (Keras' `same`: never)."""

    def __init__(self, op: str, kernel, stride, pads: tuple[int, int, int, int], ceil_mode: bool = False,
                 count_include_pad: bool = False) -> None:
        super().__init__()
        self.op, self.kernel, self.stride, self.pads = op, kernel, stride, pads
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, x):
        if self.op == "max":
            y = F.max_pool2d(F.pad(x, self.pads, value=float("-inf")), self.kernel, self.stride,
                             ceil_mode=self.ceil_mode)
        else:
            total = F.avg_pool2d(F.pad(x, self.pads), self.kernel, self.stride, ceil_mode=self.ceil_mode,
                                 divisor_override=1)
            ones = F.pad(torch.ones_like(x[:1, :1]), self.pads, value=float(self.count_include_pad))
            y = total / F.avg_pool2d(ones, self.kernel, self.stride, ceil_mode=self.ceil_mode, divisor_override=1)
        if self.ceil_mode:  # PyTorch's rule: the last window starts inside the input or its left padding
            y = y[..., :self._ceil_size(x.shape[2], 0), :self._ceil_size(x.shape[3], 1)]
        return y

    def _ceil_size(self, n: int, axis: int) -> int:
        k = self.kernel if isinstance(self.kernel, int) else self.kernel[axis]
        s = self.stride if isinstance(self.stride, int) else self.stride[axis]
        before, after = self.pads[2 - 2 * axis:4 - 2 * axis]
        out = -(-(n + before + after - k) // s) + 1
        return out - 1 if (out - 1) * s >= n + before else out
''',
    "LayerNorm2d": '''
class LayerNorm2d(nn.LayerNorm):
    """nn.LayerNorm over the channels at every position of (N, C, H, W): ConvNeXt's, as torchvision writes it."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)
''',
    "Tokens": '''
class Tokens(nn.Module):
    """(N, C, H, W) as (N, H*W, C): H*W tokens of C features, row by row, as torchvision's ViT."""

    def forward(self, x):
        return x.flatten(2).transpose(1, 2)
''',
    "ClassToken": '''
class ClassToken(nn.Module):
    """A learned token in front of the sequence (ViT's class token), starting at zero."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.token = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x):
        return torch.cat([self.token.expand(x.shape[0], -1, -1), x], dim=1)
''',
    "PosEmbed": '''
class PosEmbed(nn.Module):
    """A learned position embedding added to (N, L, D) tokens, starting normal with std 0.02 (torchvision's)."""

    def __init__(self, dim: int, length: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(1, length, dim).normal_(std=0.02))

    def forward(self, x):
        return x + self.weight
''',
    "SelfAttention": '''
class SelfAttention(nn.MultiheadAttention):
    """Self-attention over (N, L, D) tokens, called as torchvision's ViT calls it (need_weights=False)."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__(dim, heads, dropout=dropout, batch_first=True)

    def forward(self, x):
        return super().forward(x, x, x, need_weights=False)[0]
''',
    "Token": '''
class Token(nn.Module):
    """One token of (N, L, D) as (N, D): x[:, index] (ViT's class token, index 0)."""

    def __init__(self, index: int = 0) -> None:
        super().__init__()
        self.index = index

    def forward(self, x):
        return x[:, self.index]
''',
    "Linear2d": '''
class Linear2d(nn.Linear):
    """nn.Linear over the channels at every position of (N, C, H, W): ConvNeXt's, as torchvision's CNBlock
    permutes around it."""

    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
''',
    "Scale": '''
class Scale(nn.Module):
    """Multiplies by a constant (Inception-ResNet's `0.17 * branch`)."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor
''',
    "LayerScale": '''
class LayerScale(nn.Module):
    """A learned scale per channel, `gamma * x`, gamma starting at `init` (ConvNeXt's layer scale)."""

    def __init__(self, channels: int, init: float = 1e-6, image: bool = False) -> None:
        super().__init__()
        shape = (channels, 1, 1) if image else (channels,)
        self.gamma = nn.Parameter(torch.full(shape, float(init)))

    def forward(self, x):
        return self.gamma * x
''',
    "DropPath": '''
class DropPath(nn.Module):
    """Stochastic depth, torchvision's "row" mode: while training, each sample is zeroed with
    probability p and the others scaled by 1 / (1 - p); the identity in eval."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        noise = torch.empty([x.shape[0]] + [1] * (x.dim() - 1), dtype=x.dtype, device=x.device)
        return x * noise.bernoulli_(survival).div_(survival)
''',
    "Split": '''
class Split(nn.Module):
    """One of `parts` equal parts of the channels: x.chunk(parts, dim=1)[part]."""

    def __init__(self, parts: int, part: int) -> None:
        super().__init__()
        self.parts, self.part = parts, part

    def forward(self, x):
        return x.chunk(self.parts, dim=1)[self.part]
''',
    "ChannelSlice": '''
class ChannelSlice(nn.Module):
    """The channels from `start` up to `end`: x[:, start:end] (GhostNet's `out[:, :oup]`)."""

    def __init__(self, start: int, end: int) -> None:
        super().__init__()
        self.start, self.end = start, end

    def forward(self, x):
        return x[:, self.start:self.end]
''',
    "ChannelShuffle": '''
class ChannelShuffle(nn.Module):
    """Interleaves the channels of `groups` groups, as torchvision's channel_shuffle (ShuffleNet)."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x):
        n, c, h, w = x.shape
        x = x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2)
        return x.reshape(n, c, h, w)
''',
    "frozen": '''
def frozen(module: nn.Module) -> nn.Module:
    """Marks a module's parameters as not trainable (a `frozen` statement of the spec)."""
    for p in module.parameters():
        p.requires_grad_(False)
    return module
''',
}


def _activations() -> str:
    """`make_activation(name)`: the layer an `activation=` names when a constructor argument gives it.

    Written from the registry, so it knows every activation and alias, each at its default arguments.
    """
    from cnndsl.ops import CodeArgs
    from cnndsl.ops.activation import ENTRIES

    rows = [f'        "{name}": ("{op.name}", lambda: {op.torch(CodeArgs(op.defaults(), [()]))}),'
            for op in ENTRIES for name in (op.name, *op.aliases)]
    return ("\ndef make_activation(name: str, counts: dict[str, int] | None = None) -> tuple[str, nn.Module]:\n"
            '    """(kind, module) of the activation `name`; with `counts` (how many of each kind the module\n'
            '    has), (its child\'s name, module): relu1, relu2..., relu6_1, as `cnndsl check` names layers."""\n'
            "    table = {\n" + "\n".join(rows) + "\n    }\n"
            "    if name not in table:\n"
            '        raise ValueError(f"{name!r} is not an activation; one of: {\', \'.join(table)}")\n'
            "    kind, make = table[name]\n"
            "    if counts is None:\n        return kind, make()\n"
            "    counts[kind] = n = counts.get(kind, 0) + 1\n"
            '    return (f"{kind}_{n}" if kind[-1].isdigit() else f"{kind}{n}"), make()\n')


HELPERS["make_activation"] = _activations()

_DIGITS = tuple(a for a in MODULE_ATTRIBUTES if a[-1].isdigit())  # a counter could make these names

HELPERS["child_name"] = f'''
def child_name(names: set[str], counts: dict[str, int], base: str, label: bool = False) -> str:
    """The next child's name, as `cnndsl check` names layers: a kind counts on (conv1, conv2...; block35_1
    after a digit), a label is itself, then label_2, label_3...; a name given already is passed over."""
    n = 0 if label else counts.get(base, 0)
    while True:
        n += 1
        if label:
            name = base if n == 1 else f"{{base}}_{{n}}"
        elif base[-1].isdigit() or base.endswith("_") or f"{{base}}{{n}}" in {_DIGITS!r}:
            name = f"{{base}}_{{n}}"
        else:
            name = f"{{base}}{{n}}"
        if name not in names:
            break
    if not label:
        counts[base] = n
    names.add(name)
    return name
'''

# Helpers that others need.
REQUIRES = {"pads_of": ("same_pads",), "SeparableConv2d": ("Conv2dSame",),
            "tconv_out": ("tconv_pads",), "ConvTranspose2dSame": ("tconv_pads", "pair")}


def used(sources: list[str]) -> set[str]:
    """The helpers that generated classes call."""
    text = "\n".join(sources)
    return {name for name in HELPERS if re.search(rf"\b{name}\b", text)}


def helpers_source(names: set[str]) -> str:
    """The helpers `names` need, with what they need, in a fixed order (same spec, same bytes)."""
    wanted = set(names)
    for name in list(wanted):
        wanted.update(REQUIRES.get(name, ()))
    return "".join("\n" + HELPERS[name] for name in HELPERS if name in wanted)

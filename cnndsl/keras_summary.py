"""The report as Keras 3's `model.summary()` prints it (`cnndsl check --keras`): what the tutorials' readers know.

Keras shows one row per Keras layer, named as a fresh Keras session names them (conv2d, conv2d_1...), with
channels-last output shapes `(None, H, W, C)`, each layer's weights counted whether trainable or not, and
totals where batchnorm's moving statistics and frozen layers' weights are non-trainable params. A layer's
`activation=` is part of that layer, as Keras' `activation` argument is. A network with a merge is shown as
a functional model: an InputLayer row, a "Connected to" column, and the rows in Keras' order (deepest from
the output first). The table is drawn by rich exactly as Keras draws it (keras/src/utils/summary_utils.py),
so the two can be compared character for character; rich is imported only when a table is drawn.

Part of the core: reads the analysis and the registry's `keras` names; never imports torch or keras.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

from cnndsl.analysis import Analysis
from cnndsl.graph import Layer, unused_layers
from cnndsl.ops import REGISTRY
from cnndsl.syntax.printer import KEYWORDS

BYTES = 4  # float32, as Keras' memory figures count them


@dataclass
class KerasRow:
    """One row of Keras' table: a Keras layer and the cnndsl layer it stands for."""

    name: str  # conv2d_1
    type: str  # Conv2D
    shape: tuple  # (None, 28, 28, 32)
    params: int  # every weight of the layer, trainable or not (Keras' count_params)
    trainable: int
    inputs: list[str]  # the rows it reads, by name (the "Connected to" column of a functional model)
    layer: str  # the cnndsl layer's id


@dataclass
class KerasSummary:
    """The rows and totals of `model.summary()` for the Keras model equivalent to a spec."""

    name: str
    rows: list[KerasRow]
    functional: bool  # a graph with a merge: Keras' functional layout (input row, "Connected to")

    @property
    def trainable(self) -> int:
        return sum(r.trainable for r in self.rows)

    @property
    def total(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def non_trainable(self) -> int:
        return self.total - self.trainable


def snake_case(name: str) -> str:
    """Keras' `to_snake_case`, which names a layer after its class: Conv2D → conv2d, ReLU → re_lu."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def channels_last(shape: tuple[int, ...]) -> tuple:
    """(C, H, W) → (None, H, W, C); a flat (F,) → (None, F); L x D tokens, already Keras' order → (None, L, D)."""
    return (None, *shape[1:], shape[0]) if len(shape) == 3 else (None, *shape)


def summarise(a: Analysis) -> KerasSummary:
    """The Keras rows of an analysis: its layers that reach the output, each fused activation in its layer's row."""
    graph = a.graph
    functional = any(len(layer.inputs) > 1 for layer in graph.layers)
    unused = {layer.id for layer in unused_layers(graph)}
    counters: dict[str, int] = {}
    row_of: dict[str, KerasRow] = {}  # a cnndsl layer id → the row that shows it
    rows = []
    for layer in graph.layers:
        if layer.id in unused:
            continue
        if layer.fused:  # Keras' `activation=`: the same row as the layer it follows
            row_of[layer.id] = row_of[layer.inputs[0]]
            continue
        row = _row(layer, a, _name(REGISTRY[layer.op].keras_class, counters), [row_of[i].name for i in layer.inputs])
        row_of[layer.id] = row
        if layer.op != "input" or functional:  # a Sequential model lists no InputLayer
            rows.append(row)
    return KerasSummary(graph.name, _keras_order(rows) if functional else rows, functional)


def _name(keras_class: str, counters: dict[str, int]) -> str:
    """conv2d, conv2d_1, conv2d_2...: Keras' names for the layers of a class, in the order they are made."""
    base = snake_case(keras_class)
    n = counters.get(base, 0)
    counters[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


def _row(layer: Layer, a: Analysis, name: str, inputs: list[str]) -> KerasRow:
    figures = a.by_id[layer.id]
    weights = figures.params + figures.buffers  # batchnorm's moving statistics are weights to Keras
    trainable = 0 if layer.frozen else figures.params
    keras_class = REGISTRY[layer.op].keras_class
    return KerasRow(name, keras_class, channels_last(layer.shape), weights, trainable, inputs, layer.id)


def _keras_order(rows: list[KerasRow]) -> list[KerasRow]:
    """A functional model's layers as Keras lists them (keras/src/ops/function.py, `_build_graph`): by depth,
    the longest path to the output, deepest first; layers of one depth in the order a depth-first walk back
    from the output first reaches them (each layer's inputs in order)."""
    by_name = {r.name: r for r in rows}
    first_seen: dict[str, int] = {}
    finished: list[str] = []  # inputs before the layers that read them
    stack = [(rows[-1].name, False)]
    while stack:  # iteratively: a network may be thousands of layers deep
        name, done = stack.pop()
        if done:
            finished.append(name)
            continue
        if name in first_seen:
            continue
        first_seen[name] = len(first_seen)
        stack.append((name, True))
        stack += [(i, False) for i in reversed(by_name[name].inputs) if i not in first_seen]
    depth = dict.fromkeys(finished, 0)
    for name in reversed(finished):
        for i in by_name[name].inputs:
            depth[i] = max(depth[i], depth[name] + 1)
    return sorted((by_name[n] for n in finished), key=lambda r: (-depth[r.name], first_seen[r.name]))


# ---- the table, drawn as Keras draws it -------------------------------------------------------------------------


def _number(x) -> str:
    """Keras' highlight_number: its colours for numbers (and for None in a shape)."""
    return f"[color(45)]{x}[/]" if x is None else f"[color(34)]{x}[/]"


def _shape_text(shape: tuple) -> str:
    return f"({', '.join(_number(x) for x in shape)})"


def _memory(count: int) -> str:
    """Keras' readable_memory_size: float32 bytes in units of 1024, written B, KB, MB..."""
    size = float(count * BYTES)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size / 1024 < 1:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} PB"


def line_length(functional: bool, given: int | None = None) -> int:
    """Keras' width: 88 columns (108 for a functional model), less where the terminal is narrower."""
    import shutil

    if given:
        return given
    return min(108 if functional else 88, shutil.get_terminal_size().columns - 4)


def renderable(s: KerasSummary, width: int | None = None):
    """The title, table and totals as one rich renderable, built as Keras' print_summary builds them."""
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Column, Table
    from rich.text import Text

    width = line_length(s.functional, width)
    positions = [0.3, 0.56, 0.74, 1.0] if s.functional else [0.45, 0.80, 1.0]
    header = ["Layer (type)", "Output Shape", "Param #"] + ["Connected to"] * s.functional
    widths = [int(p * width) - int(q * width) for p, q in zip(positions, [0.0, *positions[:-1]])]
    if min(widths) < 4:
        raise ValueError("Insufficient console width to print summary.")
    justify = ["left", "left", "right", "left"]
    table = Table(*(Column(h, justify=justify[i], width=widths[i]) for i, h in enumerate(header)),
                  width=width, show_lines=True)
    for r in s.rows:
        cells = [f"{escape(r.name)} ([color(33)]{escape(r.type)}[/])", _shape_text(r.shape), _number(f"{r.params:,}")]
        if s.functional:
            cells.append(", ".join(f"{i}[{_number(0)}][{_number(0)}]" for i in r.inputs) or "-")
        table.add_row(*cells)
    lines = [Text.from_markup(f'[bold]Model: "{escape(s.name)}"[/]'), table]
    for label, count in (("Total", s.total), ("Trainable", s.trainable), ("Non-trainable", s.non_trainable)):
        lines.append(Text.from_markup(f"[bold] {label} params: [/]{_number(f'{count:,}')} ({_memory(count)})"))
    return Group(*lines)


def text(s: KerasSummary, width: int | None = None) -> str:
    """What Keras prints (its print_fn receives the same), without colour."""
    from rich.console import Console

    console = Console(highlight=False, force_terminal=False, color_system=None)
    with console.capture() as captured:
        console.print(renderable(s, width))
    return captured.get()


def spec_name(name: str) -> str:
    """A Keras layer name as a spec name: snake_case, letters, digits and `_`, not a keyword."""
    text = re.sub(r"\W", "_", snake_case(name) if not re.fullmatch(r"[a-z0-9_]+", name) else name, flags=re.ASCII)
    if not text or text[0].isdigit():
        text = f"layer_{text}"
    return text + "_" if text in KEYWORDS or keyword.iskeyword(text) else text

"""How much a spec may ask of the tool. Each limit turns a hostile or mistaken input into a located
error within seconds, instead of hours of work, gigabytes of memory or a Python RecursionError.

The first two can be raised (`--max-spec-size`, `--max-layers`; `Limits(...)` in Python); the nesting
limits are fixed, because they keep the compiler's own recursion and the generated Python well inside
what CPython allows (it refuses more than 20 nested loops).
"""

from __future__ import annotations

from dataclasses import dataclass

from cnndsl.errors import UsageError

SPEC_BYTES = 512 << 10  # a spec and the files it uses; the largest reference spec is 1.2 KB, and 512 KiB of
# convolutions (12,000 lines) take about 3 s to check here
LAYERS = 50_000  # layers, and repeat iterations, one network may expand to; statements in a file. About
# 5 s of `check` on a 2-core machine at this size; real networks have hundreds to a few thousand.
WORK = 3  # statements run, block calls and repeat iterations per layer allowed: real networks run 0.6-1.8
# statements a layer, and block calls that expand to nothing must not run for minutes (4**10 empty calls did)
NESTING = 16  # levels of `{ }` in one file, the definition's own braces included
DEPTH = 64  # levels of braces and block calls along one path through the program
RECURSION = 24  # levels of block calls where a block calls itself (a tree): DLA's deepest tree is 4; 24 levels of a
# body nested as deep as NESTING allows stay inside Python's recursion limit
EXPRESSION = 64  # levels of operators in one expression
NUMBER = 2**62  # larger numbers are a mistake, and would make Python's big ints slow


MAX_SPEC_BYTES = 64 << 20  # what --max-spec-size may raise the size limit to: 128 times the default, and
# reading, decoding and lexing that much stays within seconds and a few hundred megabytes


@dataclass(frozen=True)
class Limits:
    spec_bytes: int = SPEC_BYTES
    layers: int = LAYERS

    def __post_init__(self) -> None:
        if not 1 <= self.spec_bytes <= MAX_SPEC_BYTES:
            raise UsageError(f"the spec size limit is at most {MAX_SPEC_BYTES >> 20} MiB, got {self.spec_bytes:,} "
                             "bytes", hint="a spec that large is not a network description; split it into files")


def parse_size(text: str, what: str = "a size") -> int:
    """`1M`, `512K`, `64G`, `1.5T` or a number of bytes (binary units; an optional `B` or `iB`)."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = _UNITS.get(t[-1:], 1) if t else 1
    try:
        value = float(t[:-1] if scale > 1 else t) * scale
    except ValueError:
        value = -1
    if not 1 <= value < 1 << 60:  # nan and inf too
        raise UsageError(f"{what}: expected a size such as 1M, 512K or 4096, got `{text}`")
    return int(value)


_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}

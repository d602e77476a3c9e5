"""The language server's keystroke on ResNet-152, in-process: a change applied to the document, the new version
analysed (parse with recovery, elaborate, analyse) and its diagnostics made as LSP data. Target: under 100 ms.

    .venv/bin/python bench/lsp_speed.py [--keys N]

The keystrokes type a comment at the end of a line, then a misspelt argument (`kernal`, an error) and remove
it again, one character at a time. The peer is the same keystroke without the server's cache of used files'
parses (the standard library's resnet.cnn parsed again at each key, as a fresh `cnndsl check` does). Also shown:
the hover and inlay hints of the version just analysed, which read the cached analysis.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from lsprotocol import types as t
from pygls.workspace import TextDocument

from cnndsl.lsp import features
from cnndsl.lsp.document import analyse, with_last_figures
from cnndsl.syntax import loader

SPEC = Path(__file__).resolve().parent.parent / "specs" / "resnet152.cnn"


def keystrokes(text: str, n: int) -> list[t.TextDocumentContentChangePartial]:
    """n one-character edits: typing `  # head` after the last layer's line, then ` kernal=3` on a conv line and
    deleting it again."""
    lines = text.split("\n")
    row = next(i for i, line in enumerate(lines) if line.strip() == "dense classes")
    edits, col = [], len(lines[row])
    typed = "  # head of the network, one class a unit" * 4
    for ch in typed[:n // 2]:
        edits.append(t.TextDocumentContentChangePartial(t.Range(t.Position(row, col), t.Position(row, col)), ch))
        col += 1
    stage = next(i for i, line in enumerate(lines) if "bottleneck_stage 256" in line)
    col = len(lines[stage])
    word = " kernal=3"
    for ch in word:
        edits.append(t.TextDocumentContentChangePartial(t.Range(t.Position(stage, col), t.Position(stage, col)), ch))
        col += 1
    while len(edits) < n:
        edits.append(t.TextDocumentContentChangePartial(t.Range(t.Position(stage, col - 1), t.Position(stage, col)),
                                                        ""))
        col -= 1
    return edits[:n]


def run(keys: int, cached: bool) -> tuple[list[float], list[float], int]:
    doc = TextDocument(SPEC.resolve().as_uri(), SPEC.read_text(), version=0)
    good = analyse(doc.source, doc.path, 0)  # the process's first analysis (the grammar's tables...) is not a key
    took, answers, errors = [], [], 0
    for version, change in enumerate(keystrokes(doc.source, keys), 1):
        if not cached:
            loader._parse_whole.cache_clear()
        start = time.perf_counter()
        doc.apply_change(change)
        done = analyse(doc.source, doc.path, version)
        if done.reports and not done.diagnosis.errors:
            good = done
        done = with_last_figures(done, good)  # as the server does: a version with an error keeps the last figures
        found = features.diagnostics(done)
        took.append(time.perf_counter() - start)
        errors = max(errors, sum(len(v) for v in found.values()))
        start = time.perf_counter()
        features.hover(done, 9, 10)
        features.inlay_hints(done, 1, len(done.lines))
        answers.append(time.perf_counter() - start)
    return took, answers, errors


def ms(xs: list[float]) -> str:
    xs = sorted(xs)
    return f"median {1000 * statistics.median(xs):6.1f} ms   p90 {1000 * xs[int(0.9 * (len(xs) - 1))]:6.1f} ms" \
           f"   max {1000 * xs[-1]:6.1f} ms"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--keys", type=int, default=40)
    args = p.parse_args()
    took, answers, errors = run(args.keys, cached=True)
    peer, _, _ = run(args.keys, cached=False)
    print(f"ResNet-152, {args.keys} keystrokes (at most {errors} diagnostics a version)")
    print(f"  keystroke → diagnostics:                {ms(took)}")
    ratio = statistics.median(peer) / statistics.median(took)
    print(f"  the same, used files parsed again (peer): {ms(peer)}   ratio {ratio:.2f}x")
    print(f"  hover + inlay hints from the cache:     {ms(answers)}")


if __name__ == "__main__":
    main()

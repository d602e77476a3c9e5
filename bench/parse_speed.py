"""The parse's own cost, each way of parsing in fresh processes: import, set-up and parse of ResNet-152 (its spec
and the two standard-library files it uses) and of 10,000 generated layers.

    .venv/bin/python bench/parse_speed.py [--runs N] [--old REV]

1. `old`: the parser of commit REV (default 05dca84: the hand-written LALR loop over committed tables), from a
   copy of that commit's tree.
2. `cached`: this tree's parser (Lark's interactive parser driven token by token, with recovery, the grammar's
   analysis read from the user's cache).
3. `lark.parse`: the same Lark object and AST builder through Lark's own `parse` (no recovery): what driving the
   parser token by token costs.
4. `standalone`: Lark's standalone generator's module for the same grammar (MPL-2.0 code), with the same builder.

Times are the fastest of N runs (the machine is shared); each line is import + set-up (a first parse of a
one-line spec included: each way makes its tables at the first parse), then the parse.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}

# each program prints "setup_seconds parse_seconds" for the files given as arguments
COMMON = """
import sys, time
t0 = time.perf_counter()
{setup}
t1 = time.perf_counter()
texts = [(p, open(p).read()) for p in sys.argv[1:]]
t2 = time.perf_counter()
for name, text in texts:
    {parse}
t3 = time.perf_counter()
print(f"{{t1 - t0:.4f}} {{t3 - t2:.4f}}")
"""

WAYS = {
    "old": ("from cnndsl.syntax.parser import parse; parse('network n {{ input 3x8x8 }}')", "parse(text, name)"),
    "cached": ("from cnndsl.syntax.parser import parse; parse('network n {{ input 3x8x8 }}')", "parse(text, name)"),
    "lark.parse": ("from cnndsl.syntax import parser\nfrom cnndsl.errors import Source\nlark = parser._lark()",
                   "tok = parser._BUILDER.set(parser._ToAst(Source(name, text)))\n"
                   "    lark.parse(text if text.endswith(chr(10)) else text + chr(10))\n"
                   "    parser._BUILDER.reset(tok)"),
    "standalone": ("sys.path.insert(0, {folder!r})\nimport cnn_standalone\nfrom cnndsl.syntax import parser\n"
                   "from cnndsl.errors import Source\n"
                   "lark = cnn_standalone.Lark_StandAlone(transformer=parser._Reductions())",
                   "tok = parser._BUILDER.set(parser._ToAst(Source(name, text)))\n"
                   "    lark.parse(text if text.endswith(chr(10)) else text + chr(10))\n"
                   "    parser._BUILDER.reset(tok)"),
}


def fastest(code: str, files: list[str], cwd: Path, runs: int, python_path: str | None = None) -> tuple[float, float]:
    env = dict(ENV, PYTHONPATH=python_path) if python_path else ENV
    subprocess.run([sys.executable, "-c", code, *files], cwd=cwd, env=env, capture_output=True)  # caches
    best = None
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", code, *files], cwd=cwd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(done.stderr)
        setup, parse = map(float, done.stdout.split())
        best = (setup, parse) if best is None else (min(best[0], setup), min(best[1], parse))
    return best


def generated(folder: Path) -> str:
    kinds = ["conv 16 kernel=3 padding=same bias=false", "batchnorm", "relu"]
    lines = ["network generated {", "    input 16x32x32", *("    " + kinds[i % 3] for i in range(10_000)), "}"]
    path = folder / "generated10000.cnn"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--old", default="05dca84", help="the commit whose parser is `old`")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        old = tmp / "old"
        old.mkdir()
        archive = subprocess.run(["git", "archive", args.old], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        subprocess.run([sys.executable, "-m", "lark.tools.standalone", "-l", "basic", "--maybe_placeholders",
                        str(ROOT / "grammars/cnn.lark"), "-o", str(tmp / "cnn_standalone.py")], check=True)
        resnet = [str(ROOT / p) for p in ("specs/resnet152.cnn", "cnndsl/std/resnet.cnn", "cnndsl/std/se.cnn")]
        cases = {"ResNet-152 (3 files)": resnet, "10,000 layers": [generated(tmp)]}
        print(f"{'':24} {'way':12} {'import + set-up':>16} {'parse':>8} {'total':>8}")
        for case, files in cases.items():
            for way, (setup, parse) in WAYS.items():
                code = COMMON.format(setup=setup.format(folder=str(tmp)), parse=parse)
                where = old if way == "old" else ROOT
                setup_s, parse_s = fastest(code, files, where, args.runs, str(old) if way == "old" else None)
                print(f"{case:24} {way:12} {setup_s * 1e3:13.1f} ms {parse_s * 1e3:5.0f} ms "
                      f"{(setup_s + parse_s) * 1e3:5.0f} ms")


if __name__ == "__main__":
    main()

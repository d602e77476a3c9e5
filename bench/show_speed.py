"""How long `cnndsl show` takes on a tutorial run, as whole processes, against the imports it cannot avoid.

    .venv/bin/python bench/show_speed.py [--runs N] [--run DIR] [--old REV]

The peer is `python -c "import torch, matplotlib"`: every `show` needs both, so what a show costs beyond them
is what cnndsl adds (its own imports, reading the run, the data, the drawing). Each round runs the peer, then
`show filters`, `show maps --index 0` and `show cam --index 0`, one after the other (and with `--old REV` the
same three from commit REV's tree, so that before and after are measured in the same minutes); every figure
is the fastest of N rounds, in wall time and in CPU time (user + system, the steadier figure on a shared machine:
waiting for a core does not count in it). The target: each show at most 0.5 s beyond the peer.

Without `--run` a tutorial run is trained first (examples/fashion_cnn_honkong.cnn for one epoch: what show
costs does not depend on how long the run trained). cnndsl runs as `python -m cnndsl.cli` in the tree
measured, so a checkout is measured, not whatever `cnndsl` the environment has installed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEER = [sys.executable, "-c", "import torch, matplotlib"]
SHOWS = {"filters": ["filters"], "maps": ["maps", "--index", "0"], "cam": ["cam", "--index", "0"]}
TARGET = 0.5  # seconds beyond the peer
# as a user's Python runs: with bytecode caches
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of a whole process. On a machine shared with other work the
    CPU time is the steadier of the two: waiting for a core does not count in it."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    took = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{err.decode(errors='replace')}")
    return took, usage.ru_utime + usage.ru_stime


def tutorial_run(folder: Path) -> Path:
    out = folder / "run"
    cmd = [sys.executable, "-m", "cnndsl.cli", "train", "examples/fashion_cnn_honkong.cnn", "--epochs", "1",
           "--out", str(out)]
    subprocess.run(cmd, capture_output=True, cwd=ROOT, env=ENV, check=True)
    return out


def old_tree(rev: str, folder: Path) -> Path:
    """Commit `rev`'s files (git archive) in `folder`/old: `python -m cnndsl.cli` run there imports them."""
    tree = folder / "old"
    tree.mkdir()
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def measure(run: Path, trees: dict[str, Path], runs: int, scratch: Path) -> dict[str, list[tuple[float, float]]]:
    """{"peer": [(wall, cpu), ...], "TREE filters": [...], ...}: each round the peer, then each tree's shows."""
    times: dict[str, list[tuple[float, float]]] = {}
    for round_ in range(runs + 1):  # round 0 writes the bytecode caches and warms the disk: not counted
        took = {"peer": timed(PEER, ROOT)}
        for tree, where in trees.items():
            for what, argv in SHOWS.items():
                out = scratch / f"{tree}-{what}-{round_}"
                out.mkdir()
                took[f"{tree} {what}"] = timed([sys.executable, "-m", "cnndsl.cli", "show", *argv, str(run),
                                                "--out", str(out)], where)
        if round_:
            for key, value in took.items():
                times.setdefault(key, []).append(value)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--run", type=Path, help="a run folder to draw (default: train a tutorial run first)")
    parser.add_argument("--old", metavar="REV", help="also measure the shows of commit REV's tree, in turns")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        run = args.run.resolve() if args.run else tutorial_run(scratch)
        trees = {"now": ROOT, **({f"{args.old}": old_tree(args.old, scratch)} if args.old else {})}
        times = measure(run, trees, args.runs, scratch)
    wall, cpu = (min(t[i] for t in times["peer"]) for i in (0, 1))
    print(f"## cnndsl show on {run.name}, whole processes (fastest of {args.runs}, in turns)\n")
    print(f"peer: python -c 'import torch, matplotlib'   {wall:6.3f} s wall, {cpu:6.3f} s CPU\n")
    print("| tree | show | wall s | beyond the peer | CPU s | beyond the peer | within 0.5 s (CPU) |")
    print("|---|---|--:|--:|--:|--:|---|")
    for key, values in times.items():
        if key == "peer":
            continue
        tree, what = key.split(" ")
        best_wall, best_cpu = (min(t[i] for t in values) for i in (0, 1))
        print(f"| {tree} | {what} | {best_wall:.3f} | {best_wall - wall:+.3f} | {best_cpu:.3f} | {best_cpu - cpu:+.3f} "
              f"| {'yes' if best_cpu - cpu <= TARGET else 'no'} |")


if __name__ == "__main__":
    main()

"""How fast `cnndsl check` is, as whole processes, against a named peer measured in the same run.

    .venv/bin/python bench/check_speed.py [--runs N]

1. `cnndsl check specs/resnet152.cnn` vs torchinfo's summary of a hand-written PyTorch ResNet-152
   (bench/peers/torch_resnet152.py; `pip install torchinfo`): wall time and their ratio.
2. Generated specs of 100, 1,000 and 10,000 layers: times, ratios, and the time per added layer.

Times are the fastest of N runs: on a machine shared with other work the slower runs measure the
others. cnndsl runs as `python -m cnndsl.cli` from this tree, so a checkout is measured, not
whatever `cnndsl` the environment has installed.
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
CNNDSL = [sys.executable, "-m", "cnndsl.cli"]  # run in ROOT: this tree's package
# as a user's Python runs: with bytecode caches (PYTHONDONTWRITEBYTECODE, set in some shells and CI
# images, would make every run compile every module of the tree again)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def wall(cmd: list[str], runs: int) -> tuple[float, str]:
    """The fastest wall time of a whole process in `runs` runs, and its output."""
    times, out = [], ""
    subprocess.run(cmd, capture_output=True, cwd=ROOT, env=ENV)  # writes the bytecode caches, warms the disk
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=ENV)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr}")
        out = done.stdout
    return min(times), out


def generated(n: int, folder: Path) -> Path:
    kinds = ["conv 16 kernel=3 padding=same bias=false", "batchnorm", "relu"]
    lines = ["network generated {", "    input 16x32x32", *("    " + kinds[i % 3] for i in range(n)), "}"]
    path = folder / f"generated{n}.cnn"
    path.write_text("\n".join(lines) + "\n")
    return path


def peer_available() -> bool:
    return subprocess.run([sys.executable, "-c", "import torch, torchinfo"], capture_output=True).returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    print("## cnndsl check vs torchinfo, ResNet-152, whole process (fastest wall time)\n")
    ours, _ = wall([*CNNDSL, "check", "specs/resnet152.cnn"], args.runs)
    print(f"cnndsl check specs/resnet152.cnn      {ours:7.3f} s   (target: 10x faster than the peer)")
    if peer_available():
        theirs, out = wall([sys.executable, "bench/peers/torch_resnet152.py"], max(3, args.runs // 2))
        print(f"torchinfo summary, PyTorch ResNet-152  {theirs:7.3f} s   ({out.strip()} params)")
        print(f"ratio peer / cnndsl                    {theirs / ours:7.1f}x faster "
              f"(10x: {'yes' if theirs >= 10 * ours else 'no'})")
    else:
        print("peer skipped: `pip install torchinfo` (and torch) to measure it")

    print("\n## Scaling with layer count (generated conv/batchnorm/relu specs)\n")
    with tempfile.TemporaryDirectory() as tmp:
        times = {n: wall([*CNNDSL, "check", str(generated(n, Path(tmp)))], max(3, args.runs // 2))[0]
                 for n in (100, 1000, 10_000)}
    for n, t in times.items():
        print(f"{n:>6,} layers  {t:7.3f} s")
    print(f"ratios: 1,000/100 = {times[1000] / times[100]:.2f}, 10,000/1,000 = {times[10_000] / times[1000]:.2f}")
    per_layer = (times[10_000] - times[1000]) / 9000
    early = (times[1000] - times[100]) / 900
    print(f"time per added layer: {early * 1e6:.0f} µs (100→1,000), {per_layer * 1e6:.0f} µs (1,000→10,000); "
          f"equal values mean linear growth")
    print(f"10,000 layers within 2 s: {'yes' if times[10_000] <= 2 else 'no'}")


if __name__ == "__main__":
    main()

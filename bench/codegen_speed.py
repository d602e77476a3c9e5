"""Generated modules vs torchvision's, on this machine's CPU: forward and training-step time ratios.

    python bench/codegen_speed.py [--repeats N] [--models resnet50,vgg16,googlenet] [--batch 8]

Needs the benchmark environment (bench/README.md): torch==2.14.1 and torchvision==0.29.1. Both models
get the same weights (cnndsl.load_weights), the same input and thread count, and are timed in turns;
the table gives median seconds and the ratio generated / torchvision (below 1 means we are faster).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torchvision

import cnndsl

ROOT = Path(__file__).resolve().parent.parent
PEERS = {
    "resnet50": lambda: torchvision.models.resnet50(),
    "vgg16": lambda: torchvision.models.vgg16(),
    "googlenet": lambda: torchvision.models.googlenet(aux_logits=False, init_weights=True, transform_input=False),
}


def forward(model, x):
    with torch.no_grad():
        model(x)


def train_step(model, x):
    model.zero_grad(set_to_none=True)
    model(x).sum().backward()


def timed(fn, model, x) -> float:
    start = time.perf_counter()
    fn(model, x)
    return time.perf_counter() - start


def compare(name: str, batch: int, repeats: int, channels_last: bool) -> list[str]:
    torch.manual_seed(0)
    theirs = PEERS[name]()
    ours = cnndsl.load(ROOT / f"specs/{name}.cnn").build()
    cnndsl.load_weights(ours, theirs.state_dict())
    x = torch.randn(batch, 3, 224, 224)
    if channels_last:
        theirs, ours = theirs.to(memory_format=torch.channels_last), ours.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    rows = []
    for label, fn, mode in (("forward (eval)", forward, "eval"), ("train step", train_step, "train")):
        for m in (theirs, ours):
            getattr(m, mode)()
            fn(m, x)  # warm-up
        times = {"theirs": [], "ours": []}
        for i in range(repeats):
            order = (("theirs", theirs), ("ours", ours)) if i % 2 == 0 else (("ours", ours), ("theirs", theirs))
            for who, m in order:
                times[who].append(timed(fn, m, x))
        t, o = statistics.median(times["theirs"]), statistics.median(times["ours"])
        layout = "channels_last" if channels_last else "contiguous"
        rows.append(f"| {name} | {label} | {layout} | {t:.3f} | {o:.3f} | {o / t:.3f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--models", default="resnet50,vgg16,googlenet")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, {args.threads} threads, "
          f"batch {args.batch}, 224x224, median of {args.repeats}\n")
    print("| model | what | layout | torchvision s | generated s | ratio |")
    print("|---|---|---|--:|--:|--:|")
    for name in args.models.split(","):
        for channels_last in (False, True):
            for row in compare(name, args.batch, args.repeats, channels_last):
                print(row, flush=True)


if __name__ == "__main__":
    main()

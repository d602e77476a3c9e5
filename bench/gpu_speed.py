"""Training speed on a GPU: cnndsl's training pass against a hand-written PyTorch loop, same model and settings.

    .venv/bin/python bench/gpu_speed.py                    # on a CUDA GPU; under 5 minutes
    .venv/bin/python bench/gpu_speed.py --compile          # also torch.compile (adds a compile per row)
    .venv/bin/python bench/gpu_speed.py --smoke            # on the CPU, tiny sizes: checks the script in seconds
    .venv/bin/python bench/gpu_speed.py --airbench         # time to 94% of examples/airbench94.cnn on CIFAR-10

Images per second of training steps (forward, loss, backward, optimizer step) for ResNet-18 and ResNet-50 (the
specs in specs/) on synthetic batches, CIFAR-sized (32x32, batch 512) and ImageNet-sized (224x224, batch 128),
with channels_last and bfloat16 autocast (`amp: bf16`), the images held on the device. Each row times
cnndsl's `train_pass` (what `cnndsl train` runs each epoch: shuffled index batches, sums kept on the device)
and a hand-written loop doing the same (same model built from the spec, same data, SGD with momentum, same
batches), in turns, best of `--repeats` passes after a warm-up pass; the ratio is cnndsl / hand.

`--airbench` trains examples/airbench94.cnn with examples/recipes/airbench94.yaml (CIFAR-10 must be in
~/.cache/cnndsl/cifar10/ or $CNNDSL_DATA, where `cnndsl train` keeps it) and prints the training seconds (the
epochs' `seconds`, validation included) until the validation accuracy first reaches 94%, and the test accuracy.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

import cnndsl
from cnndsl.build import scores
from cnndsl.data.datasets import Split
from cnndsl.training.accel import Amp, prepare
from cnndsl.training.epoch import Batches, train_pass

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Case:
    model: str  # a spec in specs/
    size: int  # image side
    batch: int
    classes: int


def cases(smoke: bool, models: list[str]) -> list[Case]:
    if smoke:  # the same code paths at sizes a CPU runs in seconds
        return [Case(m, s, 4, c) for m in models for s, c in ((32, 10), (48, 100))]
    return [Case(m, s, b, c) for m in models for s, b, c in ((32, 512, 10), (224, 128, 1000))]


def synthetic(case: Case, batches: int, dev, layout) -> Split:
    """Random images and labels on the device, in the layout the model takes."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(case.batch * batches, 3, case.size, case.size, generator=generator)
    y = torch.randint(0, case.classes, (len(x),), generator=generator)
    return Split(x.to(dev, memory_format=layout), y.to(dev))


def hand_pass(forward, split: Split, batch: int, optimizer, generator, amp: Amp, dev) -> None:
    """What one writes by hand: a shuffled order, slices, autocast, cross-entropy, backward, step."""
    order = torch.randperm(len(split.y), generator=generator).to(dev)
    for start in range(0, len(order), batch):
        index = order[start:start + batch]
        with torch.autocast(dev.type, dtype=amp.dtype, enabled=amp.dtype is not None):
            loss = torch.nn.functional.cross_entropy(forward(split.x[index]).float(), split.y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def timed(run, dev) -> float:
    if dev.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    run()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure(case: Case, args, dev) -> dict[str, float]:
    """Images per second of cnndsl's pass and the hand loop's, in turns, best of args.repeats."""
    spec = cnndsl.load(ROOT / "specs" / f"{case.model}.cnn", classes=case.classes)
    layout = torch.channels_last if args.channels_last else torch.contiguous_format
    split = synthetic(case, args.batches, dev, layout)
    amp = Amp(torch.bfloat16 if args.amp else None)
    runs = {}
    for who in ("cnndsl", "hand"):
        torch.manual_seed(0)
        model = spec.build(channels_last=args.channels_last).to(dev).train()
        forward = scores(model)
        if args.compile:
            forward = torch.compile(forward)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
        generator = torch.Generator().manual_seed(0)
        loss_fn = torch.nn.CrossEntropyLoss()
        if who == "cnndsl":
            how = Batches(case.batch, generator, amp=amp, device=dev)
            runs[who] = lambda f=forward, o=optimizer, h=how, lf=loss_fn: train_pass(f, split, h, lf, o)
        else:
            runs[who] = lambda f=forward, o=optimizer, g=generator: hand_pass(f, split, case.batch, o, g, amp, dev)
    times = {who: [] for who in runs}
    for turn in range(args.repeats + 1):  # the first pass of each warms up (cudnn's autotuner, compile)
        for who in (("cnndsl", "hand") if turn % 2 == 0 else ("hand", "cnndsl")):
            seconds = timed(runs[who], dev)
            if turn:
                times[who].append(seconds)
    return {who: len(split.y) / min(t) for who, t in times.items()}


def airbench() -> int:
    """Time to 94% validation accuracy of the airbench-style example, as `cnndsl train` runs it."""
    import tempfile

    from cnndsl.errors import CnnError

    epochs = []

    class Watch(cnndsl.Callback):
        def on_epoch_end(self, epoch, logs=None):
            epochs.append((logs["seconds"], logs["val_accuracy"]))

    with tempfile.TemporaryDirectory() as out:
        try:
            result = cnndsl.train(ROOT / "examples/airbench94.cnn", ROOT / "examples/recipes/airbench94.yaml",
                                  out=Path(out) / "run", callbacks=[Watch()])
        except CnnError as e:
            print(f"gpu_speed.py --airbench: {e}", file=sys.stderr)
            return 1
    elapsed = 0.0
    for epoch, (seconds, accuracy) in enumerate(epochs, 1):
        elapsed += seconds
        if accuracy >= 0.94:
            print(f"airbench94: validation accuracy {accuracy:.4f} at epoch {epoch}, {elapsed:.1f} s of training")
            break
    else:
        print(f"airbench94: validation accuracy never reached 0.94 in {len(epochs)} epochs ({elapsed:.1f} s)")
    print(f"airbench94: test accuracy {result.test_accuracy:.4f} with the weights of epoch {result.best_epoch}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="on the CPU at tiny sizes: checks the script")
    parser.add_argument("--models", default="resnet18,resnet50", help="specs in specs/, comma-separated")
    parser.add_argument("--compile", action="store_true", help="torch.compile both models (adds compile time)")
    parser.add_argument("--no-amp", dest="amp", action="store_false", help="float32 instead of bf16 autocast")
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    parser.add_argument("--batches", type=int, default=None, help="batches in a timed pass (default 20; smoke 2)")
    parser.add_argument("--repeats", type=int, default=None, help="timed passes of each (default 3; smoke 1)")
    parser.add_argument("--airbench", action="store_true", help="time to 94%% of examples/airbench94.cnn instead")
    args = parser.parse_args()
    if args.airbench:
        return airbench()
    args.batches = args.batches or (1 if args.smoke else 20)
    args.repeats = args.repeats or (1 if args.smoke else 3)
    if args.smoke:
        dev = torch.device("cpu")
    elif torch.cuda.is_available():
        dev = torch.device("cuda")
    else:
        print("gpu_speed.py: no CUDA device here; --smoke checks the script on the CPU", file=sys.stderr)
        return 2
    prepare(dev)  # cudnn's autotuner, as `cnndsl train` sets it
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU (smoke: tiny sizes, not a measure)"
    settings = ", ".join(s for s, on in (("channels_last", args.channels_last), ("bf16", args.amp),
                                         ("compile", args.compile)) if on) or "float32"
    print(f"{name}; torch {torch.__version__}; {settings}; best of {args.repeats} passes of {args.batches} batches")
    print(f"{'model':10}{'images':>8}{'batch':>7}{'hand img/s':>12}{'cnndsl img/s':>14}{'ratio':>8}")
    started = time.perf_counter()
    for case in cases(args.smoke, args.models.split(",")):
        rate = measure(case, args, dev)
        print(f"{case.model:10}{f'{case.size}x{case.size}':>8}{case.batch:>7}{rate['hand']:12.0f}"
              f"{rate['cnndsl']:14.0f}{rate['cnndsl'] / rate['hand']:8.3f}", flush=True)
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Runner overhead: cnndsl's training loop and whole `cnndsl train` runs against what one writes by hand.

    .venv/bin/python bench/train_speed.py [--spec examples/fashion_cnn_honkong.cnn] [--epochs 5] [--batch 32]
                                          [--rounds 5] [--short 2] [--long 10] [--options]

1. The loop: images per second of `train_pass` against a minimal hand-written PyTorch loop, same model (built
   from the spec), data (the digits, adapted to the spec's input), batch size, optimizer and seed, epochs timed
   in turns (1.0 means no overhead).
2. Whole runs, each a fresh process, taken in turns: the hand-written tutorial run (validation every epoch,
   the best weights kept, a final test, a curves plot with matplotlib; `_tutorial_run` below) against
   `cnndsl.train` as `cnndsl train` runs it (also last.pt, the metrics files, the confusion matrix, the class
   scores, report.html), at `--short` and `--long` epochs, best of `--rounds`. The difference of the two lengths
   gives each one's seconds per epoch, hence the per-epoch overhead; the time each process spends after its last
   epoch (measured inside it) is its fixed cost at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

import cnndsl
from cnndsl.build import scores
from cnndsl.data.datasets import load_dataset
from cnndsl.training.epoch import Batches, train_pass

ROOT = Path(__file__).resolve().parent.parent


def hand_loop(model, x, y, batch: int, optimizer, generator) -> None:
    """What a PyTorch user writes by hand: shuffle, slice, forward, loss, backward, step."""
    order = torch.randperm(len(y), generator=generator)
    for start in range(0, len(y), batch):
        index = order[start:start + batch]
        loss = torch.nn.functional.cross_entropy(model(x[index]), y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default="examples/fashion_cnn_honkong.cnn")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--options", action="store_true", help="also time --amp, --channels-last, --compile")
    parser.add_argument("--rounds", type=int, default=5, help="whole runs of each kind and length, in turns")
    parser.add_argument("--short", type=int, default=2, help="epochs of the short whole runs")
    parser.add_argument("--long", type=int, default=10, help="epochs of the long whole runs")
    parser.add_argument("--whole-only", action="store_true", help="skip the loop's comparison")
    parser.add_argument("--one", choices=("tutorial", "cnndsl"), help=argparse.SUPPRESS)  # a child process
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return _one_run(args)
    if not args.whole_only:
        _loop(args)
    _whole_runs(args)
    if args.options:
        spec = cnndsl.load(ROOT / args.spec)
        _options(spec, load_dataset("digits", spec.check().input, seed=0), args)


def _loop(args) -> None:
    """The training pass against the hand-written loop, epochs in turns."""
    spec = cnndsl.load(ROOT / args.spec)
    data = load_dataset("digits", spec.check().input, seed=0)
    x, y = data.train.x, data.train.y
    models = {}
    for who in ("cnndsl", "hand"):
        torch.manual_seed(0)
        model = spec.build().train()
        forward = scores(model)
        models[who] = (forward, torch.optim.Adam(model.parameters(), lr=1e-3), torch.Generator().manual_seed(0))
    loss_fn = torch.nn.CrossEntropyLoss()
    times = {"cnndsl": [], "hand": []}
    for epoch in range(args.epochs + 1):  # the first epoch of each warms up
        for who in (("cnndsl", "hand") if epoch % 2 == 0 else ("hand", "cnndsl")):
            forward, optimizer, generator = models[who]
            start = time.perf_counter()
            if who == "cnndsl":
                train_pass(forward, data.train, Batches(args.batch, generator), loss_fn, optimizer)
            else:
                hand_loop(forward, x, y, args.batch, optimizer, generator)
            if epoch:
                times[who].append(time.perf_counter() - start)
    rate = {who: len(y) / statistics.median(t) for who, t in times.items()}
    print(f"{args.spec}, {len(y)} training images, batch {args.batch}, median of {args.epochs} epochs, "
          f"{torch.get_num_threads()} threads")
    print(f"hand-written loop   {rate['hand']:8.0f} images/s")
    print(f"cnndsl train_pass   {rate['cnndsl']:8.0f} images/s")
    print(f"ratio cnndsl / hand {rate['cnndsl'] / rate['hand']:8.3f}")


def _options(spec, data, args) -> None:
    """What --amp, --channels-last and --compile give on this machine, in training images per second."""
    print("\noption           images/s   vs plain")
    plain = None
    for name in ("plain", "amp", "channels_last", "compile"):
        torch.manual_seed(0)
        model = spec.build(channels_last=name == "channels_last").train()
        forward = scores(model)
        if name == "compile":
            forward = torch.compile(forward)
        split = data.train
        if name == "channels_last":
            split = type(split)(split.x.to(memory_format=torch.channels_last), split.y)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(0)
        how = Batches(args.batch, generator, amp=name == "amp")
        loss_fn = torch.nn.CrossEntropyLoss()
        train_pass(forward, split, how, loss_fn, optimizer)  # warm-up, compiles
        times = []
        for _ in range(args.epochs):
            start = time.perf_counter()
            train_pass(forward, split, how, loss_fn, optimizer)
            times.append(time.perf_counter() - start)
        rate = len(split) / statistics.median(times)
        plain = plain or rate
        print(f"{name:15} {rate:9.0f}   {rate / plain:7.2f}x")


def _hand_parts(spec):
    """What a hand-written script starts with: the data, the model, its forward, Adam and a shuffle generator."""
    torch.manual_seed(0)
    data = load_dataset("digits", spec.check().input, seed=0)
    model = spec.build().train()
    return data, model, scores(model), torch.optim.Adam(model.parameters(), lr=1e-3), torch.Generator().manual_seed(0)


def _tutorial_run(spec, epochs: int, batch: int, out: Path) -> list[float]:
    """What a tutorial's script does by hand around that loop: validate each epoch, keep the best weights
    (Keras' ModelCheckpoint), test them, and plot the history (Hands-On ML's `pd.DataFrame(history).plot()`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data, model, forward, optimizer, generator = _hand_parts(spec)
    history, best, marks = [], float("inf"), []
    for _ in range(epochs):
        model.train()
        hand_loop(forward, data.train.x, data.train.y, batch, optimizer, generator)
        model.eval()
        with torch.no_grad():
            logits = torch.cat([forward(data.val.x[i:i + batch]) for i in range(0, len(data.val), batch)])
        val_loss = torch.nn.functional.cross_entropy(logits, data.val.y).item()
        history.append((val_loss, (logits.argmax(1) == data.val.y).float().mean().item()))
        if val_loss < best:
            best = val_loss
            torch.save(model.state_dict(), out / "best.pt")
        marks.append((time.perf_counter(), time.process_time()))
    model.load_state_dict(torch.load(out / "best.pt", weights_only=True))
    with torch.no_grad():
        logits = torch.cat([forward(data.test.x[i:i + batch]) for i in range(0, len(data.test), batch)])
    (logits.argmax(1) == data.test.y).float().mean().item()
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.plot([h[0] for h in history], label="val_loss")
    ax.plot([h[1] for h in history], label="val_accuracy")
    ax.legend()
    fig.savefig(out / "curves.png")
    plt.close(fig)
    return marks  # when each epoch ended (wall and CPU time)


def _one_run(args) -> None:
    """One whole run in this process (a child of _whole_runs); prints the seconds after its last epoch."""
    spec = cnndsl.load(ROOT / args.spec)
    out = Path(args.out)
    if args.one == "tutorial":
        marks = _tutorial_run(spec, args.epochs, args.batch, out)
    else:
        marks = []

        class Mark(cnndsl.Callback):
            def on_epoch_end(self, epoch, logs=None):
                marks.append((time.perf_counter(), time.process_time()))

        cnndsl.train(spec, epochs=args.epochs, batch_size=args.batch, out=out / "run", callbacks=[Mark()])
    now = (time.perf_counter(), time.process_time())  # wall and CPU (this process's, all threads): CPU time holds
    ends = [now[k] - marks[-1][k] for k in (0, 1)]   # up when other processes share the machine
    epochs = [[b[k] - a[k] for a, b in zip(marks, marks[1:])] for k in (0, 1)]
    print(json.dumps({"epochs": epochs[0], "end": ends[0], "cpu_epochs": epochs[1], "cpu_end": ends[1]}))


def _whole_runs(args) -> None:
    """Whole runs as fresh processes, tutorial and cnndsl in turns, at two lengths; the best of each."""
    import subprocess
    import sys
    import tempfile

    wall: dict = {}
    inside: dict = {}  # what each process measured: its epochs' seconds (from the second on) and its end
    lengths = (args.short, args.long)
    for turn in range(args.rounds):
        for epochs in lengths:
            for who in (("tutorial", "cnndsl") if turn % 2 == 0 else ("cnndsl", "tutorial")):
                with tempfile.TemporaryDirectory() as out:
                    command = [sys.executable, __file__, "--one", who, "--out", out, "--spec", args.spec,
                               "--epochs", str(epochs), "--batch", str(args.batch)]
                    start = time.perf_counter()
                    done = subprocess.run(command, capture_output=True, text=True, check=True)
                    wall.setdefault((who, epochs), []).append(time.perf_counter() - start)
                    inside.setdefault((who, epochs), []).append(json.loads(done.stdout.splitlines()[-1]))
    _print_whole(args, wall, inside)


def _print_whole(args, wall: dict, inside: dict) -> None:
    import os

    whos, lengths = ("tutorial", "cnndsl"), (args.short, args.long)
    best = {key: min(times) for key, times in wall.items()}
    slope = {who: (best[who, args.long] - best[who, args.short]) / (args.long - args.short) for who in whos}
    # inside each long run: the median epoch (epochs 2 on: every one validates and saves), best of the runs
    epoch = {who: min(statistics.median(one["epochs"]) for one in inside[who, args.long]) for who in whos}
    paired = [statistics.median(c["epochs"]) / statistics.median(t["epochs"]) - 1
              for t, c in zip(inside["tutorial", args.long], inside["cnndsl", args.long])]
    end = {who: min(one["end"] for e in lengths for one in inside[who, e]) for who in whos}
    cpu = {who: min(statistics.median(one["cpu_epochs"]) for one in inside[who, args.long]) for who in whos}
    cpu_end = {who: min(one["cpu_end"] for e in lengths for one in inside[who, e]) for who in whos}
    load = os.getloadavg()
    print(f"\nwhole runs of {args.spec}, batch {args.batch}: fresh processes in turns, best of {args.rounds} "
          f"(load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end, {os.cpu_count()} CPUs)")
    print(f"{'':44}{'tutorial':>10}{'cnndsl':>10}{'overhead':>10}")
    for epochs in lengths:
        row = [best['tutorial', epochs], best['cnndsl', epochs]]
        print(f"{f'whole process, {epochs} epochs (s)':44}{row[0]:10.2f}{row[1]:10.2f}{row[1] / row[0] - 1:+10.1%}")
    print(f"{'per epoch, from the two lengths (s)':44}{slope['tutorial']:10.3f}{slope['cnndsl']:10.3f}"
          f"{slope['cnndsl'] / slope['tutorial'] - 1:+10.1%}")
    print(f"{'per epoch, inside the process (s)':44}{epoch['tutorial']:10.3f}{epoch['cnndsl']:10.3f}"
          f"{epoch['cnndsl'] / epoch['tutorial'] - 1:+10.1%}")
    print(f"{'after the last epoch (s)':44}{end['tutorial']:10.3f}{end['cnndsl']:10.3f}"
          f"{end['cnndsl'] - end['tutorial']:+9.2f}s")
    print(f"{'per epoch, CPU time inside (s)':44}{cpu['tutorial']:10.3f}{cpu['cnndsl']:10.3f}"
          f"{cpu['cnndsl'] / cpu['tutorial'] - 1:+10.1%}")
    print(f"{'after the last epoch, CPU time (s)':44}{cpu_end['tutorial']:10.3f}{cpu_end['cnndsl']:10.3f}"
          f"{cpu_end['cnndsl'] - cpu_end['tutorial']:+9.2f}s")
    print(f"per-epoch overhead, run by run in turns: {', '.join(f'{p:+.1%}' for p in paired)} "
          f"(median {statistics.median(paired):+.1%}; target at most +3%)")
    print(f"fixed cost at the end: {end['cnndsl'] - end['tutorial']:+.2f} s (target at most 1 s)")


if __name__ == "__main__":
    main()

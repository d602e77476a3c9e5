"""Runner overhead: images per second of cnndsl's training loop vs a minimal hand-written PyTorch loop.

    .venv/bin/python bench/train_speed.py [--spec examples/fashion_cnn_honkong.cnn] [--epochs 5] [--batch 32]

Same model (built from the spec), same data (the digits, adapted to the spec's input, on the same
device), same batch size, optimizer and seed; epochs are timed in turns. The ratio is cnndsl / hand
loop in images per second (1.0 means no overhead).
"""

from __future__ import annotations

import argparse
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
    args = parser.parse_args()
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
    whole = _whole_run(spec, args.epochs, args.batch, len(y), lambda: _hand_run(spec, args.epochs, args.batch))
    print(f"{args.spec}, {len(y)} training images, batch {args.batch}, median of {args.epochs} epochs, "
          f"{torch.get_num_threads()} threads")
    print(f"hand-written loop   {rate['hand']:8.0f} images/s")
    print(f"cnndsl train_pass   {rate['cnndsl']:8.0f} images/s")
    print(f"ratio cnndsl / hand {rate['cnndsl'] / rate['hand']:8.3f}   (target at least 0.95)")
    print(f"whole runs of {args.epochs} epochs, from loading the data to the end:")
    print(f"  bare hand-written loop (no validation, nothing written)     {whole[0]:6.2f} s")
    print(f"  hand-written tutorial run (validation, best weights, test, curves)  {whole[1]:6.2f} s")
    print(f"  cnndsl.train (also last.pt, metrics, confusion, report.html) {whole[2]:6.2f} s")
    print(f"ratio bare / cnndsl {whole[0] / whole[2]:.3f}; tutorial / cnndsl {whole[1] / whole[2]:.3f}")
    if args.options:
        _options(spec, data, args)


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


def _hand_run(spec, epochs: int, batch: int) -> None:
    data, _, forward, optimizer, generator = _hand_parts(spec)
    for _ in range(epochs):
        hand_loop(forward, data.train.x, data.train.y, batch, optimizer, generator)


def _tutorial_run(spec, epochs: int, batch: int, out: Path) -> None:
    """What a tutorial's script does by hand around that loop: validate each epoch, keep the best weights
    (Keras' ModelCheckpoint), test them, and plot the history (Hands-On ML's `pd.DataFrame(history).plot()`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data, model, forward, optimizer, generator = _hand_parts(spec)
    history, best = [], float("inf")
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


def _whole_run(spec, epochs: int, batch: int, images: int, hand) -> tuple[float, float, float]:
    """Seconds of a whole bare hand-written run, of a hand-written tutorial run and of a whole cnndsl.train
    run, each the best of three taken in turns (this machine's speed drifts by tens of percent)."""
    import tempfile

    times = {"bare": [], "tutorial": [], "cnndsl": []}
    for _ in range(3):
        start = time.perf_counter()
        hand()
        times["bare"].append(time.perf_counter() - start)
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            _tutorial_run(spec, epochs, batch, Path(out))
            times["tutorial"].append(time.perf_counter() - start)
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            cnndsl.train(spec, epochs=epochs, batch_size=batch, out=Path(out), log=None)  # with its report.html
            times["cnndsl"].append(time.perf_counter() - start)
    return min(times["bare"]), min(times["tutorial"]), min(times["cnndsl"])


if __name__ == "__main__":
    main()

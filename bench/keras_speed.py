"""cnndsl's runner vs Keras 3 `fit` (torch backend): time to the same test accuracy on the digits.

    KERAS_BACKEND=torch python bench/keras_speed.py [--target 0.97] [--epochs 15]

Needs the benchmark environment (bench/README.md) with `pip install keras`. The model is the
Fashion-MNIST CNN of 혼공 머신러닝 ch. 8 (examples/fashion_cnn_honkong.cnn) written in Keras as the book
writes it; both train with Adam (lr 1e-3, epsilon 1e-7), batch 32, on the same digits split adapted to
28x28, and cnndsl's model starts as Keras' does (`initializer: keras`) unless --initializer pytorch.
Training time is summed epoch by epoch until the test accuracy (measured after each epoch, untimed)
first reaches the target.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import cnndsl  # noqa: E402
from cnndsl.build import keras_initialization  # noqa: E402
from cnndsl.data.datasets import load_dataset  # noqa: E402
from cnndsl.training.epoch import Batches, evaluate_pass, train_pass  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def keras_model() -> keras.Model:
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(32, kernel_size=3, activation="relu", padding="same"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, kernel_size=3, activation="relu", padding="same"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(100, activation="relu"),
        keras.layers.Dropout(0.4),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def time_to(target: float, epochs: int, train_epoch, test_accuracy) -> tuple[float, int, float]:
    """(seconds of training until the target, epochs it took, final accuracy); inf if never reached."""
    spent, accuracy = 0.0, 0.0
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        train_epoch()
        spent += time.perf_counter() - start
        accuracy = test_accuracy()
        if accuracy >= target:
            return spent, epoch, accuracy
    return float("inf"), epochs, accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", type=float, default=0.97)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--initializer", default="keras", choices=("keras", "pytorch"),
                        help="how cnndsl's model starts (the recipe key `initializer`); Keras always uses Glorot")
    args = parser.parse_args()
    spec = cnndsl.load(ROOT / "examples/fashion_cnn_honkong.cnn")
    data = load_dataset("digits", (1, 28, 28), seed=0)

    def ours(channels_last: bool):
        """cnndsl's runner, as `cnndsl train` would run it with --channels-last or without."""
        torch.manual_seed(0)
        model = spec.build(channels_last=channels_last)
        if args.initializer == "keras":
            keras_initialization(model)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)  # Keras' epsilon
        shuffle = torch.Generator().manual_seed(0)
        loss_fn = torch.nn.CrossEntropyLoss()
        layout = torch.channels_last if channels_last else torch.contiguous_format
        train = type(data.train)(data.train.x.contiguous(memory_format=layout), data.train.y)
        test = type(data.test)(data.test.x.contiguous(memory_format=layout), data.test.y)

        def epoch():
            model.train()
            train_pass(model.logits, train, Batches(32, shuffle), loss_fn, optimizer)

        def accuracy():
            model.eval()
            return evaluate_pass(model.logits, test, 256, loss_fn)[1]

        return time_to(args.target, args.epochs, epoch, accuracy)

    x_train = data.train.x.permute(0, 2, 3, 1).numpy()
    y_train = data.train.y.numpy()
    x_test, y_test = data.test.x.permute(0, 2, 3, 1).numpy(), data.test.y.numpy()

    km = None

    def keras_epoch():
        km.fit(x_train, y_train, batch_size=32, epochs=1, verbose=0, shuffle=True)

    def keras_accuracy():
        return float(np.mean(km.predict(x_test, verbose=0).argmax(1) == y_test))

    plain, nhwc = ours(False), ours(True)
    keras.utils.set_random_seed(0)  # also seeds torch, whose generator Keras' dropout draws from
    km = keras_model()
    theirs = time_to(args.target, args.epochs, keras_epoch, keras_accuracy)
    print(f"fashion_cnn_honkong on digits (28x28), Adam 1e-3, batch 32, {torch.get_num_threads()} threads; "
          f"keras {keras.__version__} (backend {keras.backend.backend()}), torch {torch.__version__}")
    print(f"time to {args.target:.0%} test accuracy:")
    for name, result in (("cnndsl", plain), ("cnndsl --channels-last", nhwc), ("keras fit", theirs)):
        print(f"  {name:24} {result[0]:6.2f} s  (epoch {result[1]}, accuracy {result[2]:.4f})")
    print(f"  speed-up over keras: {theirs[0] / plain[0]:.2f}x, with --channels-last {theirs[0] / nhwc[0]:.2f}x "
          f"(aim: at least 1.5x; cnndsl's initializer: {args.initializer})")


if __name__ == "__main__":
    main()

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

import pytest

# One thread per test process, set before anything imports torch (and inherited by the commands tests run):
# the suite runs on two workers (pytest-xdist, `make test`), and an OpenMP team of two beside another busy
# process waits on it — a small conv took 15 ms instead of 0.6 ms on this 2-core machine.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent

# The tests that run every spec's network (forward, backward, torch.export, ONNX) take these arguments:
# ConvNeXt-T at 224 (28.6 M parameters, 18 blocks) would add a minute and a half to them; at 32x32, width 24
# and one block in stage 3 it has every layer kind and wiring of the full one. The counts, the MACs and every
# layer's shape are still compared with `check` at those arguments; the figures at 224 are test_reference's.
TO_RUN = {"specs/convnext_tiny.cnn": {"image": (3, 32, 32), "width": 24, "stage3": 1}}


def load_to_run(path: str):
    """A spec of the repository (`specs/x.cnn`), with its TO_RUN arguments if it has any."""
    import cnndsl

    return cnndsl.load(ROOT / path, **TO_RUN.get(path, {}))


# A small CNN on the 8x8 digits as they are: a few seconds per training run
SMALL = """network small(classes = 10) {
    input 1x8x8
    conv 16 kernel=3 padding=same activation=relu
    maxpool 2
    conv 32 kernel=3 padding=same activation=relu
    globalavgpool
    dense classes activation=softmax
}"""

# named outputs, `from` and merges with names: a U-Net in miniature
UNET = """network unet {
    input 3x16x16
    e1: conv 8 kernel=3 padding=same
    maxpool 2
    conv 8 kernel=3 padding=same
    upsample 2
    concat e1
    side: conv 4 kernel=1
    from e1
    conv 4 kernel=1
    add side
}"""


@pytest.fixture
def spec_file(tmp_path):
    """Writes spec text to a file and returns its path."""

    def write(text: str, name: str = "spec.cnn") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return write


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www; stopped after the test."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(Quiet, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def module_of(layer, modules) -> str | None:
    """The module computing a layer: the layer's own name; None for a sum or merge that a fixed class
    computes in its forward (`out += identity`, `torch.cat`), whose block must then be a module."""
    if layer.id in modules:
        return layer.id
    assert layer.op in ("add", "concat", "multiply"), f"no module for layer {layer.id}"
    assert layer.id.rpartition(".")[0] in modules, f"no module computes {layer.id}"
    return None


def keras_honkong(keras, name: str = "fashion_cnn_honkong"):
    """혼자 공부하는 머신러닝+딥러닝, 8-2, in Keras 3 (examples/fashion_cnn_honkong.cnn is its spec)."""
    L = keras.layers
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        L.Conv2D(32, kernel_size=3, activation="relu", padding="same"), L.MaxPooling2D(2),
        L.Conv2D(64, kernel_size=3, activation="relu", padding="same"), L.MaxPooling2D(2),
        L.Flatten(), L.Dense(100, activation="relu"), L.Dropout(0.4), L.Dense(10, activation="softmax"),
    ], name=name)

"""Optional parts fail clearly: with a package hidden (as if not installed), the command that needs it stops with
exit 1 and a message naming what to install, never a traceback; a train refuses before it makes its folder.

Each case runs the command line in a fresh interpreter whose import system refuses the hidden packages.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT

TINY = "network tiny(classes = 10) {\n    input 1x8x8\n    conv 4 kernel=3\n    flatten\n    dense classes\n}\n"

WITHOUT = r"""
import sys

HIDDEN = set(sys.argv[1].split(","))


class Without:  # a finder that finds nothing of the hidden packages, as where they are not installed:
    # `import` fails and importlib.util.find_spec gives None

    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN or not hasattr(self.finder, "find_spec"):
            return None
        return self.finder.find_spec(name, path, target)

    def __getattr__(self, name):
        return getattr(self.finder, name)


sys.meta_path[:] = [Without(finder) for finder in sys.meta_path]
from cnndsl.cli import main

sys.exit(main(sys.argv[2:]))
"""


def cnndsl_without(hidden: str, *argv, cwd, env=None) -> subprocess.CompletedProcess:
    """`cnndsl ARGV` where the packages `hidden` (comma-separated import names) cannot be imported."""
    return subprocess.run([sys.executable, "-c", WITHOUT, hidden, *map(str, argv)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


def test_a_hidden_package_is_not_there():
    probe = "import importlib.util; assert importlib.util.find_spec('yaml') is None; import yaml"
    done = subprocess.run([sys.executable, "-c", WITHOUT.replace("from cnndsl.cli import main", probe), "yaml"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "ModuleNotFoundError: No module named 'yaml'" in done.stderr


@pytest.fixture
def work(tmp_path):
    """A folder with a tiny spec, a recipe, an image and a weights file (whose contents are never read)."""
    (tmp_path / "tiny.cnn").write_text(TINY)
    (tmp_path / "r.yaml").write_text("epochs: 1\n")
    (tmp_path / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "w.pt").write_bytes(b"weights")
    (tmp_path / "w.keras").write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip: read only once h5py is there
    return tmp_path


# (hidden packages, the command, what the message says to install)
CASES = [
    ("onnx", ["export", "tiny.cnn", "-o", "t.onnx"], "pip install onnx"),
    ("onnxscript", ["export", "tiny.cnn", "-o", "t.onnx"], "pip install onnxscript"),
    ("onnxruntime", ["export", "tiny.cnn", "-o", "t.onnx"], "pip install onnxruntime"),
    ("tensorboard", ["train", "tiny.cnn", "--tensorboard", "--out", "run"], "pip install tensorboard"),
    ("matplotlib", ["train", "tiny.cnn", "--out", "run"], "pip install matplotlib"),
    ("PIL", ["predict", "w.pt", "x.png", "--spec", "tiny.cnn"], "pip install pillow"),
    ("sklearn", ["train", "tiny.cnn", "--epochs", "1", "--out", "run"], "pip install scikit-learn"),
    ("yaml", ["train", "tiny.cnn", "--recipe", "r.yaml", "--out", "run"], "pip install pyyaml"),
    ("torch", ["train", "tiny.cnn", "--out", "run"], "pip install torch"),
    ("graphviz", ["plot", "tiny.cnn", "-o", "t.svg"], "pip install graphviz"),
    ("h5py", ["train", "tiny.cnn", "--init", "w.keras", "--out", "run"], "pip install h5py"),
    ("pygls", ["lsp"], "pip install pygls"),
]


@pytest.mark.parametrize("hidden, argv, install", CASES, ids=[f"{h}-{a[0]}" for h, a, _ in CASES])
def test_a_missing_package_is_named_with_how_to_install_it(work, hidden, argv, install):
    done = cnndsl_without(hidden, *argv, cwd=work)
    assert done.returncode == 1, done.stderr
    assert install in done.stderr and "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert not (work / "run").exists() and not list(work.glob("t.*"))  # refused before any work


def test_onnx_without_onnxruntime_says_how_to_export_unchecked(work, monkeypatch):
    refused = cnndsl_without("onnxruntime", "export", "tiny.cnn", "-o", "t.onnx", cwd=work)
    assert refused.returncode == 1 and "--no-check" in refused.stderr and not (work / "t.onnx").exists()
    pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    import cnndsl
    from cnndsl import exporter

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` fails
    monkeypatch.setattr(exporter, "_onnx", lambda model, example, path, metadata, optimize: path.write_bytes(b"o"))
    done = cnndsl.export(None, work / "t.onnx", spec=work / "tiny.cnn", check=False)  # the translation left out
    assert (done.verified_by, done.max_difference) == (None, None) and (work / "t.onnx").read_bytes() == b"o"


def test_without_graphviz_dot_the_diagram_says_how_to_install_it(work):
    env = dict(os.environ, PATH=str(work / "empty"))  # no dot on this PATH (python runs by its full path)
    done = cnndsl_without("nothing", "plot", "tiny.cnn", "-o", "t.svg", cwd=work, env=env)
    assert done.returncode == 1 and "apt-get install graphviz" in done.stderr and "Traceback" not in done.stderr
    assert not (work / "t.svg").exists()


def test_check_needs_none_of_them(work):
    hidden = "torch,numpy,onnx,onnxscript,onnxruntime,tensorboard,matplotlib,PIL,sklearn,yaml,graphviz,safetensors,h5py"
    done = cnndsl_without(hidden, "check", "tiny.cnn", cwd=work)
    assert done.returncode == 0 and "Total params" in done.stdout, done.stderr
    assert cnndsl_without(hidden, "compile", "tiny.cnn", "-o", "t.py", cwd=work).returncode == 0
    keras = cnndsl_without(hidden + ",keras", "check", "tiny.cnn", "--keras", cwd=work)  # Keras' table needs no Keras
    assert keras.returncode == 0 and "Total params: 1,490 (5.82 KB)" in keras.stdout, keras.stderr


def test_the_table_names_every_optional_package_of_pyproject():
    """Each package of an extra (pyproject.toml) is one the table knows how to install."""
    import tomllib

    from cnndsl.optional import PACKAGES

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    wanted = {"torch", "train", "export", "tensorboard", "keras", "lsp"}
    names = {req.split(">")[0].split("=")[0].strip().lower() for extra in wanted for req in extras[extra]}
    assert names <= {p.pip for p in PACKAGES.values()}

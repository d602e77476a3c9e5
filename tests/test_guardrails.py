"""Guardrails before the long run: fast dev runs that keep nothing, the checks before epoch 1, overfit_batches,
and the learning-rate range test whose suggestion trains the digits."""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
Image = pytest.importorskip("PIL.Image")

import cnndsl  # noqa: E402
from cnndsl import cli  # noqa: E402
from cnndsl.errors import CnnError  # noqa: E402
from cnndsl.training import lrfind  # noqa: E402
from conftest import ROOT  # noqa: E402

# the digits at their own 8x8: a CNN that learns them in a few epochs
DIGITS8 = """network digits8(classes = 10) {
    input 1x8x8
    conv 32 kernel=3 padding=same activation=relu
    conv 32 kernel=3 padding=same activation=relu
    maxpool 2
    flatten
    dense 64 activation=relu
    dense classes
}"""

# a softmax inside a block is not skipped in training: cross-entropy on probabilities
SOFTMAX_IN_BLOCK = """block head(n) {
    dense n
    softmax
}

network soft(classes = 10) {
    input 1x8x8
    conv 8 kernel=3 padding=same activation=relu
    flatten
    head classes
}"""

EXAMPLES = sorted((ROOT / "examples").glob("*.cnn"))
# every example under CNNDSL_ALL_EXAMPLES=1 (12 specs); in the suite a classifier with a final softmax, a residual
# network with batchnorm on 3 channels, and a network that is no classifier (refused as the long run is)
SUBSET = ("fashion_cnn_honkong.cnn", "cifar_resnet_small.cnn", "unet_small.cnn")


def digits(scale: float = 1.0):
    """The digits as (N, 8, 8, 1) arrays, scaled to 0..scale, and their labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images[..., None] / 16 * scale).astype("float32"), d.target.astype("int64")


# ---- --fast-dev-run ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [p for p in EXAMPLES if os.environ.get("CNNDSL_ALL_EXAMPLES") or p.name in SUBSET],
                         ids=lambda p: p.name)
def test_a_fast_dev_run_of_an_example_keeps_nothing(path, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))  # where the run's folder is made, and removed
    code = cli.main(["train", str(path), "--fast-dev-run", "--lr", "auto"])  # a short range test, then a resume
    out, err = capsys.readouterr()
    output = cnndsl.check(path).output
    if output == (10,):
        assert code == 0, err
        assert "fast dev run: passed in" in out and "nothing was kept" in out
        assert "epoch 1/1" in out and "resuming" in out and "epoch 2/2" in out  # a checkpoint, and a resume of it
        assert "report.html" in out and "preflight: initial loss" in out and "lr: auto -> " in out
    else:  # the error the long run meets, as soon
        assert code == 1
        assert "not one score per class" in err or "but digits has 10 classes" in err
    assert os.listdir(tmp_path) == ["tmp"]  # no runs/
    assert not [name for name in os.listdir(temporary) if name.startswith("cnndsl")]  # the run's folder is gone


def test_a_fast_dev_run_stops_with_the_error_of_the_long_run(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    bad = DIGITS8.replace("dense classes", "dense 7")  # 7 outputs for 10 classes
    with pytest.raises(CnnError, match="the network has 7 outputs but digits has 10 classes"):
        cnndsl.train(cnndsl.loads(bad), fast_dev_run=True, log=None)
    with pytest.raises(CnnError, match="a fast dev run keeps nothing, so it takes no out"):
        cnndsl.train(cnndsl.loads(DIGITS8), fast_dev_run=True, out=tmp_path / "x", log=None)
    assert not [name for name in os.listdir(tmp_path) if name.startswith("cnndsl")]


# ---- the checks before epoch 1 -------------------------------------------------------------------------------------

def test_the_checks_name_a_final_softmax_and_unnormalised_input(tmp_path):
    x, y = digits(scale=255)  # pixel values 0..255, as a learner forgets to divide them
    lines = []
    result = cnndsl.train(cnndsl.loads(SOFTMAX_IN_BLOCK), data=(x[:400], y[:400]), epochs=1, out=tmp_path / "run",
                          log=lines.append)
    text = "\n".join(lines)
    assert ("preflight: warning: the inputs run from 0 to 255 (mean 78, deviation 97): pixel values 0..255, "
            "not scaled\n  fix: divide the images by 255 (x / 255), or add `normalize: true` to the recipe") in text
    assert ("preflight: <string>:3:5: warning: the network ends in `softmax` (in head1): cross-entropy is trained on "
            "probabilities, softmaxed twice, and learns slowly\n  fix: remove the final softmax: CrossEntropyLoss "
            "applies log-softmax itself") in text
    assert "preflight: initial loss " in text and "(ln 10 = 2.303)" in text
    assert len(result.history) == 1  # warnings: the run goes on
    kept = json.loads((tmp_path / "run/preflight.json").read_text())
    assert [f["check"] for f in kept["findings"]] == ["input", "last layer"]
    assert kept["figures"]["input"]["max"] == 255.0
    page = (tmp_path / "run/report.html").read_text()
    assert 'id="preflight"' in page and "pixel values 0..255, not scaled" in page
    assert any("pixel values 0..255" in note for note in result.notes)


def test_a_top_level_softmax_is_a_note_and_a_loss_far_above_ln_classes_a_warning(tmp_path):
    x, y = digits(scale=255)
    lines = []
    spec = cnndsl.loads("network big(classes = 10) {\n    input 1x8x8\n    flatten\n    dense classes "
                        "activation=softmax\n}")
    cnndsl.train(spec, data=(x[:400], y[:400]), epochs=1, out=tmp_path / "run", log=lines.append)
    text = "\n".join(lines)
    assert ("preflight: <string>:4:30: note: the network ends in `softmax`, and CrossEntropyLoss applies "
            "log-softmax") in text
    assert "fix: in a training loop of your own over the generated module, train on model.logits(x)" in text
    loss = next(line for line in lines if "untrained network's loss" in line)
    assert "x ln(classes) = 2.3 (the loss of evenly spread scores): its scores start far too large" in loss


def test_the_checks_find_nothing_in_a_sound_run_and_can_be_skipped(tmp_path):
    x, y = digits()
    lines = []
    cnndsl.train(cnndsl.loads(DIGITS8), data=(x[:400], y[:400]), epochs=1, out=tmp_path / "a", log=lines.append)
    assert [line for line in lines if line.startswith("preflight:")][1:] == \
        ["preflight: nothing found (--no-preflight skips these checks)"]
    lines.clear()
    cnndsl.train(cnndsl.loads(DIGITS8), data=(x[:400], y[:400]), epochs=1, out=tmp_path / "b", log=lines.append,
                 preflight=False)
    assert not any(line.startswith("preflight") for line in lines)
    assert not (tmp_path / "b/preflight.json").exists()


def test_labels_1_to_c_are_refused_with_the_fix(tmp_path):
    x, y = digits()
    with pytest.raises(CnnError) as caught:
        cnndsl.train(cnndsl.loads(DIGITS8), data=(x, y + 1), epochs=1, out=tmp_path / "run", log=None)
    assert caught.value.message == ("data: y (1797,) int64 holds labels 1 to 10, and the network's 10 outputs are "
                                 "classes 0 to 9")
    assert caught.value.diagnostic.hint == "class numbers start at 0: subtract 1 from every label (y - 1)"
    assert not (tmp_path / "run").exists()


def test_the_label_check_before_epoch_1_refuses_labels_out_of_range():
    from types import SimpleNamespace

    from cnndsl.data.datasets import Split
    from cnndsl.training.guard import check_labels, label_findings

    split = Split(torch.zeros(3, 1), torch.tensor([1, 2, 3]))
    run = SimpleNamespace(data=SimpleNamespace(classes=["a", "b", "c"], train=split, val=split, test=split))
    with pytest.raises(CnnError, match=r"the train labels run from 1 to 3, but the network has 3 outputs") as caught:
        check_labels(run)
    assert "subtract 1 from every label" in caught.value.diagnostic.hint
    found = label_findings([0, 40, 50, 45], ["0", "1", "2", "3"])
    assert [f.message for f in found] == ["class 0 has no training images: the labels start at 1"]
    found = label_findings([500, 40, 10, 45], ["a", "b", "c", "d"])
    assert found[0].message == "the classes are imbalanced: a has 500 training images, c 10 (50x)"


# ---- overfit_batches ---------------------------------------------------------------------------------------------

def test_overfit_batches_trains_two_batches_to_all_right(tmp_path):
    result = cnndsl.train(cnndsl.loads(DIGITS8), overfit_batches=2, epochs=16, lr=0.003, out=tmp_path / "run",
                          log=None)
    assert result.history[-1]["accuracy"] == 1.0 and result.history[-1]["val_accuracy"] == 1.0
    assert result.history[0]["accuracy"] < 0.5
    note = ("overfit_batches 2: training on the same 64 images every epoch and validating on them (the test set is "
            "the usual one): a network that can learn reaches a training accuracy near 1")
    assert result.notes[0] == note
    assert f"before epoch 1: {note}" in str(cnndsl_summary(result))
    assert "overfit_batches: 2" in (tmp_path / "run/recipe.yaml").read_text()
    assert note in (tmp_path / "run/report.html").read_text()


def cnndsl_summary(result) -> str:
    from cnndsl.training import summary

    return summary.text(result)


# ---- the learning-rate range test --------------------------------------------------------------------------------

def test_the_suggested_rate_trains_the_digits_to_97_percent(tmp_path):
    lines = []
    result = cnndsl.train(cnndsl.loads(DIGITS8), lr="auto", schedule="cosine", epochs=8, out=tmp_path / "run",
                          log=lines.append)
    found = json.loads((tmp_path / "run/preflight.json").read_text())
    suggestion = found["lr_find"]["suggestion"]
    assert found["lr_auto"] == suggestion and 1e-4 < suggestion < 1
    assert found["lr_find"]["steps"] >= 50
    assert f"lr: auto -> {suggestion:.3g}, the range test's suggestion" in lines
    assert f"lr: {suggestion}" in (tmp_path / "run/recipe.yaml").read_text()  # a resume reads the number
    assert result.test_accuracy >= 0.97
    # the plot: the curve (tab:blue) and the suggestion's mark (tab:red) are drawn
    with Image.open(tmp_path / "run" / lrfind.PNG) as image:
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3).astype(int)
    blue = (np.abs(pixels - (31, 119, 180)).sum(1) < 30).sum()
    red = (np.abs(pixels - (214, 39, 40)).sum(1) < 30).sum()
    assert blue > 500 and red > 100
    page = (tmp_path / "run/report.html").read_text()
    assert 'id="lr-find"' in page and 'alt="Learning-rate range test"' in page
    import base64

    assert base64.b64encode((tmp_path / "run" / lrfind.PNG).read_bytes()).decode() in page
    # the sweep put the weights and the random streams back: the rate given as a number trains the same epoch 1
    fixed = cnndsl.train(cnndsl.loads(DIGITS8), lr=suggestion, schedule="cosine", epochs=8, out=tmp_path / "fixed",
                         log=None, callbacks=[StopAfterOne()])
    assert len(fixed.history) == 1
    assert {k: v for k, v in fixed.history[0].items() if k != "seconds"} == \
        {k: v for k, v in result.history[0].items() if k != "seconds"}


class StopAfterOne(cnndsl.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.model.stop_training = True


def test_the_suggestion_is_the_steepest_descent_before_the_minimum():
    lrs = [lrfind.rate(i, 40) for i in range(40)]
    assert lrs[0] == lrfind.START and abs(lrs[-1] - lrfind.END) < 1e-9
    # a loss flat, then falling fastest at step 25, lowest at step 30, then rising
    loss = [2.0] * 20 + [2.0 - 0.1 * i - (0.3 if i >= 5 else 0) for i in range(10)] + [5.0] * 10
    suggestion, minimum, steepest = lrfind.suggest(lrs, loss)
    assert steepest == lrs[24] and suggestion == steepest and minimum == lrs[29]
    assert lrfind.suggest(lrs[:5], [2.0] * 5) == (lrs[0] / 10, lrs[0], lrs[0])  # no descent: the minimum / 10


# ---- the command line ----------------------------------------------------------------------------------------------

def test_the_flags_are_in_the_help_and_their_mistakes_are_usage_errors(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for flag in ("--fast-dev-run", "--overfit-batches N", "--find-lr", "--no-preflight", "(greater than 0), or auto:"):
        assert flag in help_text
    spec = str(ROOT / "examples/fashion_cnn_honkong.cnn")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("lr: fast\n")
    assert cli.main(["train", spec, "--fast-dev-run", "--out", str(tmp_path / "x")]) == 2
    assert "--fast-dev-run keeps nothing and runs in one process: --out does not go with it" in capsys.readouterr().err
    assert cli.main(["train", spec, "--resume", str(tmp_path), "--find-lr"]) == 2
    assert "--find-lr cannot change them" in capsys.readouterr().err
    assert cli.main(["train", spec, "--recipe", str(recipe)]) == 1
    assert "takes a number greater than 0, or auto (the range test's suggestion), got 'fast'" in \
        capsys.readouterr().err
    for flags in (["--lr", "fast"], ["--overfit-batches", "0"]):
        with pytest.raises(SystemExit) as stopped:
            cli.main(["train", spec, *flags])
        assert stopped.value.code == 2
    assert "expected a number or auto, got 'fast'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()

"""The runner as a library (cnndsl.train, evaluate, predict, export) and checkpoints that are enough by
themselves: eval and predict of a run take its spec, the files it uses, its data and seed from best.pt."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import cnndsl
from cnndsl.cli import main
from cnndsl.errors import CnnError
from conftest import SMALL


def digit_png(path, index: int = 0):
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    Image.fromarray((digits.images[index] * 255 / 16).astype("uint8")).save(path)
    return str(digits.target[index])


def test_import_cnndsl_does_not_import_torch():
    code = ("import sys, cnndsl; cnndsl.train, cnndsl.evaluate, cnndsl.predict, cnndsl.export; "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr


def test_the_api_is_listed_and_every_name_resolves_without_torch():
    code = ("import sys, cnndsl; from cnndsl import api; [getattr(cnndsl, name) for name in cnndsl.__all__]; "
            "assert set(cnndsl.__all__) <= set(dir(cnndsl)); assert set(api.__all__) <= set(cnndsl.__all__); "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr


def test_train_evaluate_predict_export_from_python(tmp_path):
    lines = []
    run = cnndsl.train(SMALL, epochs=4, lr=0.01, seed=5, out=tmp_path / "run", log=lines.append)
    assert run.out == tmp_path / "run" and len(run.history) == 4 and run.history[-1]["epoch"] == 4
    assert run.best == tmp_path / "run/best.pt" and run.best.is_file() and run.last.is_file()
    assert 1 <= run.best_epoch <= 4 and run.test_accuracy > 0.5
    assert lines[0].startswith("training small (") and "on digits:" in lines[0]
    saved = json.loads((run.out / "metrics.json").read_text())
    assert saved["test_accuracy"] == run.test_accuracy and saved["best_epoch"] == run.best_epoch
    notes = []
    again = cnndsl.evaluate(run, log=notes.append)  # its own data, split seed 5: the same test images
    assert (again.accuracy, again.data, again.seed, notes) == (run.test_accuracy, "digits", 5, [])
    assert again.loss == pytest.approx(run.test_loss, rel=1e-5)
    other = cnndsl.evaluate(run.out, seed=0, log=notes.append)
    assert other.seed == 0 and notes == ["note: seed 0: the run split its data with seed 5, so this test split is "
                                         "another"]
    label = digit_png(tmp_path / "digit.png")
    best = cnndsl.predict(run.best, tmp_path / "digit.png", top=2)
    assert len(best) == 1 and len(best[0]) == 2 and best[0][0][0] == label and best[0][0][1] > best[0][1][1]
    done = cnndsl.export(run, tmp_path / "small.pt", format="torchscript")
    assert done.path == tmp_path / "small.pt" and done.verified_by == "torch.jit.load" and done.max_difference < 1e-4


def test_train_takes_a_recipe_and_overrides(tmp_path, spec_file):
    from cnndsl.saved import load

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("epochs: 5\nlr: 0.01\nbatch_size: 64\n")
    run = cnndsl.train(spec_file(SMALL, "small.cnn"), recipe, epochs=1, out=tmp_path / "a", log=None)
    assert len(run.history) == 1
    assert load(run.last).recipe["batch_size"] == 64 and load(run.last).recipe["lr"] == 0.01
    with pytest.raises(CnnError, match="epoch"):
        cnndsl.train(SMALL, {"epochs": 0}, out=tmp_path / "b", log=None)
    assert not (tmp_path / "b").exists()


def test_eval_of_an_npz_run_needs_no_data(tmp_path, spec_file, capsys):
    from sklearn.datasets import load_digits

    digits = load_digits()
    np.savez(tmp_path / "digits.npz", x=(digits.images * 255 / 16).astype("uint8"), y=digits.target)
    spec = spec_file(SMALL, "small.cnn")
    data = f"npz:{tmp_path / 'digits.npz'}"
    assert main(["train", str(spec), "--data", data, "--seed", "11", "--epochs", "3", "--lr", "0.01",
                 "--out", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run/metrics.json").read_text())
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run")]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"test accuracy {metrics['test_accuracy']:.4f} (loss ") and out.endswith(f" on {data}\n")
    assert err == ""
    assert cnndsl.evaluate(tmp_path / "run").accuracy == metrics["test_accuracy"]
    # the same through --weights alone, and the older form with the spec file
    assert main(["eval", "--weights", str(tmp_path / "run/best.pt")]) == 0
    assert capsys.readouterr().out == out
    assert main(["eval", str(spec), "--weights", str(tmp_path / "run/best.pt")]) == 0
    assert capsys.readouterr().out == out
    # another dataset is allowed, and said
    assert main(["eval", str(tmp_path / "run"), "--data", "digits"]) == 0
    out, err = capsys.readouterr()
    assert out.endswith(" on digits\n") and err == f"note: evaluating on digits; the weights were trained on {data}\n"


def test_a_checkpoint_rebuilds_a_spec_that_uses_files(tmp_path, capsys, monkeypatch):
    from cnndsl.saved import load

    monkeypatch.chdir(tmp_path)
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib/blocks.cnn").write_text('use "std/se"\nblock pair(f) {\n'
                                             '    conv f kernel=3 padding=same activation=relu\n'
                                             '    conv f kernel=3 padding=same activation=relu\n}\n')
    main_text = ('use "lib/blocks"\nnetwork paired(classes = 10, width = 8) {\n    input 1x8x8\n    pair width\n'
                 '    maxpool 2\n    pair (width * 2)\n    globalavgpool\n    dense classes\n}\n')
    (tmp_path / "paired.cnn").write_text(main_text)
    assert main(["train", "paired.cnn", "--set", "width=6", "--epochs", "3", "--lr", "0.01", "--out", "run"]) == 0
    metrics = json.loads((tmp_path / "run/metrics.json").read_text())
    saved = load(tmp_path / "run/best.pt")
    assert saved.spec == main_text and saved.params == {"width": 6} and saved.network == "paired"
    assert saved.files == {"lib/blocks.cnn": (tmp_path / "lib/blocks.cnn").read_text()}
    (tmp_path / "paired.cnn").unlink()
    (tmp_path / "lib/blocks.cnn").unlink()
    label = digit_png(tmp_path / "digit.png", 3)
    capsys.readouterr()
    assert main(["eval", "run"]) == 0
    assert capsys.readouterr().out.startswith(f"test accuracy {metrics['test_accuracy']:.4f} ")
    assert main(["predict", "run", "digit.png", "--top", "1"]) == 0
    assert capsys.readouterr().out.startswith("digit.png: ")
    assert cnndsl.predict("run", ["digit.png"], top=10)[0][0][0] == label or metrics["test_accuracy"] < 0.9
    assert main(["export", "run", "--format", "torchscript"]) == 0
    assert (tmp_path / "paired.pt").is_file() and "wrote paired.pt" in capsys.readouterr().err


def test_saved_file_names_are_only_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "blocks.cnn").write_text("block b { conv 4 kernel=1 }")  # on disk, but not among the files given
    text = 'use "blocks"\nnetwork n { input 1x8x8\n b\n globalavgpool\n dense 10 }'
    with pytest.raises(CnnError, match="`blocks` is not among the files saved with the spec"):
        cnndsl.loads(text, files={})
    given = cnndsl.loads(text, files={"blocks.cnn": "block b { conv 5 kernel=1 }"})
    assert given.check().output == (10,) and given.check().params == 5 * 1 + 5 + 5 * 10 + 10
    with pytest.raises(CnnError, match="no standard library file `std/../api`"):
        cnndsl.loads('use "std/../api"\n' + text, files={"blocks.cnn": "block b { conv 5 kernel=1 }"})
    with pytest.raises(CnnError, match="blocks.cnn is more than the limit of 100 bytes"):
        cnndsl.loads(text, files={"blocks.cnn": "block b { conv 5 kernel=1 }" + " " * 100},
                     limits=cnndsl.Limits(spec_bytes=100))

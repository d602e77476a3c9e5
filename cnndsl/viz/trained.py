"""A trained network read back from a run, and one image prepared for it exactly as `predict` prepares it.

`read_checkpoint` reads the run through cnndsl.saved (which knows the checkpoint's keys); everything else in
viz takes a `Trained`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from cnndsl.data.arrays import one_image
from cnndsl.data.datasets import apply_normalization, input_image, load_test_split
from cnndsl.errors import UsageError
from cnndsl.saved import TRAINED_WITH, Weights, classes_of, normalization_of, weights_of
from cnndsl.spec import Spec, load


@dataclass
class Trained:
    """A network with its trained weights (eval mode, on the CPU) and what the run saved beside them."""

    path: Path  # the checkpoint read
    spec: Spec
    model: object  # the nn.Module
    classes: list[str]
    normalization: dict  # {"mean": [...], "std": [...]}, or {} when the run did not normalise
    recipe: dict = field(default_factory=dict)  # the run's recipe (data, seed, splits), {} for a bare state_dict
    _report: object = None

    @property
    def report(self):
        if self._report is None:
            self._report = self.spec.check()
        return self._report

    @property
    def name(self) -> str:
        return self.report.analysis.graph.name


@dataclass
class Sample:
    """One image: as shown (C, H, W, unnormalised, at the input's size) and as the network takes it."""

    shown: object  # float tensor (C, H, W)
    x: object  # float tensor (1, C, H, W), normalised as the run was
    source: str  # "test image 17" or the file's name
    tag: str  # for file names: "test17" or the file's stem
    label: str | None = None  # the true class of a dataset sample


def read_checkpoint(run: str | Path, spec_file: str | None = None, network: str | None = None,
                    sets: dict | None = None) -> Trained:
    """The network of a run: its spec (the text saved in the checkpoint, or `spec_file`), weights and data notes.

    `sets` are --set values over those the run was trained with. A bare state_dict, or a checkpoint of a
    cnndsl that saved no spec text, needs `spec_file`.
    """
    spec = load(Path(spec_file), network, **(sets or {})) if spec_file is not None else None
    return trained(weights_of(run, spec, network, sets))


def trained(weights: Weights) -> Trained:
    """The network of weights read from a run (cnndsl.saved.weights_of), built with them, and what the run saved."""
    report = weights.spec.check()
    model = weights.build(f"{TRAINED_WITH} (--spec FILE --set KEY=VALUE)")
    saved = weights.saved  # the Checkpoint, or None for a bare state_dict
    recipe = saved.recipe if saved is not None and isinstance(saved.recipe, dict) else {}
    return Trained(Path(weights.where), weights.spec, model, classes_of(saved, report.output[0]),
                   normalization_of(saved, report.input, weights.where), recipe, report)


def sample(trained: Trained, image=None, index: int | None = None) -> Sample:
    """An image file (a str), an image given in Python (an array or a tensor, as data.arrays.one_image takes it),
    or the test-set image `index` of the run's dataset and split (default: the first)."""
    import torch

    shape = trained.report.input
    if len(shape) != 3:
        raise UsageError(f"{trained.name} takes {shape[0]} values, not an image: there are no maps to show")
    if image is not None and index is not None:
        raise UsageError("give an image file or --index N, not both")
    if isinstance(image, str):
        x = input_image(Path(image), shape)
        source, tag, label = Path(image).name, _safe(Path(image).stem), None
    elif image is not None:
        x = one_image(image, shape)
        source, tag, label = "the image given", "image", None
    else:
        x, y = _test_image(trained, index or 0)
        source, tag, label = f"test image {index or 0}", f"test{index or 0}", trained.classes[y]
    x = x.to(torch.float32)
    return Sample(x[0], apply_normalization(x, trained.normalization), source, tag, label)


def _test_image(trained: Trained, index: int):
    """Image `index` of the test split, cut with the run's data, seed and splits as training cut it."""
    recipe = trained.recipe
    if not recipe.get("data"):
        raise UsageError(f"{trained.path} does not say which data it was trained on", hint="give an image file")
    splits = recipe.get("splits") if isinstance(recipe.get("splits"), dict) else None
    test = load_test_split(str(recipe["data"]), trained.report.input, int(recipe.get("seed", 0)), splits=splits)
    if not 0 <= index < len(test):
        raise UsageError(f"--index {index}: the test split of {recipe['data']} has {len(test)} images "
                         f"(0 to {len(test) - 1})")
    return test.x[index:index + 1], int(test.y[index])


def _safe(text: str) -> str:
    """A name for a file: letters and digits of any script (a class 장미 stays 장미), '.', '_' and '-'; the rest,
    separators and control characters among them, become '_'."""
    import unicodedata

    return re.sub(r"[^\w.-]+", "_", unicodedata.normalize("NFC", text)).strip("._") or "image"

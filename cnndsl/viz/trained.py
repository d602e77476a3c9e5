"""A trained network read back from a run, and one image prepared for it exactly as `predict` prepares it.

`read_checkpoint` is the one place that knows the checkpoint's keys; everything else here takes a `Trained`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from cnndsl.errors import CnnError, UsageError


@dataclass
class Trained:
    """A network with its trained weights (eval mode, on the CPU) and what the run saved beside them."""

    path: Path  # the checkpoint read
    spec: object  # a cnndsl.Spec
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
    from cnndsl.training.checkpoint import find, read_weights
    from cnndsl.training.infer import _classes, _normalization
    from cnndsl.weights import load_weights

    path = find(run)
    state, saved = read_weights(path)  # saved: the Checkpoint, or None for a bare state_dict
    spec = _spec(saved, path, spec_file, network, sets or {})
    report = spec.check()
    model = spec.build()
    try:
        load_weights(model, state)
    except CnnError as e:
        raise CnnError(f"{path}: {e.message}", hint="give the spec and --set values the weights were trained with "
                       "(--spec FILE --set KEY=VALUE)") from None
    recipe = saved.recipe if saved is not None and isinstance(saved.recipe, dict) else {}
    return Trained(path, spec, model.eval(), _classes(saved, report.output[0]),
                   _normalization(saved, report.input, path), recipe, report)


def _spec(saved, path: Path, spec_file: str | None, network: str | None, sets: dict):
    """`spec_file`, or the network the checkpoint holds (its text, the files it uses, its --set values)."""
    from cnndsl.api import load
    from cnndsl.training.checkpoint import spec_of

    if spec_file is not None:
        return load(Path(spec_file), network, **sets)
    return spec_of(saved, path, network, sets)


def sample(trained: Trained, image: str | None = None, index: int | None = None) -> Sample:
    """An image file, or the test-set image `index` of the run's dataset and split (default: the first)."""
    import torch

    from cnndsl.training.data import apply_normalization

    shape = trained.report.input
    if len(shape) != 3:
        raise UsageError(f"{trained.name} takes {shape[0]} values, not an image: there are no maps to show")
    if image is not None and index is not None:
        raise UsageError("give an image file or --index N, not both")
    if image is not None:
        from cnndsl.training.infer import _read_image

        x = _read_image(Path(image), shape)
        source, tag, label = Path(image).name, _safe(Path(image).stem), None
    else:
        x, y = _test_image(trained, index or 0)
        source, tag, label = f"test image {index or 0}", f"test{index or 0}", trained.classes[y]
    x = x.to(torch.float32)
    return Sample(x[0], apply_normalization(x, trained.normalization), source, tag, label)


def _test_image(trained: Trained, index: int):
    """Image `index` of the test split, cut with the run's data, seed and splits as training cut it."""
    from cnndsl.training.data import load_dataset

    recipe = trained.recipe
    if not recipe.get("data"):
        raise UsageError(f"{trained.path} does not say which data it was trained on", hint="give an image file")
    splits = recipe.get("splits") if isinstance(recipe.get("splits"), dict) else None
    test = load_dataset(str(recipe["data"]), trained.report.input, int(recipe.get("seed", 0)), splits=splits).test
    if not 0 <= index < len(test):
        raise UsageError(f"--index {index}: the test split of {recipe['data']} has {len(test)} images "
                         f"(0 to {len(test) - 1})")
    return test.x[index:index + 1], int(test.y[index])


def _safe(text: str) -> str:
    """A name for a file: letters, digits, '.', '_' and '-'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "image"

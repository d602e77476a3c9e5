"""A fast dev run (Lightning's `fast_dev_run`): the whole run on one batch of each split, kept nowhere.

It is the runner itself, not an imitation of it: the run of training/loop.py, its setup, checks, steps and the
caller's steps (the page), into a temporary folder outside runs/, with every split cut to one batch
(training/guard.py) and the epochs cut to two: epoch 1 trains, validates and saves its checkpoints, the plots
and the page; then the run is resumed from its last.pt, as `--resume` reads it (its recipe from the
checkpoint), and trains epoch 2 and tests. A recipe with phases gets one epoch a phase, so each phase's
freezing and optimizer is entered. The folder is removed after, whether the run passed or not: the error it
stops with is the one the long run would have met.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from cnndsl import saved
from cnndsl.training.guard import Guard
from cnndsl.training.loop import RunResult, train
from cnndsl.training.recipe import Recipe, recipe_of_checkpoint

SWEEP_STEPS = 4  # the range test's steps in a fast dev run: its code runs, its curve means nothing


def fast_dev_run(spec, recipe: Recipe, device: str = "auto", log=print, steps: Callable[[], list] = list,
                 data=None, callbacks: list = (), guard: Guard | None = None) -> RunResult:
    """Runs `spec` as train() would, on one batch of each split, through a checkpoint and a resume; keeps nothing.
    `steps` makes the caller's epoch-end steps (fresh ones for each part). The result's `out` no longer exists."""
    started = time.perf_counter()
    guard = replace(guard or Guard(), batches=1, sweep_steps=min((guard or Guard()).sweep_steps, SWEEP_STEPS))
    short = shortened(recipe)
    folder = Path(tempfile.mkdtemp(prefix="cnndsl-fast-dev-run-"))
    out = folder / "run"
    try:
        train(spec, replace(short, epochs=1), out, device=device, log=log, steps=steps(), data=data,
              callbacks=callbacks, guard=guard)
        resumed = recipe_of_checkpoint(saved.load(out / "last.pt").recipe, str(out / "last.pt"))
        result = train(spec, replace(resumed, epochs=short.epochs), out, resume=True, device=device, log=log,
                       steps=steps(), data=data, callbacks=callbacks, guard=guard)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    log(f"fast dev run: passed in {time.perf_counter() - started:.1f} s (one batch of each split, 2 epochs, a "
        "checkpoint and a resume, the plots and the page); nothing was kept")
    return result


def shortened(recipe: Recipe) -> Recipe:
    """Two epochs; with phases, one epoch each (two for a single phase)."""
    if not recipe.phases:
        return replace(recipe, epochs=2)
    phases = [{**phase, "epochs": 1} for phase in recipe.phases]
    if len(phases) == 1:
        phases[0]["epochs"] = 2
    return replace(recipe, phases=phases, epochs=sum(p["epochs"] for p in phases))

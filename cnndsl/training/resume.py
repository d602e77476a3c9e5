"""A run into a checkpoint and back: `capture` at each epoch's end, `restore` for `--resume`.

What a checkpoint holds, and how old ones are read, is cnndsl/saved.py's; this module only says
where each part of a running run goes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from cnndsl.errors import CnnError, printable
from cnndsl.saved import Checkpoint

if TYPE_CHECKING:
    from cnndsl.training.setup import Run


def capture(run: Run) -> Checkpoint:
    """The run as it is now: weights, provenance, history, and what resumes it exactly."""
    recipe = run.recipe
    data = {"name": recipe.data, "splits": dict(recipe.splits), "seed": recipe.seed, "input": list(run.input_shape),
            "notes": list(run.data.notes)}
    states = {step.name: step.state() for step in run.steps}
    resume = {"phase": run.phases.index, "optimizer": run.phases.optimizer.state_dict(),
              "schedule": run.phases.schedule.state(), "rng": run.rngs.state(),
              "steps": {name: state for name, state in states.items() if state}}  # steps that keep something
    if run.net.amp.scaler is not None:  # float16's loss scale, so that a resumed run scales as this one would
        resume["scaler"] = run.net.amp.scaler.state_dict()
    program = run.spec.program
    return Checkpoint(model=run.net.model.state_dict(), spec=run.spec.text, params=_params(run.spec),
                      files=dict(program.sources), network=run.spec.graph.name,
                      classes=run.data.classes, normalization=run.data.normalization, data=data,
                      recipe=recipe.to_dict(), history=run.history, resume=resume)


def restore(run: Run, saved: Checkpoint) -> None:
    """Continues `run` where `saved` left it: same weights, optimizer, schedule, random streams and steps."""
    _load_model(run, saved)
    state = saved.resume
    with _part(run, "resume.phase"):
        run.enter_phase(state["phase"], log=lambda line: None)  # the optimizer of the phase the run was in
    with _part(run, "resume.optimizer"):
        run.phases.optimizer.load_state_dict(state["optimizer"])
    with _part(run, "resume.schedule"):
        run.phases.schedule.load(state["schedule"])
    with _part(run, "resume.rng"):
        run.rngs.load(state["rng"])
    if run.net.amp.scaler is not None and "scaler" in state:  # (a run resumed with other amp has none)
        with _part(run, "resume.scaler"):
            run.net.amp.scaler.load_state_dict(state["scaler"])
    with _part(run, "history"):
        missing = [key for row in saved.history for key in ROW if key not in row]
        if missing:
            raise KeyError(missing[0])
        run.history = saved.history
    for step in run.steps:
        if step.name in state["steps"]:
            with _part(run, f"resume.steps.{step.name}"):
                step.load(state["steps"][step.name])
    run.log(f"resuming {printable(str(run.out))} after epoch {len(run.history)} of {run.recipe.epochs}")


ROW = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr")  # what each epoch's row holds (and plots draw)


@contextmanager
def _part(run: Run, name: str) -> Iterator[None]:
    """A part of last.pt put back into the run: one that does not fit it (of checked types, but of another run's
    shape, or damaged) is an error that names it."""
    try:
        yield
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as e:
        raise CnnError(f"{run.out / 'last.pt'}: its `{name}` does not fit this run ({type(e).__name__}: "
                       f"{str(e).splitlines()[0][:200] if str(e) else ''}): it is damaged or not cnndsl's",
                       hint=f"start a new run from its weights: --init {run.out / 'last.pt'}") from None


def _load_model(run: Run, saved: Checkpoint) -> None:
    """The checkpoint's weights, or an error saying that the run was trained with another network."""
    ours = run.net.model.state_dict()
    theirs = saved.model if isinstance(saved.model, dict) else {}
    differences = [f"{name} is missing from the checkpoint" for name in ours if name not in theirs]
    differences += [f"{name} is {tuple(theirs[name].shape)} in the checkpoint, {tuple(t.shape)} here"
                    for name, t in ours.items() if name in theirs and tuple(theirs[name].shape) != tuple(t.shape)]
    differences += [f"the checkpoint has {name}, this network does not" for name in theirs if name not in ours]
    if not differences:
        run.net.model.load_state_dict(theirs)
        return
    trained = saved.params or {}
    sets = " ".join(f"--set {k}={v}" for k, v in trained.items()) if isinstance(trained, dict) else ""
    changed = " (and its spec text differs from this one)" if saved.spec != run.spec.text else ""
    raise CnnError(f"{run.out} was trained with another network or other --set values{changed}: "
                   f"{differences[0]}" + (f" (and {len(differences) - 1} more)" if len(differences) > 1 else ""),
                   hint=f"resume with the spec file that run was trained with, and its --set values "
                   f"({sets or 'none'}); to train this network from its weights, start a new run with "
                   f"--init {run.out / 'best.pt'}")


def _params(spec) -> dict:
    return {k: str(v) if not isinstance(v, (int, float, bool, str)) else v for k, v in spec.params.items()}

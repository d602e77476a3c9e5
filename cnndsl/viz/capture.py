"""Layer outputs captured with forward hooks, by the report's layer names.

The generated modules compute in place where autograd allows (`nn.ReLU(inplace=True)`, a residual's
`out += shortcut`), so the tensor a conv returns is overwritten by the ReLU after it: a hook that kept it
would hold post-ReLU values. While capturing, every module's `inplace` flag is turned off.
"""

from __future__ import annotations

import contextlib

from cnndsl.errors import UsageError, did_you_mean


@contextlib.contextmanager
def not_in_place(model):
    """Every module with an `inplace` flag computes out of place inside the block, as it did after."""
    changed = [m for m in model.modules() if getattr(m, "inplace", None) is True]
    for m in changed:
        m.inplace = False
    try:
        yield model
    finally:
        for m in changed:
            m.inplace = True


def module_of(model, report, name: str):
    """The module whose output is layer `name` of the report.

    A merge (a residual's `add`, a `concat`) is no module of its own: its output is its group's module's.
    """
    if name not in report.analysis.by_id or name == report.analysis.graph.input.id:
        names = [f.layer.id for f in report.analysis.layers[1:]]
        raise UsageError(f"no layer `{name}` in {report.analysis.graph.name}",
                         hint=did_you_mean(name, names) or f"its layers: {', '.join(names[:10])}"
                         + (f" ... ({len(names)}; `cnndsl check` lists them)" if len(names) > 10 else ""))
    for path in _candidates(report, name):
        try:
            return model.get_submodule(path)
        except AttributeError:
            continue
    raise UsageError(f"layer `{name}` is computed inside its block's module and cannot be captured on its own",
                     hint="name a layer before or after it")


def _candidates(report, name: str) -> list[str]:
    """`name`, then the groups it is the last layer of, innermost first."""
    layers = report.analysis.graph.layers
    found = [name]
    for group in reversed(report.layer(name).layer.groups):
        inside = [la.id for la in layers if group in la.groups]
        if inside and inside[-1] == name:
            found.append(group)
        else:
            break
    return found


def capture(model, report, x, names: list[str]):
    """(the network's scores for `x`, {name: that layer's output}), computed without gradients."""
    import torch

    outputs: dict = {}
    hooks = [_hook(model, report, name, outputs) for name in names]
    try:
        with not_in_place(model), torch.no_grad():
            scores = logits(model)(x)
    finally:
        for hook in hooks:
            hook.remove()
    missing = [n for n in names if n not in outputs]
    if missing:
        raise UsageError(f"layer `{missing[0]}` did not run for this input")
    return scores, outputs


def _hook(model, report, name: str, outputs: dict):
    """A hook on the layer's module; for a sum or merge that its block's forward computes (`out += identity`),
    a pre-hook on a layer that reads it, whose input is that sum."""
    try:
        return module_of(model, report, name).register_forward_hook(_keeper(outputs, name))
    except UsageError:
        readers = [f.layer.id for f in report.analysis.layers if f.layer.inputs == [name]]
        for reader in readers:
            try:
                module = module_of(model, report, reader)
            except UsageError:
                continue
            return module.register_forward_pre_hook(lambda m, inputs: outputs.__setitem__(
                name, inputs[0].detach().clone()))
        raise


def _keeper(outputs: dict, name: str):
    def hook(module, inputs, output):
        outputs[name] = output.detach().clone()

    return hook


def logits(model):
    """The scores before a final softmax (a generated module that ends in one says so), else the module."""
    return model.logits if getattr(model, "ends_in_softmax", False) else model

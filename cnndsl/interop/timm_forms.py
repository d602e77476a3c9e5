"""timm's modules that are registry layers under another class: read from their public attributes, never by
importing timm (the import runs wherever the model was made; timm is not a dependency).

- `BatchNormAct2d`: a BatchNorm2d whose forward is `F.batch_norm` on its own tensors, then `drop`, then `act`:
  `batchnorm activation=KIND` where `drop` is an identity and `act` an activation without arguments (or none);
- `SelectAdaptivePool2d`: `pool` then `flatten`: `globalavgpool` (`keepdims=true` where it does not flatten)
  for the average pools of size 1 (`FastAdaptiveAvgPool`'s mean and `nn.AdaptiveAvgPool2d(1)`);
- `Linear`: nn.Linear whose forward is `F.linear` on its own tensors: `dense`.

Each is matched by its class's full path in timm (timm.layers.norm_act.BatchNormAct2d), so that another
class of the same name is not taken for it; a form whose attributes say something cnndsl cannot write is
refused, saying which.
"""

from __future__ import annotations

from torch import nn

from cnndsl.interop import torch_layers
from cnndsl.interop.torch_layers import Layer, Refused
from cnndsl.ops import ACTIVATIONS


def _timm_class(m: nn.Module) -> str:
    """The class's module and name, `timm.layers.norm_act.BatchNormAct2d` (the key of `_FORMS`)."""
    return f"{type(m).__module__}.{type(m).__qualname__}"


def known(m: nn.Module) -> bool:
    """Whether the registry has a kind for this module: torch_layers.known, or a timm form."""
    return _timm_class(m) in _FORMS or torch_layers.known(m)


def module_layer(m: nn.Module) -> Layer | Refused:
    """torch_layers.module_layer, or the form of a timm module."""
    name = _timm_class(m)
    return _FORMS[name](m) if name in _FORMS else torch_layers.module_layer(m)


def _batchnorm_act(m: nn.Module) -> Layer | Refused:
    if not isinstance(m.drop, nn.Identity):
        return Refused(f"its drop {type(m.drop).__name__}: a spec writes it as a layer of its own")
    layer = torch_layers.module_layer(m, "BatchNorm2d")
    if not isinstance(layer, Layer) or isinstance(m.act, nn.Identity):
        return layer
    known_act = torch_layers.known(m.act)
    act = torch_layers.module_layer(m.act) if known_act else Refused(f"its activation {type(m.act).__name__}")
    if isinstance(act, Refused) or act.kind not in ACTIVATIONS or act.values:
        reason = act.reason if isinstance(act, Refused) else f"its activation {act.kind} {act.values}"
        return Refused(f"{reason} is no `activation=` word")
    return Layer("batchnorm", {**layer.values, "activation": act.kind})


def _adaptive_pool(m: nn.Module) -> Layer | Refused:
    pool = m.pool
    if type(pool).__name__ == "FastAdaptiveAvgPool" and tuple(getattr(pool, "dim", ())) in ((2, 3), (-2, -1)) \
            and isinstance(m.flatten, nn.Identity):
        return Layer("globalavgpool", {"keepdims": not pool.flatten})
    if isinstance(pool, nn.AdaptiveAvgPool2d) and pool.output_size in (1, (1, 1)):
        return Layer("globalavgpool", {"keepdims": not isinstance(m.flatten, nn.Flatten)})
    return Refused(f"pool_type={m.pool_type!r}: cnndsl's global pool is the average")


def _linear(m: nn.Module) -> Layer | Refused:
    return torch_layers.module_layer(m, "Linear")


_FORMS = {"timm.layers.norm_act.BatchNormAct2d": _batchnorm_act,
          "timm.layers.adaptive_avgmax_pool.SelectAdaptivePool2d": _adaptive_pool,
          "timm.layers.linear.Linear": _linear}

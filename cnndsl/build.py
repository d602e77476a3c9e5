"""Generated source → nn.Module. The only place where the compiler's output is executed."""

from __future__ import annotations

import sys
import types

from cnndsl.ops.base import Symbol


def build_module(source: str, class_name: str, params: dict):
    """Runs the generated source as a module of its own and instantiates the network class.

    The source is what the code generator wrote from a checked spec, never the spec text itself.
    """
    module = types.ModuleType(f"cnndsl_generated_{class_name.lower()}")
    module.__file__ = f"<cnndsl {class_name}>"
    sys.modules[module.__name__] = module  # so that torch.compile and pickling can find the classes
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    network = getattr(module, class_name)
    return network(**{k: _plain(v) for k, v in params.items()})


def _plain(value):
    if isinstance(value, Symbol):
        return value.name
    return value

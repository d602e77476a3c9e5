"""What generated code may contain: a check, independent of how the code was written, before it runs.

User text reaches the source only through string literals (ops/source.literal); this second check refuses
to run any source that would do more than build modules, should a bug ever let text through.
"""

from __future__ import annotations

import ast

from cnndsl.errors import CnnError
from cnndsl.ops import plugins

_IMPORTS = {"math", "torch", "torch.nn.functional", "torch.nn", "collections"}
FORBIDDEN = {"eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "delattr", "globals", "locals",
             "vars", "breakpoint", "input", "exit", "quit", "help", "memoryview", "__builtins__", "__loader__",
             "__spec__", "os", "sys", "subprocess", "builtins", "importlib"}
_DUNDERS = {"__init__", "__name__"}


def vet(source: str) -> None:
    """Refuses generated source that imports anything but torch, math, collections' OrderedDict and the module
    classes of the enabled plugins (each by its dotted path), or reaches for the host."""
    plugin_paths = set(plugins.torch_classes().values())
    for node in ast.walk(ast.parse(source)):
        bad = None
        if isinstance(node, ast.Import):
            bad = next((a.name for a in node.names if a.name not in _IMPORTS - {"collections"}), None)
        elif isinstance(node, ast.ImportFrom):
            allowed = node.module in _IMPORTS and (node.module != "collections"
                                                   or [a.name for a in node.names] == ["OrderedDict"])
            allowed = allowed or all(f"{node.module}.{a.name}" in plugin_paths and a.asname is None and node.level == 0
                                     for a in node.names)
            bad = None if allowed else f"from {node.module}"
        elif isinstance(node, ast.Name) and (node.id in FORBIDDEN or _dunder(node.id)):
            bad = node.id
        elif isinstance(node, ast.Attribute) and _dunder(node.attr):
            bad = node.attr
        if bad is not None:
            raise CnnError(f"refusing to run the generated code: it uses `{bad}` (line {node.lineno})",
                           hint="this is a bug in cnndsl, not in your spec; please report it with the spec")


def _dunder(name: str) -> bool:
    return name.startswith("__") and name not in _DUNDERS

"""The package's layers, read from its sources: no import circle anywhere in cnndsl/, and each part imports
only the parts below it (docs: "Who may import whom" in the design notes, and README's table).

    core      the compiler and what every part uses: syntax, elaborate, graph, ops, analysis, report,
              codegen, build, spec, files, weights, errors, limits, memory... (every module not named below)
    data      datasets and images as a network takes them        imports the core
    saved     a saved run: the checkpoint format and its network  imports the core
    training, viz, exporter                                       import the core, data and saved; never each other
    lsp       the language server (cnndsl lsp)                   imports the core only (never torch)
    api       the facade (and cnndsl/__init__.py, notebook.py)    imports anything but the CLI
    cli       the command line                                    imports the API, errors and limits only

Every import counts, those inside functions too, except under `if TYPE_CHECKING:` (annotations only).
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "cnndsl"

LAYER_OF = {"cnndsl": "api", "cnndsl.api": "api", "cnndsl.notebook": "api", "cnndsl.cli": "cli",
            "cnndsl.__main__": "cli", "cnndsl.data": "data",
            "cnndsl.saved": "saved", "cnndsl.training": "training", "cnndsl.viz": "viz", "cnndsl.exporter": "exporter",
            "cnndsl.lsp": "lsp"}  # a module in none of these (or its package) is the core's
MAY_IMPORT = {
    "core": {"core"},
    "data": {"core", "data"},
    "saved": {"core", "saved"},
    "training": {"core", "data", "saved", "training"},
    "viz": {"core", "data", "saved", "viz"},
    "exporter": {"core", "saved", "exporter"},
    "lsp": {"core", "lsp"},
    "api": {"core", "data", "saved", "training", "viz", "exporter", "lsp", "api"},
}
CLI_MAY_IMPORT = {"cnndsl", "cnndsl.api", "cnndsl.errors", "cnndsl.limits",  # exit codes and option defaults
                  "cnndsl.cli"}  # `python -m cnndsl` (__main__.py) is the command line


def modules() -> dict[str, Path]:
    """Every module of the package by its dotted name (a package by its own name)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _annotation_only(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING" or \
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that `name` imports, wherever in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {id(n) for node in ast.walk(tree) if _annotation_only(node) for part in node.body for n in ast.walk(part)}
    here = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = here.split(".")[:len(here.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            for a in node.names:  # `from cnndsl import saved` imports the module cnndsl.saved
                full = f"{base}.{a.name}"
                found |= {full} if full in known else {base} if base in known else set()
    return found - {name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def layer(module: str) -> str:
    """The part a module belongs to: its own entry or its package's; the core when none has one."""
    if module == "cnndsl":
        return LAYER_OF[module]
    while module != "cnndsl":
        if module in LAYER_OF:
            return LAYER_OF[module]
        module = module.rpartition(".")[0]
    return "core"


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected sets of more than one module (Tarjan's algorithm, without recursion)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                part = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    part.append(w)
                    if w == v:
                        break
                if len(part) > 1:
                    out.append(sorted(part))
    return out


def test_the_graph_is_read_as_python_imports_it():
    edges = graph()
    assert "cnndsl.saved" in edges["cnndsl.training.loop"]  # `from cnndsl import saved`
    assert "cnndsl.training.setup" not in edges["cnndsl.training.resume"]  # under `if TYPE_CHECKING:` only
    assert "cnndsl.viz.runpage" in edges["cnndsl.api"]  # inside a function
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle():
    found = circles(graph())
    assert not found, "import circles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_each_part_imports_only_the_parts_below_it():
    wrong = []
    for module, targets in sorted(graph().items()):
        mine = layer(module)
        for target in sorted(targets):
            allowed = target in CLI_MAY_IMPORT if mine == "cli" else layer(target) in MAY_IMPORT[mine]
            if not allowed:
                wrong.append(f"{module} ({mine}) imports {target} ({layer(target)})")
    assert not wrong, "\n".join(wrong)


def test_the_named_parts_exist():
    """The table names real modules (a part renamed would leave the rules checking nothing)."""
    known = modules()
    assert set(LAYER_OF) <= set(known)
    assert {layer(m) for m in known} == set(MAY_IMPORT) | {"cli"}

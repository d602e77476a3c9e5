"""Phase 3: checked spec → readable, standalone PyTorch source (imports only torch)."""

from __future__ import annotations

from cnndsl.codegen.files import shown
from cnndsl.codegen.generator import Generator, Unsupported
from cnndsl.codegen.naming import pyname
from cnndsl.codegen.vet import vet
from cnndsl.elaborate import pick_network
from cnndsl.ops.source import docstring
from cnndsl.syntax.loader import Program
from cnndsl.version import __version__


def generate(program: Program, network: str | None, source: str, overrides: dict | None = None,
             ends_in_softmax: bool = False) -> tuple[str, str]:
    """The file's text and the network's class name. Check the spec first: this assumes it is valid.

    `source` names the spec in the file's docstring: by its file name alone, never a path of the machine."""
    definition = pick_network(program, network)
    header = docstring(f"{definition.name}, compiled by cnndsl {__version__} from {shown(source)}.", "",
                       "Generated code: edit the spec and compile again rather than editing this file.", "")
    return Generator(program).module(definition, header, overrides or {}, ends_in_softmax)


__all__ = ["Unsupported", "generate", "pyname", "vet"]

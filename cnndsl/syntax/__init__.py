"""Phase 1: text → syntax tree (Lark LALR; every node keeps its span)."""

from cnndsl.syntax.parser import parse

__all__ = ["parse"]

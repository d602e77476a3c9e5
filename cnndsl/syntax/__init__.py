"""Phase 1: text → syntax tree (Lark LALR, recovering from errors; every node keeps its span); tree → text."""

from cnndsl.syntax.parser import Parsed, parse, parse_tolerant

__all__ = ["Parsed", "parse", "parse_tolerant"]

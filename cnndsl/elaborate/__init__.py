"""Phase 2: AST → layer graph (blocks, repeat, if, use and parameters expanded; shapes inferred)."""

from cnndsl.elaborate.core import Elaborated, elaborate, parse_value, pick_network

__all__ = ["Elaborated", "elaborate", "parse_value", "pick_network"]

"""Phase 2: AST → layer graph (blocks, repeat, if, use and parameters expanded; shapes inferred)."""

from cnndsl.elaborate.core import DEFAULT_MAX_LAYERS, Elaborated, elaborate, parse_value, pick_network

__all__ = ["DEFAULT_MAX_LAYERS", "Elaborated", "elaborate", "parse_value", "pick_network"]

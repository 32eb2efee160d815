"""Search space: the architecture value and the functional-layer space (no torch here)."""

from src.space.architecture import AUTHORS_OPS, Architecture, Layer, from_authors, live_layers, to_authors
from src.space.space import (GRAPH_OPS, OP_FAMILIES, SHARING_MODES, TEXT_OPS, Context, FunctionalSpace, arch_contexts,
                             op_families)

__all__ = ["AUTHORS_OPS", "GRAPH_OPS", "OP_FAMILIES", "SHARING_MODES", "TEXT_OPS", "Architecture", "Context",
           "FunctionalSpace", "Layer", "arch_contexts", "from_authors", "live_layers", "op_families", "to_authors"]

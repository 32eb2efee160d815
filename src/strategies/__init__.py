"""Search strategies (pure logic, seeded, resumable)."""

from src.strategies.base import SearchStrategy
from src.strategies.evolution import AgingEvolution, Evolution, RandomSearch, build_strategy

__all__ = ["AgingEvolution", "Evolution", "RandomSearch", "SearchStrategy", "build_strategy"]

"""Search strategies (pure logic, seeded, resumable)."""

from src.strategies.base import SearchStrategy
from src.strategies.evolution import Evolution, RandomSearch, build_strategy

__all__ = ["Evolution", "RandomSearch", "SearchStrategy", "build_strategy"]

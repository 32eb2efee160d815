"""Search strategies (pure logic, seeded, resumable), found by name in :data:`STRATEGIES`."""

from src.strategies.base import STRATEGIES, SearchStrategy, build_strategy, register_strategy, strategy_settings
from src.strategies.evolution import AgingEvolution, Evolution, RandomSearch

__all__ = ["STRATEGIES", "AgingEvolution", "Evolution", "RandomSearch", "SearchStrategy", "build_strategy",
           "register_strategy", "strategy_settings"]

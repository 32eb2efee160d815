"""The paper's evolutionary search, aging (regularised) evolution and random search at the same
evaluation budget."""

from __future__ import annotations

from typing import Any, Mapping

from src.space import Architecture, FunctionalSpace
from src.strategies.base import SearchStrategy, register_strategy


def _check_mutation_rate(rate: float) -> None:
    if not 0 < rate <= 1:
        raise ValueError(f"mutation_rate must be in (0, 1] (0 can never make a new child), got {rate}")


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _given(settings: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: settings[k] for k in keys if settings.get(k) is not None}


def _unseen_child(space: FunctionalSpace, parent: Architecture, rng, rate: float, seen: set[Architecture],
                  max_tries: int) -> Architecture:
    """A mutation of ``parent`` not in ``seen``; when ``max_tries`` mutations were all seen (a small space
    nearly exhausted around the parent), a random unseen architecture instead, so the search still
    scores its whole budget, which the config checks keep within the space's size (it ended in an
    error after the supernet had trained and most candidates were scored)."""
    for _ in range(max_tries):
        child = space.mutate(parent, rng, rate)
        if child not in seen:
            return child
    return space.sample_distinct(1, rng, exclude=seen)[0]


def _budget(space: FunctionalSpace, seed: int, settings: Mapping[str, Any]) -> int:
    """``settings``' budget, else the evolution's with the same population, rounds and parents."""
    if settings.get("budget") is not None:
        return settings["budget"]
    return Evolution(space, seed, **_given(settings, ("population", "rounds", "parents"))).budget


@register_strategy
class Evolution(SearchStrategy):
    """``population`` distinct random candidates, then ``rounds`` rounds in which each of the
    current top ``parents`` (over everything scored so far) yields one mutated child.

    Children are valid, differ from their parent and from every candidate proposed before (no
    candidate is scored twice). Paper: 500 + 5 x 100 = 1,000 evaluations, mutation rate 0.05.
    """

    name = "evolution"
    SETTINGS = ("population", "rounds", "parents", "mutation_rate")

    def __init__(self, space: FunctionalSpace, seed: int = 0, population: int = 500, rounds: int = 5,
                 parents: int = 100, mutation_rate: float = 0.05, max_tries: int = 1000):
        super().__init__(space, seed)
        if population < 1 or parents < 1 or rounds < 0:
            raise ValueError("population and parents must be >= 1, rounds >= 0")
        _check_mutation_rate(mutation_rate)
        self.population, self.rounds, self.parents = population, rounds, parents
        self.mutation_rate = mutation_rate
        self.max_tries = max_tries

    @classmethod
    def settings_problem(cls, settings: Mapping[str, Any]) -> tuple[str, str] | None:
        if settings.get("budget") is not None:  # its evaluations are its population and rounds: a budget was ignored
            return ("budget", "null for strategy=evolution (it scores strategy.population + strategy.rounds x "
                    "strategy.parents candidates: set those; strategy=aging and strategy=random take a budget)")
        return None

    def settings(self) -> dict:
        return {"population": self.population, "rounds": self.rounds, "parents": self.parents,
                "mutation_rate": self.mutation_rate}

    @property
    def budget(self) -> int:
        # a round mutates the top `parents` of everything scored so far: min(parents, scored)
        # children, so with more parents than the population the first rounds grow
        n = self.population
        for _ in range(self.rounds):
            n += min(self.parents, n)
        return n

    def _seen(self) -> set[Architecture]:
        return set(self.scores) | set(self.pending)

    def _propose(self) -> list[Architecture]:
        if self.stage == 0:
            return self.space.sample_distinct(self.population, self.rng)
        if self.stage > self.rounds:
            return []
        seen = self._seen()
        children = []
        for parent, _ in self.ranked(self.parents):
            child = _unseen_child(self.space, parent, self.rng, self.mutation_rate, seen, self.max_tries)
            seen.add(child)
            children.append(child)
        return children


@register_strategy
class AgingEvolution(SearchStrategy):
    """Aging (regularised) evolution (Real et al., AAAI 2019), the search AutoGL runs over the
    graph space: ``population`` distinct random candidates, then one child at a time until
    ``budget`` candidates are scored. Each child mutates the best of ``sample_size`` distinct
    members drawn uniformly from the population (all of them when it has no more; AutoGL draws
    without replacement too), joins it, and the population's oldest member leaves it. The
    population is therefore always the last ``population`` candidates scored, so :attr:`history`
    is all the state it needs for resume.

    Children are valid, differ from their parent and from every candidate proposed before (no
    candidate is scored twice, as in :class:`Evolution`). A child depends on every score before
    it, so each batch holds one child.
    """

    name = "aging"
    # rounds and parents size the budget when it is not given
    SETTINGS = ("population", "sample_size", "budget", "mutation_rate", "rounds", "parents")

    def __init__(self, space: FunctionalSpace, seed: int = 0, population: int = 500, sample_size: int = 100,
                 budget: int = 1000, mutation_rate: float = 0.05, max_tries: int = 1000):
        super().__init__(space, seed)
        if population < 1 or sample_size < 1 or budget < population:
            raise ValueError(f"aging evolution needs population >= 1, sample_size >= 1 and budget >= population; "
                             f"got {population}, {sample_size}, {budget}")
        _check_mutation_rate(mutation_rate)
        self.population, self.sample_size, self._budget = population, sample_size, budget
        self.mutation_rate = mutation_rate
        self.max_tries = max_tries

    @classmethod
    def from_settings(cls, space: FunctionalSpace, seed: int, settings: Mapping[str, Any]) -> AgingEvolution:
        """The evolution's budget unless ``budget`` is given, and a fifth of the population as the
        sample unless ``sample_size`` is (given as 0, refused: ``or`` took a fifth)."""
        population = settings["population"] if settings.get("population") is not None else 500
        sample_size = settings.get("sample_size")
        if sample_size is None:
            sample_size = max(1, round(population / 5))  # AutoGL: 100 of 500
        return cls(space, seed, population=population, sample_size=sample_size, budget=_budget(space, seed, settings),
                   **_given(settings, ("mutation_rate",)))

    @classmethod
    def settings_problem(cls, settings: Mapping[str, Any]) -> tuple[str, str] | None:
        budget, population, sample = settings.get("budget"), settings.get("population"), settings.get("sample_size")
        if _whole(budget) and _whole(population) and budget < population:
            return "budget", f"null or an integer >= strategy.population ({population}) for aging evolution"
        if _whole(sample) and _whole(population) and sample > population:
            # the tournament drew the whole population, in silence: always the best member, not a tournament
            return "sample_size", (f"null or an integer <= strategy.population ({population}): each child's parent "
                                   "is the best of that many members drawn from the population")
        return None

    def settings(self) -> dict:
        return {"population": self.population, "sample_size": self.sample_size, "budget": self._budget,
                "mutation_rate": self.mutation_rate}

    @property
    def budget(self) -> int:
        return self._budget

    def members(self) -> list[tuple[Architecture, float]]:
        """The current population, oldest first."""
        return self.history[-self.population:] if len(self.history) >= self.population else list(self.history)

    def _propose(self) -> list[Architecture]:
        if self.stage == 0:
            return self.space.sample_distinct(self.population, self.rng)
        if len(self.history) >= self._budget:
            return []
        members = self.members()
        drawn = self.rng.sample(range(len(members)), min(self.sample_size, len(members)))
        parent = members[max(drawn, key=lambda i: (members[i][1], i))][0]  # ties: the youngest
        seen = set(self.scores) | set(self.pending)
        return [_unseen_child(self.space, parent, self.rng, self.mutation_rate, seen, self.max_tries)]


@register_strategy
class RandomSearch(SearchStrategy):
    """Uniform random search: ``budget`` distinct candidates, proposed in batches of ``batch``."""

    name = "random"
    SETTINGS = ("budget", "batch", "population", "rounds", "parents")  # the last three size a budget not given

    def __init__(self, space: FunctionalSpace, seed: int = 0, budget: int = 1000, batch: int = 100):
        super().__init__(space, seed)
        if budget < 1 or batch < 1:
            raise ValueError(f"random search needs budget >= 1 and batch >= 1; got {budget}, {batch}")
        self._budget, self.batch = budget, batch

    @classmethod
    def from_settings(cls, space: FunctionalSpace, seed: int, settings: Mapping[str, Any]) -> RandomSearch:
        """The evolution's budget unless ``budget`` is given."""
        return cls(space, seed, budget=_budget(space, seed, settings), **_given(settings, ("batch",)))

    def settings(self) -> dict:
        return {"budget": self._budget, "batch": self.batch}

    @property
    def budget(self) -> int:
        return self._budget

    def _propose(self) -> list[Architecture]:
        left = self._budget - len(self.history) - len(self.pending)
        if left <= 0:
            return []
        return self.space.sample_distinct(min(self.batch, left), self.rng, exclude=set(self.scores))

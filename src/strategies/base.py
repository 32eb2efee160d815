"""Search strategies: pure logic over (search space, score function).

A strategy proposes candidates with :meth:`SearchStrategy.ask` and learns their scores through
:meth:`SearchStrategy.tell`. It owns a seeded :class:`random.Random`, and
:meth:`state_dict`/:meth:`load_state_dict` capture everything (RNG, history, pending candidates)
as JSON-serialisable data, so a search stopped after any ``tell`` resumes exactly where it was.
It never touches torch or Lightning; scoring is the estimator's job.

Strategies are found by name in :data:`STRATEGIES` (``strategy=<name>``, ``conf/strategy/<name>.yaml``):
a subclass decorated with :func:`register_strategy` is built from the ``strategy`` config node by its
:meth:`SearchStrategy.from_settings`, and its :meth:`SearchStrategy.settings_problem` is checked with
the other config values before torch is imported.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from typing import Any, Callable, Mapping

from src.space import Architecture, FunctionalSpace

ScoreFn = Callable[[Architecture], float]


def _rng_state_to_json(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _rng_state_from_json(data: list) -> tuple:
    version, internal, gauss = data
    return (version, tuple(internal), gauss)


def _finite_score(score) -> float:
    """``score`` as a float; a NaN or infinite one (it would sort anywhere and win or lose at random)
    and a non-number are refused."""
    if isinstance(score, (str, bytes, bool)) or score is None:
        raise TypeError(f"a candidate's score must be a number, got {score!r}")
    value = float(score)
    if not math.isfinite(value):
        raise ValueError(f"a candidate's score must be finite, got {value}")
    return value


class SearchStrategy(ABC):
    """Base class: bookkeeping of scored candidates, pending batch, RNG and resume."""

    name = "base"
    #: the ``strategy.*`` settings :meth:`from_settings` reads (a setting of the command line that no
    #: registered strategy reads is not a strategy setting; one that the chosen strategy does not read is refused)
    SETTINGS: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, space: FunctionalSpace, seed: int, settings: Mapping[str, Any]) -> SearchStrategy:
        """The strategy the ``strategy`` config node's ``settings`` describe: by default the
        constructor's keyword arguments named in :attr:`SETTINGS`, a setting that is absent or
        ``None`` taking the constructor's default."""
        return cls(space, seed, **{k: settings[k] for k in cls.SETTINGS if settings.get(k) is not None})

    @classmethod
    def settings_problem(cls, settings: Mapping[str, Any]) -> tuple[str, str] | None:
        """``(setting, what it must be)`` for settings this strategy refuses, ``None`` when they do.
        Checked with the other config values, before torch is imported, after each of the shared
        settings (``population``, ``rounds``, ``parents``, ``budget``, ``sample_size``, ``mutation_rate``)
        has been checked alone; a new setting of a new strategy is checked here alone too."""
        return None

    def __init__(self, space: FunctionalSpace, seed: int = 0):
        self.space = space
        self.seed = seed
        self.rng = random.Random(seed)
        self.history: list[tuple[Architecture, float]] = []
        self.scores: dict[Architecture, float] = {}
        self.pending: list[Architecture] = []
        self.stage = 0

    @abstractmethod
    def _propose(self) -> list[Architecture]:
        """The next batch of new candidates for stage ``self.stage``; [] when the search is over."""

    @property
    @abstractmethod
    def budget(self) -> int:
        """Total number of candidates this strategy scores."""

    # ---- protocol -------------------------------------------------------------------------
    def ask(self) -> list[Architecture]:
        """Candidates still to score (the unfinished batch, or a new one); [] when done."""
        if not self.pending:
            self.pending = self._propose()
            if self.pending:
                self.stage += 1
        return list(self.pending)

    def tell(self, arch: Architecture, score: float) -> None:
        """Record the score of a candidate returned by :meth:`ask`."""
        if arch not in self.pending:
            raise ValueError("tell() got an architecture that ask() did not propose")
        value = _finite_score(score)  # before any state changes: a bad score leaves the candidate pending
        self.pending.remove(arch)
        self.history.append((arch, value))
        self.scores[arch] = value

    def ranked(self, k: int | None = None) -> list[tuple[Architecture, float]]:
        """Scored candidates, best first; ties keep evaluation order."""
        order = sorted(range(len(self.history)), key=lambda i: (-self.history[i][1], i))
        return [self.history[i] for i in order[:k]]

    def best(self) -> tuple[Architecture, float]:
        """The best scored candidate and its score (the first scored among equals)."""
        if not self.history:  # ranked(1)[0] was a bare IndexError
            raise RuntimeError("best(): no candidate has been scored yet (tell() a score first)")
        return self.ranked(1)[0]

    def run(self, score_fn: ScoreFn, on_result: Callable[[Architecture, float], None] | None = None) -> None:
        """Ask, score and tell until done; ``on_result`` sees each scored candidate."""
        while batch := self.ask():
            for arch in batch:
                score = score_fn(arch)
                self.tell(arch, score)
                if on_result is not None:
                    on_result(arch, score)

    # ---- resume ---------------------------------------------------------------------------
    def settings(self) -> dict:
        """What shapes this strategy's search besides the space and the seed (a state saved under
        other settings would go on as a search neither of them is)."""
        return {}

    def state_dict(self) -> dict:
        return {
            "name": self.name,
            "settings": self.settings(),
            "seed": self.seed,
            "stage": self.stage,
            "rng": _rng_state_to_json(self.rng.getstate()),
            "history": [[a.to_dict(), s] for a, s in self.history],
            "pending": [a.to_dict() for a in self.pending],
        }

    def load_state_dict(self, state: dict) -> None:
        if state.get("name") != self.name:
            raise ValueError(f"state is for strategy {state.get('name')!r}, not {self.name!r}")
        saved = state.get("settings")  # absent in states saved before it was recorded
        if saved is not None and saved != self.settings():
            raise ValueError(f"state is for {self.name} with {saved}, not {self.settings()}")
        self.seed = state["seed"]
        self.stage = state["stage"]
        self.rng.setstate(_rng_state_from_json(state["rng"]))
        self.history = [(Architecture.from_dict(a), _finite_score(s)) for a, s in state["history"]]
        self.scores = dict(self.history)
        self.pending = [Architecture.from_dict(a) for a in state["pending"]]
        for arch in [a for a, _ in self.history] + self.pending:
            if not self.space.is_valid(arch):  # a state saved by a search over another space
                raise ValueError(f"state holds an architecture outside this strategy's space {self.space!r}: {arch}")


STRATEGIES: dict[str, type[SearchStrategy]] = {}
"""The strategies by config name (``strategy.name``), filled by :func:`register_strategy`."""


def register_strategy(cls: type[SearchStrategy]) -> type[SearchStrategy]:
    """Class decorator: ``strategy.name=<cls.name>`` builds ``cls`` (through :meth:`SearchStrategy.from_settings`).
    A second class under a taken name is refused (it would replace the first in silence); the same
    class again (its module imported anew) replaces it."""
    taken = STRATEGIES.get(cls.name)
    if taken is not None and (taken.__module__, taken.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(f"strategy name {cls.name!r} is taken by {taken.__module__}.{taken.__qualname__}")
    STRATEGIES[cls.name] = cls
    return cls


def strategy_settings() -> tuple[str, ...]:
    """Every setting some registered strategy reads (:attr:`SearchStrategy.SETTINGS`), sorted."""
    return tuple(sorted({key for cls in STRATEGIES.values() for key in cls.SETTINGS}))


def build_strategy(name: str, space: FunctionalSpace, seed: int, **settings: Any) -> SearchStrategy:
    """The registered strategy ``name`` (:data:`STRATEGIES`) over ``space`` with ``settings`` (the
    ``strategy`` config node's; each strategy reads its own, ``None`` meaning its default)."""
    unknown = sorted(set(settings) - set(strategy_settings()))
    if unknown:  # a misspelt setting (populaton=10) ran with the default in silence
        raise TypeError(f"build_strategy: unknown setting {unknown[0]!r}; expected some of "
                        f"{', '.join(strategy_settings())}")
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; expected one of {', '.join(map(repr, STRATEGIES))}")
    return STRATEGIES[name].from_settings(space, seed, settings)

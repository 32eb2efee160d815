"""The functional-layer search space: validity, sampling, mutation, size, reachable contexts.

Pure Python (no torch): strategies and tests use it without building a model. The same class
serves any op set (text ops here; graph ops reuse it with another ``ops`` tuple).
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from typing import Iterator, Sequence

from src.space.architecture import LAYER_KINDS, Architecture, Layer, quoted
from src.utils.errors import InvalidArchitectureError, SpaceExhaustedError

TEXT_OPS = ("zero", "identity", "conv1", "conv3", "maxpool3", "gru")
# zero, identity, GCN, GraphSAGE-mean, GAT with 1/2/4/8/16 heads, linear, ARMA, Chebyshev (K=2), SGC
GRAPH_OPS = ("zero", "identity", "gcn", "sage", "gat1", "gat2", "gat4", "gat8", "gat16", "linear", "arma",
             "cheb", "sgc")
# context-aware parameter sharing: what of a Context keys an op's module (src.models.encoder.sharing_key)
SHARING_MODES = ("full", "source", "target", "none")
# sample_distinct lists a space of at most this many architectures once random draws stop finding unseen ones
ENUMERATED_AT_MOST = 200_000
OP_FAMILIES = {"text": TEXT_OPS, "graph": GRAPH_OPS}


def op_families(arch: Architecture) -> list[str]:
    """The task families (``text``, ``graph``) whose op set holds every op of ``arch``: both for
    zero/identity only, none for an unknown op or a mix of the two."""
    ops = arch.ops()
    return [name for name, known in OP_FAMILIES.items() if ops <= set(known)]


def priors_leave_no_op(ops: Sequence[str], priors: bool, zero_op: str = "zero") -> bool:
    """Whether ``ops`` leave Q, K and V nothing to take: under the priors they take an op other
    than ``zero_op``. The one rule for :class:`FunctionalSpace` and the config check
    (``src.pipeline.checks``), which reports it by its config keys before torch is imported."""
    return bool(priors) and all(op == zero_op for op in ops)


def last_layer_ops_under(ops: Sequence[str], readout: str | None) -> tuple[str, ...] | None:
    """The ops a graph model's last layer may use under ``readout``, ``None`` for all of ``ops``: under
    ``last`` that layer maps to the classes, which ``identity`` cannot (it keeps its input's width).
    The one rule for the search space (``src.pipeline.config.search_space``) and the config check."""
    return tuple(op for op in ops if op != "identity") if readout == "last" else None


@dataclass(frozen=True)
class Context:
    """Where an op is applied: the key material of context-aware parameter sharing.

    ``src``: source node; ``layer``: 0-based layer index (target node ``layer + 1``);
    ``src_kind``: kind of the layer that produced ``src`` (``None`` for the stem);
    ``role``: ``addend``, ``q``, ``k`` or ``v``.
    """

    src: int
    layer: int
    op: str
    src_kind: str | None
    role: str


class FunctionalSpace:
    """``num_layers`` functional layers over ``ops``, with or without the design priors.

    Priors (``priors=True``, the paper's regularised space):
      1. Q / addend 1 comes from the directly preceding node (``q_src == i``);
      2. K and V come from the same node (``v_src == k_src``);
      3. ``zero`` is allowed only as addend 2 of an ``add`` layer.
    Without priors every source is any earlier node and ``zero`` is allowed on every edge.

    ``last_layer_ops`` (default: ``ops``) are the ops the last layer may use, for models whose last
    layer maps to another width than the others: a graph child reading out with its last layer
    maps it to the classes, which ``identity`` cannot.
    """

    def __init__(self, num_layers: int, ops: Sequence[str] = TEXT_OPS, priors: bool = True,
                 kinds: Sequence[str] = LAYER_KINDS, zero_op: str = "zero",
                 last_layer_ops: Sequence[str] | None = None):
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be an integer >= 1, got {num_layers!r}")
        for name, values, known in (("kinds", kinds, LAYER_KINDS), ("ops", ops, TEXT_OPS + GRAPH_OPS)):
            # a string is a sequence too: ops="conv1" was five ops of one letter each
            if isinstance(values, str) or not values or not set(values) <= set(known) or len(set(values)) < len(values):
                raise ValueError(f"{name} must be distinct names from {sorted(set(known))}, got {values!r}")
        self.num_layers = num_layers
        self.ops = tuple(ops)
        self.priors = priors
        self.kinds = tuple(kinds)
        self.zero_op = zero_op
        if priors_leave_no_op(self.ops, self.priors, zero_op):
            raise ValueError(f"ops {self.ops!r}: the priors need an op other than {zero_op!r} (or priors=False)")
        if last_layer_ops is None:
            self.last_layer_ops = self.ops
        else:
            if isinstance(last_layer_ops, str) or not last_layer_ops or not set(last_layer_ops) <= set(self.ops):
                raise ValueError(f"last_layer_ops must be some of ops {self.ops}, got {last_layer_ops!r}")
            self.last_layer_ops = tuple(o for o in self.ops if o in set(last_layer_ops))  # in the order of ops
            if priors_leave_no_op(self.last_layer_ops, self.priors, zero_op):
                raise ValueError(f"last_layer_ops {self.last_layer_ops!r}: the priors need an op other than "
                                 f"{zero_op!r} (or priors=False)")
        # (last layer?, zero allowed?) -> the ops a slot may take
        self._choices = {(last, zero_ok): tuple(o for o in (self.last_layer_ops if last else self.ops)
                                                  if zero_ok or o != zero_op)
                         for last in (False, True) for zero_ok in (False, True)}

    def __repr__(self) -> str:
        last = f", last_layer_ops={self.last_layer_ops}" if self.last_layer_ops != self.ops else ""
        return (f"FunctionalSpace(num_layers={self.num_layers}, ops={self.ops}, priors={self.priors}, "
                f"kinds={self.kinds}{last})")

    # ---- which choices each decision has --------------------------------------------------
    def _q_sources(self, i: int) -> range:
        return range(i, i + 1) if self.priors else range(i + 1)

    def _op_choices(self, kind: str, slot: str, i: int) -> tuple[str, ...]:
        return self._choices[i == self.num_layers - 1, not self.priors or (kind == "add" and slot == "k")]

    # ---- validity -------------------------------------------------------------------------
    def validate(self, arch: Architecture) -> Architecture:
        """Return ``arch`` if it lies in this space, else raise naming the layer and field."""
        if not isinstance(arch, Architecture):
            raise InvalidArchitectureError(f"expected an Architecture, got {type(arch).__name__}")
        if len(arch) != self.num_layers:
            raise InvalidArchitectureError(f"expected {self.num_layers} layers, got {len(arch)}", field="layers")
        for i, layer in enumerate(arch):
            if layer.kind not in self.kinds:
                raise InvalidArchitectureError(f"kind {quoted(layer.kind)} not in {self.kinds}", i, "kind")
            slots = [("q", layer.q_src, layer.q_op), ("k", layer.k_src, layer.k_op)]
            if layer.kind == "attn":
                slots.append(("v", layer.v_src, layer.v_op))
            elif layer.v_src is not None or layer.v_op is not None:
                raise InvalidArchitectureError("an 'add' layer has no V", i, "v_op")
            for slot, src, op in slots:
                # False and 0.0 compared as node 0, then broke the YAML round trip and the models
                if isinstance(src, bool) or not isinstance(src, int) or not 0 <= src <= i:
                    raise InvalidArchitectureError(f"source must be a node in 0..{i}, got {quoted(src)}", i,
                                                   f"{slot}_src")
                if op not in self.ops:
                    raise InvalidArchitectureError(f"unknown op {quoted(op)}; expected one of {self.ops}", i,
                                                   f"{slot}_op")
                if i == self.num_layers - 1 and op not in self.last_layer_ops:
                    raise InvalidArchitectureError(f"op {op!r} is not allowed in the last layer; expected one of "
                                                   f"{self.last_layer_ops}", i, f"{slot}_op")
            if self.priors:
                if layer.q_src != i:
                    raise InvalidArchitectureError(f"prior 1: Q/addend 1 must come from node {i}, got {layer.q_src}",
                                                   i, "q_src")
                if layer.kind == "attn" and layer.v_src != layer.k_src:
                    raise InvalidArchitectureError(f"prior 2: K and V must share a source, got k_src={layer.k_src} "
                                                   f"v_src={layer.v_src}", i, "v_src")
                for slot, _, op in slots:
                    if op not in self._op_choices(layer.kind, slot, i):
                        raise InvalidArchitectureError(f"prior 3: '{self.zero_op}' is not allowed here", i, f"{slot}_op")
        return arch

    def is_valid(self, arch: Architecture) -> bool:
        try:
            self.validate(arch)
        except InvalidArchitectureError:
            return False
        return True

    # ---- sampling and mutation ------------------------------------------------------------
    def sample_layer(self, i: int, rng: random.Random, kind: str | None = None) -> Layer:
        """Draw layer ``i`` with every decision uniform (``kind`` fixed when given)."""
        kind = kind or rng.choice(self.kinds)
        q_src = rng.choice(self._q_sources(i))
        q_op = rng.choice(self._op_choices(kind, "q", i))
        k_src = rng.randrange(i + 1)
        k_op = rng.choice(self._op_choices(kind, "k", i))
        if kind == "add":
            return Layer(kind, q_src, q_op, k_src, k_op)
        v_src = k_src if self.priors else rng.randrange(i + 1)
        v_op = rng.choice(self._op_choices(kind, "v", i))
        return Layer(kind, q_src, q_op, k_src, k_op, v_src, v_op)

    def sample(self, rng: random.Random) -> Architecture:
        """Per-decision uniform sampling; always valid."""
        return Architecture(tuple(self.sample_layer(i, rng) for i in range(self.num_layers)))

    def sample_distinct(self, n: int, rng: random.Random, exclude: set[Architecture] | None = None,
                        max_tries: int = 10_000) -> list[Architecture]:
        """``n`` distinct samples not in ``exclude``; a space of at most :data:`ENUMERATED_AT_MOST` whose unseen
        architectures random draws keep missing (some are drawn once in 10^5) is listed, and they are drawn from."""
        seen = set(exclude or ())
        out: list[Architecture] = []
        tries = 0
        left = self.size() - len(seen)
        if n > left:  # said at once, not after n x max_tries draws; what ``exclude`` holds outside the space excludes nothing
            left = self.size() - sum(self.is_valid(a) for a in seen)
        while len(out) < n:
            tries += 1
            if n <= left and tries > max_tries * max(n, 1) and self.size() <= ENUMERATED_AT_MOST:
                # the unseen ones are rarely drawn (sampling is uniform per decision, not per architecture)
                unseen = [a for a in self.architectures() if a not in seen]
                return out + rng.sample(unseen, n - len(out))
            if n > left or tries > max_tries * max(n, 1):
                raise SpaceExhaustedError(f"could not draw {n} new distinct architectures from {self!r}, which "
                                          f"holds {self.size():,} ({len(seen) - len(out):,} excluded): a larger space "
                                          "(num_layers) or fewer candidates")
            arch = self.sample(rng)
            if arch not in seen:
                seen.add(arch)
                out.append(arch)
        return out

    def mutate(self, arch: Architecture, rng: random.Random, rate: float = 0.05,
               max_tries: int = 10_000) -> Architecture:
        """The protocol's mutation: every decision re-drawn with probability ``rate``.

        Flipping a layer's ``kind`` re-draws that whole layer. The child is valid and differs
        from the parent (re-drawn until it does); the parent must be of this space (the decisions
        not re-drawn are kept, so an invalid parent gave an invalid child), and ``rate`` in (0, 1].
        """
        self.validate(arch)
        if not 0 < rate <= 1:  # 0 spun max_tries draws before failing
            raise ValueError(f"rate must be in (0, 1], got {rate}")
        if self.size() == 1:  # spun max_tries draws, then blamed the rate
            raise SpaceExhaustedError(f"cannot mutate the only architecture of {self!r}, which holds 1: a larger "
                                      "space (num_layers, ops, kinds)")
        for _ in range(max_tries):
            layers = []
            for i, layer in enumerate(arch):
                if len(self.kinds) > 1 and rng.random() < rate:
                    flipped = next(k for k in self.kinds if k != layer.kind)
                    layers.append(self.sample_layer(i, rng, kind=flipped))
                    continue
                q_src = rng.choice(self._q_sources(i)) if rng.random() < rate else layer.q_src
                q_op = rng.choice(self._op_choices(layer.kind, "q", i)) if rng.random() < rate else layer.q_op
                k_src = rng.randrange(i + 1) if rng.random() < rate else layer.k_src
                k_op = rng.choice(self._op_choices(layer.kind, "k", i)) if rng.random() < rate else layer.k_op
                if layer.kind == "add":
                    layers.append(Layer("add", q_src, q_op, k_src, k_op))
                    continue
                if self.priors:
                    v_src = k_src
                else:
                    v_src = rng.randrange(i + 1) if rng.random() < rate else layer.v_src
                v_op = rng.choice(self._op_choices("attn", "v", i)) if rng.random() < rate else layer.v_op
                layers.append(Layer("attn", q_src, q_op, k_src, k_op, v_src, v_op))
            child = Architecture(tuple(layers))
            if child != arch:
                return child
        raise RuntimeError(f"mutation produced no new architecture in {max_tries} tries (rate={rate})")

    # ---- size -----------------------------------------------------------------------------
    def layer_settings(self, i: int) -> Iterator[Layer]:
        """Every distinct setting of layer ``i`` (:meth:`layer_choices` of them), in a fixed order."""
        for kind in self.kinds:
            for q_src in self._q_sources(i):
                for k_src in range(i + 1):
                    v_sources = (None,) if kind == "add" else (k_src,) if self.priors else range(i + 1)
                    for v_src in v_sources:
                        for q_op in self._op_choices(kind, "q", i):
                            for k_op in self._op_choices(kind, "k", i):
                                if kind == "add":
                                    yield Layer("add", q_src, q_op, k_src, k_op)
                                    continue
                                for v_op in self._op_choices(kind, "v", i):
                                    yield Layer("attn", q_src, q_op, k_src, k_op, v_src, v_op)

    def architectures(self) -> Iterator[Architecture]:
        """Every architecture of the space, in a fixed order (:meth:`size` of them: for small spaces)."""
        for layers in itertools.product(*(tuple(self.layer_settings(i)) for i in range(self.num_layers))):
            yield Architecture(layers)

    def layer_choices(self, i: int) -> int:
        """Number of distinct settings of layer ``i``."""
        n = 0
        for kind in self.kinds:
            sources = (i + 1) * len(self._q_sources(i)) * (1 if (self.priors or kind == "add") else i + 1)
            ops = len(self._op_choices(kind, "q", i)) * len(self._op_choices(kind, "k", i))
            if kind == "attn":
                ops *= len(self._op_choices(kind, "v", i))
            n += sources * ops
        return n

    def size(self) -> int:
        """Exact number of architectures (a Python int; ~2e76 for the paper's 24 layers)."""
        return math.prod(self.layer_choices(i) for i in range(self.num_layers))

    def size_text(self) -> str:
        """:meth:`size` in three significant digits (``2.03e+76``), also past a float's range (1e308)."""
        from decimal import Decimal

        size = self.size()
        return f"{float(size):.3g}" if size < 10 ** 300 else f"{Decimal(size):.3g}"

    # ---- contexts (what the supernet must hold) -------------------------------------------
    def source_kinds(self, src: int) -> tuple[str | None, ...]:
        return (None,) if src == 0 else self.kinds

    def contexts(self) -> Iterator[Context]:
        """Every context any architecture of the space can apply an op in (with repeats)."""
        for i in range(self.num_layers):
            for kind in self.kinds:
                roles = {"add": ("addend", "addend", None), "attn": ("q", "k", "v")}[kind]
                slots = [("q", self._q_sources(i), roles[0]), ("k", range(i + 1), roles[1])]
                if kind == "attn":
                    slots.append(("v", range(i + 1), roles[2]))
                for slot, sources, role in slots:
                    for src in sources:
                        for op in self._op_choices(kind, slot, i):
                            for src_kind in self.source_kinds(src):
                                yield Context(src, i, op, src_kind, role)


def arch_contexts(arch: Architecture) -> list[tuple[int, str, Context]]:
    """``(layer index, slot, context)`` for every op application of ``arch``, in forward order."""
    out = []
    for i, layer in enumerate(arch):
        for slot, src, op, role in layer.edges():
            if isinstance(src, bool) or not isinstance(src, int) or not 0 <= src <= i:
                # a negative index read another node through Python's indexing, in silence
                raise InvalidArchitectureError(f"source {quoted(src)} is not a node before the layer (0..{i})", layer=i,
                                               field=f"{slot}_src")
            out.append((i, slot, Context(src, i, op, arch.node_kind(src), role)))
    return out

"""The architecture value: an immutable, hashable, serialisable list of functional layers.

Node 0 is the stem output; layer ``i`` (0-based) reads earlier nodes and writes node ``i + 1``;
the model output is the last node. A layer applies three searched ops to earlier nodes:

* ``kind == "attn"``: Q = ``q_op(x[q_src])``, K = ``k_op(x[k_src])``, V = ``v_op(x[v_src])``,
  then multi-head attention without learned projections.
* ``kind == "add"``: ``q_op(x[q_src]) + k_op(x[k_src])``; the ``q`` slot is addend 1, the
  ``k`` slot addend 2, and ``v_src``/``v_op`` are ``None``.

Under the design priors (the paper's regularised space) ``q_src == i`` and ``k_src == v_src``;
:class:`~src.space.space.FunctionalSpace` checks those rules, this module only holds values.
"""

from __future__ import annotations

import json
import reprlib
import sys
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import yaml

from src.utils.errors import AutoAttendError, InvalidArchitectureError
from src.utils.io import safe_yaml

LAYER_KINDS = ("add", "attn")
ROLES = {"add": ("addend", "addend", None), "attn": ("q", "k", "v")}

_QUOTE = reprlib.Repr()
_QUOTE.maxstring = _QUOTE.maxother = _QUOTE.maxlong = 60
_QUOTE.maxlist = _QUOTE.maxdict = 8


def quoted(value: Any) -> str:
    """``repr(value)`` cut to some 60 characters a string or number, 8 items a list or mapping, for error lines: a
    bad value in a file (a long string, a large mapping) would otherwise be quoted whole."""
    if isinstance(value, int) and value.bit_length() > 200:  # repr refuses past 4,300 digits
        return f"an integer of some {round(value.bit_length() * 0.30103)} digits"
    return _QUOTE.repr(value)


def _parse_yaml(text: str, source: str | None) -> Any:
    """The YAML (or JSON) document ``text``; one line naming where it is not valid."""
    try:
        return safe_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise AutoAttendError(f"{_at(source)}not valid YAML{where} ({problem})") from None


def _at(source: str | None) -> str:
    """``"<source>: "`` to start an error about what ``source`` names (a file), or nothing."""
    return f"{source}: " if source else ""


@dataclass(frozen=True)
class Layer:
    """One functional layer. See the module docstring for the meaning of each field."""

    kind: str
    q_src: int
    q_op: str
    k_src: int
    k_op: str
    v_src: int | None = None
    v_op: str | None = None

    def __post_init__(self) -> None:
        # one string object per name, however the layer was made (sampled from the space's tuples, read from
        # YAML): pickle lays out shared and separate strings differently, and a seed's model.pt written in a
        # later invocation than the search (its architecture read back from best_arch.yaml) had other bytes
        for name in ("kind", "q_op", "k_op", "v_op"):
            value = getattr(self, name)
            if type(value) is str:
                object.__setattr__(self, name, sys.intern(value))

    @property
    def prev(self) -> int:
        """The second source node (the authors' ``prev``): K's source (V's too under the priors), or
        addend 2's source."""
        return self.k_src

    def edges(self) -> list[tuple[str, int, str, str]]:
        """``(slot, source node, op, role)`` for each op this layer applies, in slot order.

        Roles are the *target context* of context-aware sharing: ``addend`` for both addends of
        an ``add`` layer (they play the same role), ``q``/``k``/``v`` in an ``attn`` layer.
        """
        roles = ROLES[self.kind]
        out = [("q", self.q_src, self.q_op, roles[0]), ("k", self.k_src, self.k_op, roles[1])]
        if self.kind == "attn":
            out.append(("v", self.v_src, self.v_op, roles[2]))
        return out


@dataclass(frozen=True)
class Architecture:
    """An ordered tuple of :class:`Layer`; hashable, so usable as a dict key or set member."""

    layers: tuple[Layer, ...]

    def __post_init__(self) -> None:
        # a list of layers made an unhashable architecture, which failed later inside the strategies
        object.__setattr__(self, "layers", tuple(self.layers))
        wrong = next((layer for layer in self.layers if not isinstance(layer, Layer)), None)
        if wrong is not None:
            raise InvalidArchitectureError(f"expected Layer objects, got {type(wrong).__name__}", field="layers")

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]

    def node_kind(self, node: int) -> str | None:
        """The kind of the layer that produced ``node``; ``None`` for the stem (node 0)."""
        return None if node == 0 else self.layers[node - 1].kind

    # ---- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A plain ``{"layers": [{...}, ...]}`` dict; ``None`` fields are left out."""
        return {"layers": [{k: v for k, v in asdict(l).items() if v is not None} for l in self.layers]}

    @classmethod
    def from_dict(cls, data: Any, source: str | None = None) -> "Architecture":
        """Inverse of :meth:`to_dict`; also accepts the authors' list-of-5-tuples.

        Raises :class:`InvalidArchitectureError` naming the layer and field on malformed input
        (structure only; search-space rules are checked by ``FunctionalSpace.validate``).
        """
        if isinstance(data, list):
            return from_authors(data)
        if not isinstance(data, dict) or "layers" not in data:
            raise InvalidArchitectureError("expected a mapping with a 'layers' list", source=source)
        if not isinstance(data["layers"], list) or not data["layers"]:
            raise InvalidArchitectureError("'layers' must be a non-empty list", source=source)
        layers = []
        for i, raw in enumerate(data["layers"]):
            if not isinstance(raw, dict):
                hint = (" (a list of [o1, prev, o2, o3, kind] rows is the authors' format: give it as the top-level "
                        "list or under arch:, not under layers:)" if isinstance(raw, list) else "")
                raise InvalidArchitectureError("expected a mapping with kind, q_src, q_op, k_src, k_op "
                                               f"(attn: also v_src, v_op), got {quoted(raw)}{hint}", layer=i,
                                               source=source)
            unknown = set(raw) - {"kind", "q_src", "q_op", "k_src", "k_op", "v_src", "v_op"}
            if unknown:
                raise InvalidArchitectureError("unknown key; a layer's keys are kind, q_src, q_op, k_src, k_op "
                                               "(attn: also v_src, v_op)", layer=i, field=sorted(unknown)[0],
                                               source=source)
            kind = raw.get("kind")
            if kind not in LAYER_KINDS:
                raise InvalidArchitectureError(f"expected one of {LAYER_KINDS}, got {quoted(kind)}", i, "kind",
                                               source=source)
            required = ["q_src", "q_op", "k_src", "k_op"] + (["v_src", "v_op"] if kind == "attn" else [])
            for key in required:
                if key not in raw:
                    raise InvalidArchitectureError("missing", layer=i, field=key, source=source)
            for key in ("q_src", "k_src", "v_src"):
                if key in raw and (not isinstance(raw[key], int) or isinstance(raw[key], bool)):
                    raise InvalidArchitectureError(f"expected an integer node index, got {quoted(raw[key])}", i,
                                                   key, source=source)
            for key in ("q_op", "k_op", "v_op"):
                if key in raw and not isinstance(raw[key], str):
                    raise InvalidArchitectureError(f"expected an op name, got {quoted(raw[key])}", i, key,
                                                   source=source)
            if kind == "add" and (raw.get("v_src") is not None or raw.get("v_op") is not None):
                raise InvalidArchitectureError("an 'add' layer has no V", layer=i, field="v_op", source=source)
            layers.append(Layer(kind=kind, q_src=raw["q_src"], q_op=raw["q_op"], k_src=raw["k_src"],
                                k_op=raw["k_op"], v_src=raw.get("v_src"), v_op=raw.get("v_op")))
        return cls(tuple(layers))

    def to_json(self) -> str:
        """Compact one-line JSON (used in ``population.jsonl``)."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, source: str | None = None) -> "Architecture":
        try:
            data = json.loads(text)
        except ValueError as exc:  # as from_yaml: one line naming where, not a JSONDecodeError
            raise AutoAttendError(f"{_at(source)}not valid JSON ({exc})") from None
        return cls.from_dict(data, source=source)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str, source: str | None = None) -> "Architecture":
        return cls.from_document(_parse_yaml(text, source), source)

    @classmethod
    def from_document(cls, data: Any, source: str | None = None) -> "Architecture":
        """The architecture of a parsed architecture file: its top level, or its ``arch:`` key."""
        if isinstance(data, dict) and "arch" in data and "layers" not in data:
            data = data["arch"]
        if isinstance(data, list) and data and isinstance(data[0], dict) and "arch" in data[0]:
            # search/topk.yaml, or a list of population records: candidates, not one architecture
            raise InvalidArchitectureError(f"a list of {len(data)} candidates, not one architecture; "
                                           "give search/best_arch.yaml (or the run directory), or copy one "
                                           "candidate's `arch:` into a file of its own", source=source)
        return cls.from_dict(data, source=source)

    @classmethod
    def load(cls, path: str | Path) -> "Architecture":
        """Read a ``.yaml``/``.yml``/``.json`` architecture file (our format or the authors')."""
        return cls.read(path)[0]

    @classmethod
    def read(cls, path: str | Path) -> tuple["Architecture", Any]:
        """:meth:`load`, with the file's parsed document (what it records beside the layers)."""
        path = Path(path)
        if not path.is_file():
            raise AutoAttendError(f"architecture file not found: {path}")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise AutoAttendError(f"{path}: not a text file (expected a YAML or JSON architecture)") from None
        try:
            data = _parse_yaml(text, str(path))
            return cls.from_document(data, source=str(path)), data
        except AutoAttendError as exc:
            if str(path) in str(exc):
                raise
            raise AutoAttendError(f"{path}: {exc}") from None  # e.g. the authors' format names no file

    def save(self, path: str | Path) -> None:
        from src.utils.io import atomic_write_text

        atomic_write_text(path, self.to_json() if str(path).endswith(".json") else self.to_yaml())

    def ops(self) -> set[str]:
        """The names of the ops its layers apply."""
        return {op for layer in self.layers for _, _, op, _ in layer.edges()}

    def __str__(self) -> str:
        return " | ".join(
            f"{l.kind}(q={l.q_op}@{l.q_src}, k={l.k_op}@{l.k_src}"
            + (f", v={l.v_op}@{l.v_src})" if l.kind == "attn" else ")")
            for l in self.layers
        )


@lru_cache(maxsize=4096)
def live_layers(arch: Architecture) -> tuple[bool, ...]:
    """For each layer of ``arch``, whether its output reaches the last node: read by a later live
    layer through an op other than ``zero``. Under the priors every layer's Q reads the previous
    node through a non-zero op, so all are live; without them (the authors' published SST-5
    architecture: 5 of 24) many need not be computed."""
    live_nodes = {len(arch)}
    for i in range(len(arch) - 1, -1, -1):
        if i + 1 in live_nodes:
            live_nodes.update(src for _, src, op, _ in arch[i].edges() if op != "zero")
    return tuple(i + 1 in live_nodes for i in range(len(arch)))


# The authors' op indices (THUMNLab/AutoAttend, model/ops.py PRIMITIVES order).
AUTHORS_OPS = ("zero", "identity", "conv1", "conv3", "maxpool3", "gru")
AUTHORS_KINDS = ("add", "attn")


def from_authors(rows: Iterable[Any]) -> Architecture:
    """Import the authors' format: a list of ``[o1, prev, o2, o3, kind]`` per layer.

    ``kind`` is 0 (add) or 1 (attn); ops are indices into :data:`AUTHORS_OPS`; ``o3`` is -1 in
    add layers. Q/addend 1 is read from the preceding node, K/V/addend 2 from ``prev``.
    """
    layers = []
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) != 5 or not all(isinstance(v, int) for v in row):
            raise InvalidArchitectureError(f"expected [o1, prev, o2, o3, kind] integers, got {quoted(row)}", layer=i)
        o1, prev, o2, o3, kind = row
        if kind not in (0, 1):
            raise InvalidArchitectureError(f"kind must be 0 (add) or 1 (attn), got {kind}", i, "kind")
        for name, op in (("o1", o1), ("o2", o2)) + ((("o3", o3),) if kind == 1 else ()):
            if not 0 <= op < len(AUTHORS_OPS):
                raise InvalidArchitectureError(f"op index must be in 0..{len(AUTHORS_OPS) - 1}, got {op}", i, name)
        if kind == 0:
            layers.append(Layer("add", i, AUTHORS_OPS[o1], prev, AUTHORS_OPS[o2]))
        else:
            layers.append(Layer("attn", i, AUTHORS_OPS[o1], prev, AUTHORS_OPS[o2], prev, AUTHORS_OPS[o3]))
    if not layers:
        raise InvalidArchitectureError("empty layer list")
    return Architecture(tuple(layers))


def to_authors(arch: Architecture) -> list[list[int]]:
    """Export to the authors' format; only for architectures that satisfy the source priors."""
    rows = []
    for i, l in enumerate(arch):
        if l.q_src != i or (l.kind == "attn" and l.v_src != l.k_src):
            raise InvalidArchitectureError("the authors' format needs q_src == i and v_src == k_src", i, "q_src")
        other = next((op for op in (l.q_op, l.k_op, l.v_op) if op is not None and op not in AUTHORS_OPS), None)
        if other is not None:  # a graph op gave a bare "tuple.index(x): x not in tuple"
            raise InvalidArchitectureError(f"op {other!r} has no number in the authors' format (text ops only: "
                                           f"{', '.join(AUTHORS_OPS)})", i)
        o3 = AUTHORS_OPS.index(l.v_op) if l.kind == "attn" else -1
        rows.append([AUTHORS_OPS.index(l.q_op), l.k_src, AUTHORS_OPS.index(l.k_op), o3, AUTHORS_KINDS.index(l.kind)])
    return rows

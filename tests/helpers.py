"""Shared test helpers: tiny well-formed datasets written on the fly, and the real-data location."""

from __future__ import annotations

import os
import random
from pathlib import Path

# Words by sentiment class (0 very negative ... 4 very positive); all are common lower-case
# GloVe 6B words, so pretrained vectors cover them.
SENTIMENT_WORDS = {
    0: ["awful", "terrible", "horrible"],
    1: ["bad", "dull", "boring"],
    3: ["good", "nice", "fun"],
    4: ["great", "brilliant", "wonderful"],
}
FILLER_WORDS = ["the", "movie", "film", "is", "a", "plot", "story", "was", "and", "actors", "very", "this"]


def _word_label(word: str) -> int:
    for label, words in SENTIMENT_WORDS.items():
        if word.lower() in words:
            return label
    return 2


def _span_label(words: list[str]) -> int:
    """The most extreme word sentiment in a span (2 when none)."""
    return max((_word_label(w) for w in words), key=lambda y: (abs(y - 2), y))


def _tree(words: list[str], rng: random.Random, label: int | None = None) -> str:
    """A random binary PTB tree over ``words``; ``label`` overrides the root label."""
    if label is None:
        label = _span_label(words)
    if len(words) == 1:
        return f"({label} {words[0]})"
    cut = rng.randint(1, len(words) - 1)
    return f"({label} {_tree(words[:cut], rng)} {_tree(words[cut:], rng)})"


def _sentence(label: int, rng: random.Random) -> list[str]:
    words = rng.sample(FILLER_WORDS, rng.randint(3, 7))
    if label != 2:
        words += rng.sample(SENTIMENT_WORDS[label], rng.randint(1, 2))
    rng.shuffle(words)
    # Some capitalised first words, as in real sentences (exercises the lower-case lookup).
    if rng.random() < 0.3:
        words[0] = words[0].capitalize()
    return words


def write_tiny_sst(root: Path, n_train: int = 40, n_dev: int = 10, n_test: int = 10, seed: int = 0) -> Path:
    """Write ``root/sst/trees/{train,dev,test}.txt`` with random well-formed binary PTB trees.

    Sentence labels cycle through 0-4 (so every split has every class when n >= 5) and each
    non-neutral sentence contains 1-2 words of its class, so a model can learn something.
    Returns ``root``: pass it as ``SSTDataModule(data_dir=...)``.
    """
    rng = random.Random(seed)
    trees_dir = Path(root) / "sst" / "trees"
    trees_dir.mkdir(parents=True, exist_ok=True)
    for name, count in (("train", n_train), ("dev", n_dev), ("test", n_test)):
        labels = [i % 5 for i in range(count)]
        rng.shuffle(labels)
        lines = [_tree(_sentence(y, rng), rng, label=y) for y in labels]
        (trees_dir / f"{name}.txt").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return Path(root)


def real_data_dir(*required: str) -> Path | None:
    """The folder of real benchmark files: ``$AUTOATTEND_DATA_DIR`` if set, else
    ``<repo>/../shared/data``. None when it is missing or lacks any of the ``required`` relative paths."""
    env = os.environ.get("AUTOATTEND_DATA_DIR")
    path = Path(env).expanduser() if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    if not path.is_dir() or not all((path / rel).exists() for rel in required):
        return None
    return path

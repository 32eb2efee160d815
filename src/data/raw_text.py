"""New text in, token ids out, the way a task's training data was encoded.

A :class:`TextEncoder` holds what turns a raw string into the ids a retrained model was trained
on: the tokenizer of the task's data, whether it lower-cases, the vocabulary and the maximum
length. The text DataModules give theirs (``text_encoder()``) and a kept model's file stores it
(``src/models/saved.py``), so ``python -m src.predict`` needs nothing but that file.

Tokenizers:

- ``ptb``: Penn-Treebank tokens, as the Stanford Sentiment Treebank's trees hold them (NLTK's
  Treebank tokenizer: clitics split, ``(`` -> ``-LRB-``, quotes -> ````` / ``''``; then the
  trees' escapes ``\\/`` and ``\\*``); lower-cased where the vocabulary is, brackets too
  (``-lrb-``). Re-tokenising the SST dev sentences, written out as plain
  text, gives their tree tokens back for 1,099 of 1,101 (``tests/test_predict.py``).
- ``zhang_csv``: the Zhang et al. CSV tasks' own path (:func:`src.data.zhang_csv.clean_field`,
  then :func:`src.data.zhang_csv.tokenize`), exactly as their DataModule reads a text field.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import torch

from src.data.text import UNK_ID, Vocabulary, pad_collate
from src.utils.errors import AutoAttendError

TOKENIZERS = ("ptb", "zhang_csv")


@lru_cache(maxsize=1)
def _treebank():
    from nltk.tokenize import TreebankWordTokenizer

    return TreebankWordTokenizer()


def ptb_tokenize(text: str) -> list[str]:
    """Penn-Treebank tokens of ``text``, escaped as in the SST tree files."""
    tokens = _treebank().tokenize(text, convert_parentheses=True)
    return [t.replace("/", "\\/").replace("*", "\\*") for t in tokens]


def _zhang_tokenize(text: str, lowercase: bool) -> list[str]:
    from src.data.zhang_csv import clean_field, tokenize

    return tokenize(clean_field(text), lowercase)


@dataclass(frozen=True)
class TextEncoder:
    """Raw text -> ``(tokens LongTensor (B, T), mask BoolTensor (B, T))`` as a task's data was
    encoded: ``tokenizer`` (one of :data:`TOKENIZERS`), lower-cased when ``lowercase``, ids of
    ``vocabulary`` (unknown words -> ``<unk>``), cut to the first ``max_len`` tokens."""

    tokenizer: str
    lowercase: bool
    vocabulary: tuple[str, ...]
    max_len: int

    def __post_init__(self):
        if self.tokenizer not in TOKENIZERS:
            raise AutoAttendError(f"unknown tokenizer {self.tokenizer!r}; expected one of {', '.join(TOKENIZERS)}")
        if int(self.max_len) < 1:
            raise AutoAttendError(f"max_len must be >= 1; got {self.max_len!r}")
        try:
            vocab = Vocabulary(self.vocabulary)
        except ValueError as exc:
            raise AutoAttendError(f"not a vocabulary: {exc}") from None
        object.__setattr__(self, "_vocab", vocab)

    def tokens(self, text: str) -> list[str]:
        """The words of ``text`` as the task's tokenizer splits them (before truncation)."""
        if self.tokenizer == "zhang_csv":
            return _zhang_tokenize(text, self.lowercase)
        if not self.lowercase:
            return ptb_tokenize(text)
        # the tokenizer writes brackets upper-case (-LRB-), which a lower-cased vocabulary (a hub
        # copy of SST) holds as -lrb-
        return [token.lower() for token in ptb_tokenize(text.lower())]

    def ids(self, text: str) -> list[int]:
        """Token ids of ``text``, at most ``max_len``; a text with no token is an error."""
        tokens = self.tokens(text)
        if not tokens:
            raise AutoAttendError(f"{text!r}: no words to classify")
        return self._vocab.encode(tokens[: self.max_len])

    def encode(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(tokens (B, T), mask (B, T))`` for ``texts``, padded to the longest (``<pad>`` = 0,
        mask True at real tokens), the same layout as the training batches."""
        return self.pad([self.ids(text) for text in texts])

    @staticmethod
    def pad(ids: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Id lists -> ``(tokens (B, T), mask (B, T))`` through the training batches' own collate."""
        batch = pad_collate([(torch.tensor(i, dtype=torch.long), 0) for i in ids])
        return batch["tokens"], batch["mask"]

    def unknown(self, text: str) -> tuple[int, int]:
        """``(unknown words, words)`` among the ``max_len`` tokens of ``text`` the model sees."""
        ids = self.ids(text)
        return sum(i == UNK_ID for i in ids), len(ids)

    def to_dict(self) -> dict[str, Any]:
        return {"tokenizer": self.tokenizer, "lowercase": self.lowercase, "max_len": self.max_len,
                "vocabulary": list(self.vocabulary)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TextEncoder":
        return cls(data["tokenizer"], bool(data["lowercase"]), tuple(data["vocabulary"]), int(data["max_len"]))

"""Task-independent text pieces: vocabulary, a compact encoded split, and batch padding."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import torch
from torch.utils.data import Dataset

PAD = "<pad>"
UNK = "<unk>"
PAD_ID = 0
UNK_ID = 1


class Vocabulary:
    """Token <-> id map. Id 0 is ``<pad>``, id 1 is ``<unk>``, then words."""

    def __init__(self, words: Sequence[str]):
        """``words``: the full id-ordered list, starting with ``<pad>``, ``<unk>``."""
        words = list(words)
        if words[:2] != [PAD, UNK]:
            raise ValueError(f"a vocabulary list must start with {PAD!r}, {UNK!r}; got {words[:2]!r}")
        if len(set(words)) != len(words):
            raise ValueError("a vocabulary list must not contain duplicates")
        self._itos = words
        self._stoi = {word: idx for idx, word in enumerate(words)}

    @classmethod
    def build(cls, token_lists: Iterable[Iterable[str]], min_freq: int = 1,
              then: Iterable[Iterable[str]] = ()) -> "Vocabulary":
        """Count tokens; keep those seen at least ``min_freq`` times, most frequent first, ties
        alphabetical. The words of ``then`` (the test sentences) not kept already follow, ranked
        by their own counts: the ids, and so the random vectors, of the first lists' words do not
        depend on them."""
        words: list[str] = []
        for lists in (token_lists, then):
            counts: Counter[str] = Counter()
            for tokens in lists:
                counts.update(tokens)
            for special in (PAD, UNK, *words):
                counts.pop(special, None)
            words += sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
        return cls([PAD, UNK, *words])

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Ids of ``tokens``; unknown tokens map to ``UNK_ID``."""
        get = self._stoi.get
        return [get(token, UNK_ID) for token in tokens]

    def __len__(self) -> int:
        return len(self._itos)

    def __contains__(self, token: str) -> bool:
        return token in self._stoi

    def __getitem__(self, idx: int) -> str:
        return self._itos[idx]

    def index(self, token: str) -> int:
        """Id of one token (``UNK_ID`` when unknown)."""
        return self._stoi.get(token, UNK_ID)

    def to_list(self) -> list[str]:
        """The id-ordered word list (a copy); ``from_list`` inverts it."""
        return list(self._itos)

    @classmethod
    def from_list(cls, words: Sequence[str]) -> "Vocabulary":
        return cls(words)


class EncodedSplit(Dataset):
    """Token-id sequences in CSR layout.

    ``tokens``: LongTensor (N_total,) all sequences concatenated; ``offsets``: LongTensor (n+1,),
    sequence i is ``tokens[offsets[i]:offsets[i+1]]``; ``labels``: LongTensor (n,).
    Every sequence :meth:`from_sequences` builds has length in ``[1, max_len]`` (longer ones cut, empty ones
    dropped); the constructor takes the tensors as given and checks only that ``offsets`` fits ``labels``.
    """

    def __init__(self, tokens: torch.Tensor, offsets: torch.Tensor, labels: torch.Tensor, max_len: int):
        if offsets.numel() != labels.numel() + 1:
            raise ValueError(f"offsets has {offsets.numel()} entries, expected len(labels)+1 = {labels.numel() + 1}")
        self.tokens = tokens.long()
        self.offsets = offsets.long()
        self.labels = labels.long()
        self.max_len = int(max_len)

    @classmethod
    def from_sequences(
        cls, sequences: Iterable[Sequence[int]], labels: Iterable[int], max_len: int
    ) -> "EncodedSplit":
        """Truncate each id sequence to its first ``max_len`` ids and drop empty ones."""
        if max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {max_len}")
        flat: list[int] = []
        offsets = [0]
        kept: list[int] = []
        for ids, label in zip(sequences, labels, strict=True):
            if len(ids) == 0:
                continue
            flat.extend(ids[:max_len])
            offsets.append(len(flat))
            kept.append(int(label))
        return cls(
            torch.tensor(flat, dtype=torch.long),
            torch.tensor(offsets, dtype=torch.long),
            torch.tensor(kept, dtype=torch.long),
            max_len,
        )

    @classmethod
    def encode(
        cls, vocab: Vocabulary, token_lists: Iterable[Sequence[str]], labels: Iterable[int], max_len: int
    ) -> "EncodedSplit":
        """Encode token lists with ``vocab`` (then as ``from_sequences``)."""
        return cls.from_sequences((vocab.encode(tokens) for tokens in token_lists), labels, max_len)

    def __len__(self) -> int:
        return self.labels.numel()

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, int]:
        """``(token_ids LongTensor (len,), label)``."""
        start, end = self.offsets[idx].item(), self.offsets[idx + 1].item()
        return self.tokens[start:end], int(self.labels[idx])

    @property
    def lengths(self) -> torch.Tensor:
        """LongTensor (n,) of sequence lengths."""
        return self.offsets[1:] - self.offsets[:-1]

    def subset(self, indices: torch.Tensor | Sequence[int]) -> "EncodedSplit":
        """A new split holding rows ``indices`` ((k,) ints) in that order."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        lengths = self.lengths[idx]
        offsets = torch.zeros(idx.numel() + 1, dtype=torch.long)
        offsets[1:] = torch.cumsum(lengths, 0)
        if idx.numel():
            # Position of every kept token in the source: row start + rank within the row.
            starts = torch.repeat_interleave(self.offsets[idx], lengths)
            within = torch.arange(int(offsets[-1])) - torch.repeat_interleave(offsets[:-1], lengths)
            tokens = self.tokens[starts + within]
        else:
            tokens = torch.zeros(0, dtype=torch.long)
        return EncodedSplit(tokens, offsets, self.labels[idx].clone(), self.max_len)

    def state_dict(self) -> dict:
        return {"tokens": self.tokens, "offsets": self.offsets, "labels": self.labels, "max_len": self.max_len}

    @classmethod
    def from_state_dict(cls, state: dict) -> "EncodedSplit":
        return cls(state["tokens"], state["offsets"], state["labels"], state["max_len"])

    def save(self, path: str | Path) -> None:
        torch.save(self.state_dict(), path)

    @classmethod
    def load(cls, path: str | Path) -> "EncodedSplit":
        return cls.from_state_dict(torch.load(path, weights_only=True))


def pad_collate(batch: Sequence[tuple[torch.Tensor, int]]) -> dict[str, torch.Tensor]:
    """Pad to the longest sequence of the batch.

    Returns ``tokens`` LongTensor (B, T) padded with ``PAD_ID``, ``mask`` BoolTensor (B, T) True at
    real tokens, ``labels`` LongTensor (B,).
    """
    seqs = [item[0] for item in batch]
    lengths = torch.tensor([seq.numel() for seq in seqs], dtype=torch.long)
    tokens = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True, padding_value=PAD_ID)
    mask = torch.arange(tokens.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
    labels = torch.tensor([int(item[1]) for item in batch], dtype=torch.long)
    return {"tokens": tokens, "mask": mask, "labels": labels}

"""What the text DataModules (SST, CSV / hub tasks) share: their data loaders and text encoder."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

from src.data.text import pad_collate


class TextDataModule(pl.LightningDataModule):
    """Base of the text DataModules: after ``setup()`` a subclass has set ``train_set`` /
    ``val_set`` / ``test_set`` (items ``(LongTensor (len,), int)``), ``vocab``, ``embeddings``
    (FloatTensor (V, E)), and in ``__init__`` ``batch_size``, ``eval_batch_size``, ``seed``,
    ``num_workers`` and ``max_len`` (read by :meth:`text_encoder`). Loaders yield ``pad_collate``
    dicts; training shuffles with a generator seeded by ``seed``, so the order is the same on every
    run.
    """

    train_set: Dataset | None = None
    val_set: Dataset | None = None
    test_set: Dataset | None = None
    vocab = None
    embeddings: torch.Tensor | None = None
    # what a training example is ("phrase", "sentence" or "document"), recorded with the retrain results
    train_level: str = "sentence"
    # the score named acc in the records: single-label classification's accuracy (summary.json's metric)
    metric: str = "accuracy"

    # How raw text becomes this task's tokens (a tokenizer of src.data.raw_text.TOKENIZERS).
    raw_tokenizer = "ptb"

    def raw_lowercase(self) -> bool:
        """Whether raw text is lower-cased before tokenising (the data's own setting)."""
        return False

    def text_encoder(self):
        """After ``setup()``: the :class:`~src.data.raw_text.TextEncoder` that encodes new text as
        this task's examples were encoded (tokenizer, case, vocabulary, ``max_len``)."""
        from src.data.raw_text import TextEncoder

        if self.vocab is None:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before asking for its text encoder")
        return TextEncoder(self.raw_tokenizer, self.raw_lowercase(), tuple(self.vocab.to_list()), int(self.max_len))

    def _loader(self, dataset: Dataset | None, batch_size: int, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before asking for a dataloader")
        generator = torch.Generator().manual_seed(self.seed) if shuffle else None
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
                          collate_fn=pad_collate, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, self.eval_batch_size, shuffle=False)

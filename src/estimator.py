"""Candidate scoring with the supernet's shared weights (eval mode, no gradients).

Two paths give the same scores:

* the plain path runs ``score_batch(model, batch, arch)`` on the batches as given;
* the fast path (text accuracy, the default scorer) re-batches the examples once by length, so a
  batch is padded only to the longest sentence of its own length bucket, and computes the
  architecture-independent stem output of each bucket once, reusing it for every candidate
  until the stem's weights change. Logits do not depend on how much padding a batch carries
  (tested in ``tests/test_models.py``), so the per-example predictions, and therefore the
  accuracies, are those of the plain path; ``tests/test_models.py`` checks the scores are equal.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

import torch
from torch import nn

from src.space import Architecture
from src.utils.parallel import thread_map

# (model, batch, arch) -> (number correct or metric numerator, number of examples)
ScoreBatch = Callable[[nn.Module, dict, Architecture], tuple[float, int]]

# Length-bucket sizes for the fast path: on CPU smaller batches pad less; on a GPU a candidate's
# scoring is bound by launching kernels, so fewer, larger batches pay until their padding costs
# more (H200, paper supernet, 1,101 SST-5 dev sentences: 0.344 s with 128, 0.125 s with 512,
# 0.441 s with 2,048, the GRU unpacked; experiments/README.md, "GPU: the GRU unpacked and larger
# scoring buckets").
CPU_BUCKET_SIZE, GPU_BUCKET_SIZE = 128, 512


def default_bucket_size(device: torch.device | str) -> int:
    """The length-bucket size the fast path uses on ``device`` unless told otherwise."""
    return CPU_BUCKET_SIZE if torch.device(device).type == "cpu" else GPU_BUCKET_SIZE


def accuracy_on_batch(model: nn.Module, batch: dict, arch: Architecture) -> tuple[float, int]:
    """Text batches: ``tokens`` (B, T) long, ``mask`` (B, T) bool, True at real tokens, ``labels``
    (B,) long -> (correct, B)."""
    logits = model(batch["tokens"], batch["mask"], arch)
    return (logits.argmax(-1) == batch["labels"]).sum().item(), len(batch["labels"])


def length_buckets(batches: list[dict], bucket_size: int) -> list[dict]:
    """Right-padded text batches -> batches of ``bucket_size`` examples sorted by length, longest
    first (ties in input order).

    Input and output batches are :func:`src.data.text.pad_collate` dicts: ``tokens`` (B, T) long,
    ``mask`` (B, T) bool, ``labels`` (B,) long. Each output batch is trimmed to its own longest
    sequence. ``mask`` must be a prefix mask (True at the first ``length`` positions), as
    ``pad_collate`` makes it.
    """
    tokens, lengths, labels = [], [], []
    for b in batches:
        n = b["mask"].sum(1)
        if not torch.equal(b["mask"], torch.arange(b["mask"].shape[1], device=n.device)[None, :] < n[:, None]):
            raise ValueError("length bucketing needs right-padded batches (prefix masks)")
        tokens.extend(row[:k] for row, k in zip(b["tokens"], n.tolist()))
        lengths.append(n)
        labels.append(b["labels"])
    lengths_t, labels_t = torch.cat(lengths), torch.cat(labels)
    order = torch.argsort(lengths_t, descending=True, stable=True)
    out = []
    for start in range(0, len(order), bucket_size):
        idx = order[start:start + bucket_size]
        tok = nn.utils.rnn.pad_sequence([tokens[i] for i in idx.tolist()], batch_first=True, padding_value=0)
        mask = torch.arange(tok.shape[1], device=tok.device)[None, :] < lengths_t[idx][:, None]
        out.append({"tokens": tok, "mask": mask, "labels": labels_t[idx]})
    return out


class SupernetEstimator:
    """Scores an architecture on fixed batches with the supernet's weights.

    ``batches`` (dicts of tensors) are moved to ``device`` once, so scoring 1,000 candidates
    does not re-collate 1,000 times. ``score_batch`` turns one batch into (numerator, count);
    the score is sum(numerators) / sum(counts) -- accuracy for the default text scorer (a scorer's
    ``score_of_nothing_counted`` attribute, where it has one, is the score when every count is 0). Other
    tasks (graphs, multi-label) pass their own ``score_batch`` and take the plain path.

    With the default scorer and a text model (one with ``features``/``head``), ``fast=True``
    re-batches by length into batches of ``bucket_size`` examples (default: :func:`default_bucket_size`
    for ``device``) and caches each batch's stem
    output across candidates (recomputed whenever a stem or embedding weight changes), and
    ``workers > 1`` scores that many length buckets at a time in threads (CPU; the per-bucket
    counts of correct predictions are integers, so their sum does not depend on the order).
    """

    def __init__(self, model: nn.Module, batches: Iterable[dict], device: torch.device | str = "cpu",
                 score_batch: ScoreBatch = accuracy_on_batch, *, fast: bool = True, bucket_size: int | None = None,
                 workers: int = 1):
        self.model = model
        self.device = torch.device(device)
        self.batches = [{k: v.to(self.device) if torch.is_tensor(v) else v for k, v in b.items()} for b in batches]
        self.score_batch = score_batch
        if not self.batches:
            raise ValueError("the estimator got no validation batches")
        self.fast = (fast and score_batch is accuracy_on_batch and hasattr(model, "features")
                     and hasattr(model, "head") and all({"tokens", "mask", "labels"} <= b.keys() for b in self.batches))
        if bucket_size is not None and (not isinstance(bucket_size, int) or bucket_size < 1):
            raise ValueError(f"the scoring bucket size must be an integer >= 1, got {bucket_size!r}")
        self.bucket_size = bucket_size or default_bucket_size(self.device)
        self.fast_batches = length_buckets(self.batches, self.bucket_size) if self.fast else []
        self.workers = workers
        self._stem_key: tuple | None = None
        self._stem_cache: list[torch.Tensor | None] = []

    @property
    def num_examples(self) -> int:
        return sum(len(b["labels"]) for b in self.batches if "labels" in b)

    def _stem_state(self) -> tuple:
        params = list(self.model.embedding.parameters()) + list(self.model.stem.parameters())
        return tuple((id(p), p.data_ptr(), p._version) for p in params)

    def _refresh_stem_cache(self) -> None:
        """Empty the stem cache if a stem or embedding weight changed since it was filled."""
        key = self._stem_state()
        if key != self._stem_key:
            self._stem_key, self._stem_cache = key, [None] * len(self.fast_batches)

    def _features(self, i: int, b: dict) -> torch.Tensor | None:
        """Stem output of fast batch ``i``, cached; None where the model windows this batch."""
        window = getattr(self.model, "window", None)
        if window is not None and b["tokens"].shape[1] > window:
            return None
        if self._stem_cache[i] is None:
            self._stem_cache[i] = self.model.features(b["tokens"], b["mask"])
        return self._stem_cache[i]

    @contextmanager
    def _evaluating(self) -> Iterator[None]:
        """The model in eval mode within the block, as it was after. Switching walks every module
        (about 25,000 in the paper's supernet, 50 ms), so a model already in eval mode, as the
        search stage leaves it for all its candidates, is not walked at all."""
        if not self.model.training:
            yield
            return
        self.model.eval()
        try:
            yield
        finally:
            self.model.train()

    @torch.inference_mode()
    def __call__(self, arch: Architecture) -> float:
        """The score of ``arch`` (a float: sum of numerators over sum of counts), in eval mode."""
        with self._evaluating():
            return self._fast(arch) if self.fast else self._plain(arch)

    def plain(self, arch: Architecture) -> float:
        """The straightforward score: ``score_batch`` on the batches as given (for tests)."""
        with self._evaluating(), torch.inference_mode():
            return self._plain(arch)

    def _plain(self, arch: Architecture) -> float:
        total, count = 0.0, 0
        for b in self.batches:
            num, n = self.score_batch(self.model, b, arch)
            total += num
            count += n
        if count == 0:
            # micro-F1 with nothing to count (no positive label among the validation nodes, none predicted) is
            # 0.0, as torchmetrics scores it; for accuracy a count of 0 is an empty validation split
            if getattr(self.score_batch, "score_of_nothing_counted", None) is not None:
                return self.score_batch.score_of_nothing_counted
            raise ValueError("the estimator's batches hold no example to score (score_batch counted 0; an empty "
                             "validation mask?)")
        return total / count

    def _fast(self, arch: Architecture) -> float:
        self._refresh_stem_cache()

        @torch.inference_mode()  # thread-local: the worker threads need it too
        def correct_in(i: int) -> int:
            b = self.fast_batches[i]
            h = self._features(i, b)
            if h is None:
                logits = self.model(b["tokens"], b["mask"], arch)
            else:
                logits = self.model.head(self.model.encoder(h, b["mask"], arch), b["mask"])
            return int((logits.argmax(-1) == b["labels"]).sum())

        workers = self.workers if self.device.type == "cpu" else 1
        examples = sum(len(b["labels"]) for b in self.fast_batches)
        if examples == 0:
            raise ValueError("the estimator's batches hold no example to score")
        correct = sum(thread_map(correct_in, range(len(self.fast_batches)), workers))
        return correct / examples

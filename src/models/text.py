"""Text classifiers: the weight-sharing supernet and the retrained child.

Both are a :class:`TextClassifier`: frozen word embeddings -> stem -> functional encoder ->
masked max-pool over time -> linear classifier. They differ only in how the encoder keys its op
modules (see :mod:`src.models.encoder`).
"""

from __future__ import annotations

import torch
from torch import nn

from src.models.encoder import CHILD, FunctionalEncoder, child_op_keys, supernet_op_keys
from src.models.linear import linear
from src.models.ops import Dropout, fill_padded, zero_padded
from src.space import Architecture, FunctionalSpace


def worst_batch_positions(lengths: torch.Tensor, batch_size: int, window: int | None, stride: int) -> int:
    """Token positions the encoder runs on for the costliest batch of ``batch_size`` sequences of
    these ``lengths`` (n,): the longest ones. Without windows (or when none is longer than
    ``window``) a batch is padded to its longest sequence; with them, each sequence is cut into the
    windows :meth:`TextClassifier.window_pool` uses, ``window`` positions each."""
    longest = torch.topk(lengths.to(torch.long), min(int(batch_size), len(lengths))).values
    if len(longest) == 0:
        return 0
    if window is None or int(longest[0]) <= window:
        return len(longest) * int(longest[0])
    windows = torch.clamp(torch.div(longest - window + stride - 1, stride, rounding_mode="floor") + 1, min=1)
    return int(windows.sum()) * int(window)


class Stem(nn.Module):
    """Embedding (B, T, E) -> LayerNorm -> 1x1 conv to D -> zero pads -> ReLU -> dropout (B, T, D)."""

    def __init__(self, emb_dim: int, dim: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(emb_dim)
        self.proj = nn.Linear(emb_dim, dim)  # a kernel-1 conv over time, in (B, T, *) layout
        self.dropout = Dropout(dropout)

    def forward(self, emb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """emb: (B, T, E) float; mask: (B, T) bool, True at real tokens -> (B, T, D), zero at padded positions."""
        return self.dropout(self.pre_dropout(emb, mask), mask=mask)

    def pre_dropout(self, emb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Word vectors ``emb`` (B, T, E), ``mask`` (B, T) -> the stem's output (B, T, D), everything but
        the dropout: deterministic, so one computation serves many architectures."""
        return torch.relu(zero_padded(linear(self.norm(emb), self.proj.weight, self.proj.bias), mask))


class TextClassifier(nn.Module):
    """Token ids (B, T) long + mask (B, T) bool, True at real tokens [+ architecture] -> logits (B, C).

    Rows are right-padded: a row's real tokens come first (``pad_collate`` and ``TextEncoder.pad``
    build them so); the GRU op reads each row up to its length, so a left-padded mask gives other
    logits. Every row needs at least one real token (an empty row's max-pool gives NaN logits).

    Build with :meth:`supernet` or :meth:`child`. ``embeddings`` (V, E) are frozen unless
    ``freeze_embeddings=False``; row 0 is the padding token.

    ``window=None`` (default): the whole sequence is encoded at once (callers truncate it).
    ``window=W``: a sequence longer than W is cut into windows of W tokens every ``stride`` tokens;
    stem, encoder and masked max-pool run on each window and the window maxima are max-pooled.
    A window is used only when it holds tokens the previous one does not (empty windows, and the
    tail windows a longer batch adds, are ignored), so logits do not depend on batch padding.
    """

    def __init__(self, embeddings: torch.Tensor, num_classes: int, encoder: FunctionalEncoder, dropout: float,
                 freeze_embeddings: bool = True, arch: Architecture | None = None, window: int | None = None,
                 stride: int = 32):
        super().__init__()
        if window is not None and not 1 <= int(stride) <= int(window):
            raise ValueError(f"sliding windows need 1 <= stride <= window; got window={window}, stride={stride}")
        self.window = None if window is None else int(window)
        self.stride = int(stride)
        # trained vectors get their own copy: .float() of float32 vectors is the caller's tensor itself, which the
        # optimizer would update in place, and every later model (the next seed) would start from them
        vectors = embeddings.float() if freeze_embeddings else embeddings.float().clone()
        self.embedding = nn.Embedding.from_pretrained(vectors, freeze=freeze_embeddings, padding_idx=0)
        self.stem = Stem(embeddings.shape[1], encoder.dim, dropout)
        self.encoder = encoder
        self.classifier = nn.Linear(encoder.dim, num_classes)
        nn.init.normal_(self.classifier.weight, 0.0, 0.02)
        nn.init.zeros_(self.classifier.bias)
        self.arch = arch

    @classmethod
    def supernet(cls, embeddings: torch.Tensor, num_classes: int, space: FunctionalSpace, dim: int = 64,
                 heads: int = 8, dropout: float = 0.1, attn_dropout: float = 0.1, sharing: str = "full",
                 freeze_embeddings: bool = True, window: int | None = None, stride: int = 32) -> "TextClassifier":
        """Every module any architecture of ``space`` can use, keyed by ``sharing`` mode."""
        encoder = FunctionalEncoder(dim, heads, space.num_layers, dropout, attn_dropout, sharing,
                                    supernet_op_keys(space, sharing), range(space.num_layers))
        return cls(embeddings, num_classes, encoder, dropout, freeze_embeddings, window=window, stride=stride)

    @classmethod
    def child(cls, embeddings: torch.Tensor, num_classes: int, arch: Architecture, dim: int = 256, heads: int = 8,
              dropout: float = 0.1, attn_dropout: float = 0.1, freeze_embeddings: bool = True,
              window: int | None = None, stride: int = 32) -> "TextClassifier":
        """A stand-alone model of ``arch``: its own module for every op application."""
        attn_layers = [i for i, layer in enumerate(arch) if layer.kind == "attn"]
        encoder = FunctionalEncoder(dim, heads, len(arch), dropout, attn_dropout, CHILD, child_op_keys(arch),
                                    attn_layers)
        return cls(embeddings, num_classes, encoder, dropout, freeze_embeddings, arch=arch, window=window,
                   stride=stride)

    def features(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) long, mask (B, T) bool -> the stem output (B, T, D), zero at padded positions
        (dropout included in training); architecture-independent, so computable once per batch."""
        return self.stem(self.embedding(tokens), mask)

    def shares_stem(self, tokens: torch.Tensor) -> bool:
        """Whether :meth:`stem_base` / :meth:`forward_from_stem` apply to ``tokens`` (B, T): no
        sliding windows needed (T <= ``window``, or no window)."""
        return self.window is None or tokens.shape[1] <= self.window

    def stem_base(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) long, mask (B, T) bool, True at real tokens -> the stem output before its
        dropout (B, T, D), zero at padded positions: identical for every architecture of a batch."""
        return self.stem.pre_dropout(self.embedding(tokens), mask)

    def forward_from_stem(self, base: torch.Tensor, mask: torch.Tensor, arch: Architecture) -> torch.Tensor:
        """Logits (B, C) from :meth:`stem_base`'s output ``base`` (B, T, D) and ``mask`` (B, T) bool: the
        stem dropout (a fresh draw, in the same order as :meth:`forward` draws it), encoder and head.
        Same result as ``forward(tokens, mask, arch)``."""
        return self.head(self.encoder(self.stem.dropout(base, mask=mask), mask, arch), mask)

    def head(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Max-pool over the real tokens (``mask`` (B, T) True) of the last node (B, T, D) -> logits (B, C)."""
        pooled = fill_padded(h, mask, float("-inf")).amax(dim=1)
        return self.classifier(pooled)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor, arch: Architecture | None = None) -> torch.Tensor:
        """tokens (B, T) long, mask (B, T) bool, True at real tokens -> logits (B, C); ``arch``
        defaults to the child's own (a supernet needs one)."""
        arch = arch if arch is not None else self.arch
        if arch is None:
            raise ValueError("a supernet needs an architecture to run")
        if tokens.dim() != 2 or mask.dtype != torch.bool or mask.shape != tokens.shape:
            # a float 0/1 mask failed deep in the torch ops ("~ is only implemented on integer and Boolean")
            raise ValueError(f"expected tokens (B, T) long and mask (B, T) bool, True at real tokens; got tokens of "
                             f"shape {tuple(tokens.shape)} and mask {mask.dtype} of shape {tuple(mask.shape)}")
        if self.window is not None and tokens.shape[1] > self.window:
            return self.classifier(self.window_pool(tokens, mask, arch))
        return self.head(self.encoder(self.features(tokens, mask), mask, arch), mask)

    def window_pool(self, tokens: torch.Tensor, mask: torch.Tensor, arch: Architecture) -> torch.Tensor:
        """Sliding-window encoding of tokens (B, T) / mask (B, T), T > window -> pooled features (B, D).

        Window k covers positions [k * stride, k * stride + window). Window 0 is always used; window
        k > 0 only when it starts before ``length - (window - stride)``, i.e. when it reaches tokens
        window k - 1 does not. That depends on the sequence's own length only, never on T.
        """
        w, s = self.window, self.stride
        batch, length = tokens.shape
        n_win = -(-(length - w) // s) + 1
        pad = (n_win - 1) * s + w - length
        tokens = nn.functional.pad(tokens, (0, pad), value=0)
        mask = nn.functional.pad(mask, (0, pad), value=False)
        win_tokens = tokens.unfold(1, w, s)  # (B, n_win, w)
        win_mask = mask.unfold(1, w, s)
        starts = torch.arange(n_win, device=tokens.device) * s
        lengths = mask.sum(dim=1, keepdim=True)
        used = (starts == 0).unsqueeze(0) | (starts.unsqueeze(0) < lengths - (w - s))  # (B, n_win)
        used &= win_mask.any(dim=-1)
        flat_tokens, flat_mask = win_tokens[used], win_mask[used]  # (N, w): only the windows that count
        h = self.encoder(self.features(flat_tokens, flat_mask), flat_mask, arch)
        pooled = fill_padded(h, flat_mask, float("-inf")).amax(dim=1)  # (N, D)
        per_window = pooled.new_full((batch, n_win, pooled.shape[-1]), float("-inf"))
        per_window[used] = pooled
        return per_window.amax(dim=1)

    def used_parameters(self, arch: Architecture | None = None) -> dict[str, nn.Parameter]:
        """``{name: parameter}`` of every trainable parameter ``arch`` uses (stem, ops, norms, classifier)."""
        arch = arch if arch is not None else self.arch
        out = {f"encoder.{k}": p for k, p in self.encoder.used_parameters(arch).items()}
        for prefix, module in (("embedding", self.embedding), ("stem", self.stem), ("classifier", self.classifier)):
            out.update({f"{prefix}.{n}": p for n, p in module.named_parameters()})
        return {k: p for k, p in out.items() if p.requires_grad}

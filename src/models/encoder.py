"""The functional-layer encoder shared by the supernet and the retrained child.

Which module an op application uses is decided by a *keying*:

* the supernet keys by edge, op and context (:func:`sharing_key`, modes ``full``, ``source``,
  ``target``, ``none``), so one module serves every architecture that applies that op in that
  context;
* the child (``CHILD``) gives every op application of its one architecture its own module.

Layout: ``x`` (B, T, D), ``mask`` (B, T) bool, True at real tokens (see :mod:`src.models.ops`).
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from src.models import cpu_kernels
from src.models.ops import (AttentionPlan, Dropout, apply_op, attention_bias, attention_pair_count, build_op,
                            fused_attention, grouped_attention, masked_attention, masked_layer_norm, real_rows,
                            replay_dropout_contexts)
from src.space import SHARING_MODES, Architecture, Context, FunctionalSpace, arch_contexts
from src.space.architecture import live_layers
from src.utils.errors import AutoAttendError

CHILD = "child"


def sharing_key(ctx: Context, mode: str) -> str:
    """The supernet module key of an op applied in context ``ctx`` under sharing ``mode``.

    ``full``: edge + op + source kind + target role; ``source``: edge + op + source kind;
    ``target``: edge + op + role; ``none``: edge + op (plain one-shot sharing). The stem (node 0)
    has no source kind.
    """
    edge = f"{ctx.src}-{ctx.layer + 1}-{ctx.op}"
    src = ctx.src_kind or "stem"
    if mode == "full":
        return f"{edge}-{src}-{ctx.role}"
    if mode == "source":
        return f"{edge}-{src}"
    if mode == "target":
        return f"{edge}-{ctx.role}"
    if mode == "none":
        return edge
    raise ValueError(f"unknown sharing mode {mode!r}; expected one of {SHARING_MODES}")


def module_key(layer: int, slot: str, ctx: Context, keying: str) -> str:
    """Module key for the op in ``slot`` of ``layer``: per context (supernet) or per slot (child)."""
    if keying == CHILD:
        return f"L{layer}-{slot}-{ctx.op}"
    return sharing_key(ctx, keying)


class FunctionalEncoder(nn.Module):
    """Runs an :class:`Architecture` over the stem output.

    Args:
        dim: channels D. heads: attention heads (must divide D). num_layers: layers L.
        dropout: dropout in ops, after add/attn layers. attn_dropout: dropout on attention weights.
        keying: a sharing mode (supernet) or ``"child"``.
        op_keys: ``{module key: op name}`` for every parametric module to build.
        attn_layers: indices of the layers that get an attention LayerNorm (all, in a supernet).

    ``recompute`` (attribute, default False): in training with gradients, each layer keeps only
    its input nodes for the backward pass and runs its forward again during backward
    (``torch.utils.checkpoint``, with the same dropout masks): the same logits and gradients
    (tested) for a fraction of the activation memory and about one more forward pass.
    """

    def __init__(self, dim: int, heads: int, num_layers: int, dropout: float, attn_dropout: float, keying: str,
                 op_keys: dict[str, str], attn_layers: Iterable[int]):
        super().__init__()
        if dim % heads:
            raise ValueError(f"model dim {dim} is not divisible by {heads} heads")
        self.dim, self.heads, self.num_layers = dim, heads, num_layers
        self.keying = keying
        self.attn_dropout = attn_dropout
        self.dropout = Dropout(dropout)
        self.ops = nn.ModuleDict({key: build_op(op, dim, dropout) for key, op in sorted(op_keys.items())})
        self.attn_norms = nn.ModuleDict({str(i): nn.LayerNorm(dim) for i in sorted(set(attn_layers))})
        self.recompute = False

    def keys_for(self, arch: Architecture) -> list[tuple[int, str, str, str]]:
        """``(layer, slot, op, module key)`` for each op application of ``arch``."""
        return [(i, slot, ctx.op, module_key(i, slot, ctx, self.keying)) for i, slot, ctx in arch_contexts(arch)]

    def used_module_keys(self, arch: Architecture) -> set[str]:
        """Keys of the parametric op modules ``arch`` uses."""
        return {key for _, _, op, key in self.keys_for(arch) if key in self.ops}

    def used_parameters(self, arch: Architecture) -> dict[str, nn.Parameter]:
        """``{qualified name: parameter}`` of everything in this encoder that ``arch`` uses."""
        out = {}
        for key in self.used_module_keys(arch):
            for name, p in self.ops[key].named_parameters():
                out[f"ops.{key}.{name}"] = p
        for i, layer in enumerate(arch):
            if layer.kind == "attn":
                for name, p in self.attn_norms[str(i)].named_parameters():
                    out[f"attn_norms.{i}.{name}"] = p
        return out

    def forward(self, x: torch.Tensor, mask: torch.Tensor, arch: Architecture) -> torch.Tensor:
        """``x`` (B, T, D) float stem output, padded positions zero; ``mask`` (B, T) bool, True at
        real tokens -> last node (B, T, D), zero at padded positions.

        Layers whose output nothing reaching the last node reads (:func:`live_layers`) are not
        computed: they cannot change the output or any gradient. Evaluation gives the same logits
        as computing them; in training, their dropout masks are not drawn, so later layers draw
        different (equally distributed) masks than a forward that computed them would.
        """
        if len(arch) != self.num_layers:
            raise AutoAttendError(f"architecture has {len(arch)} layers, the model has {self.num_layers}")
        per_layer: list[list[tuple[str, str, str]]] = [[] for _ in arch]
        for i, slot, op, key in self.keys_for(arch):
            if build_op_has_weights(op) and key not in self.ops:  # was "'NoneType' object is not callable"
                raise AutoAttendError(f"no module for op {op!r} (key {key}); the architecture is outside this "
                                      "model's space")
            per_layer[i].append((slot, op, key))
        for i, layer in enumerate(arch):  # a child has an attention LayerNorm only where its own layers attend
            if layer.kind == "attn" and str(i) not in self.attn_norms:
                raise AutoAttendError(f"no attention LayerNorm for layer {i} (an add layer in this model); the "
                                      "architecture is outside this model's space")
        live = live_layers(arch)
        nodes: list[torch.Tensor | None] = [x]
        attends = self.training and any(layer.kind == "attn" for layer, on in zip(arch, live) if on)
        # CPU training: the fused kernel, else attention by length group; elsewhere one padding bias
        fused = attends and cpu_kernels.use_kernel(x)
        pairs = attention_pair_count(mask, self.heads) if fused and self.attn_dropout > 0 else None
        plan = (AttentionPlan(mask, self.heads, self.attn_dropout > 0)
                if attends and not fused and mask.device.type == "cpu" else None)
        bias = attention_bias(mask) if attends and not fused and plan is None else None
        # dropout draws only for real tokens (padded positions are zero or masked out; tested)
        rows = real_rows(mask) if self.training and self.dropout.p > 0 else None
        recompute = self.recompute and self.training and torch.is_grad_enabled()
        for i, layer in enumerate(arch):
            if not live[i]:
                nodes.append(None)  # nothing that reaches the output reads it
                continue
            sources = sorted({getattr(layer, f"{slot}_src") for slot, _, _ in per_layer[i]})

            def compute(*inputs: torch.Tensor, i: int = i, layer=layer, sources=sources) -> torch.Tensor:
                node = dict(zip(sources, inputs))
                outs = {slot: apply_op(op, self.ops[key] if key in self.ops else None,
                                       node[getattr(layer, f"{slot}_src")], mask)
                        for slot, op, key in per_layer[i]}
                if layer.kind == "add":
                    parts = [t for t in (outs["q"], outs["k"]) if t is not None]
                    return self.dropout(sum(parts[1:], parts[0]), rows) if parts else torch.zeros_like(x)
                q, k, v = (outs[s] if outs[s] is not None else torch.zeros_like(x) for s in ("q", "k", "v"))
                p = self.attn_dropout if self.training else 0.0
                if fused:
                    h = fused_attention(q, k, v, mask, self.heads, p, pairs)
                elif plan is not None:
                    h = grouped_attention(q, k, v, plan, self.heads, p)
                else:
                    h = masked_attention(q, k, v, mask, self.heads, p, bias)
                return masked_layer_norm(self.attn_norms[str(i)], self.dropout(h, rows), mask)

            inputs = [nodes[j] for j in sources]
            if recompute and inputs:
                nodes.append(checkpoint(compute, *inputs, use_reentrant=False, context_fn=replay_dropout_contexts))
            else:
                nodes.append(compute(*inputs))
        return nodes[-1]


def supernet_op_keys(space: FunctionalSpace, mode: str) -> dict[str, str]:
    """``{module key: op}`` for every parametric module some architecture of ``space`` can use.

    Contexts that no architecture can reach (e.g. Q from a non-adjacent node under the priors)
    get no module, so nothing is built that can never be trained.
    """
    keys = {}
    for ctx in space.contexts():
        if build_op_has_weights(ctx.op):
            keys[sharing_key(ctx, mode)] = ctx.op
    return keys


def child_op_keys(arch: Architecture) -> dict[str, str]:
    """``{module key: op}`` giving each op application of ``arch`` its own module."""
    return {module_key(i, slot, ctx, CHILD): ctx.op for i, slot, ctx in arch_contexts(arch)
            if build_op_has_weights(ctx.op)}


def build_op_has_weights(op: str) -> bool:
    """Whether op ``op`` has a module (every op but ``zero`` and ``identity``)."""
    return op not in ("zero", "identity")

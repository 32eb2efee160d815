"""The supernet's optimizer: Adam with its two moments kept in float32 (the default, ``torch.optim.Adam``)
or, as a separate, labelled memory option, in bfloat16.

The full-context supernet has about 119 M trainable parameters (453 MiB in float32); once every op
module has been sampled, Adam's two moments hold twice that. Keeping the moments in bfloat16 halves
their memory (907 -> 453 MiB). Values are rounded to bfloat16 *stochastically* (up or down with
probability given by the distance, so the rounding is unbiased): rounding to nearest would freeze
the second moment, whose per-step decay (``beta2 = 0.999``, a relative change of 1e-3) is smaller
than bfloat16's half-spacing (2^-9). The update itself is computed in float32, exactly as
``torch.optim.Adam`` computes it (L2 weight decay added to the gradient, bias-corrected moments).
"""

from __future__ import annotations

import math
from typing import Iterable

import torch

from src.utils.errors import AutoAttendError

STATE_DTYPES = ("float32", "bfloat16")

# Moments are expanded to float32 a chunk of parameters at a time, so the update's temporaries
# stay small next to the state it saves.
_CHUNK_NUMEL = 1 << 22


def stochastic_round_to_bf16(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``x`` (float32, any shape, overwritten) rounded to bfloat16, up or down at random with
    probability proportional to the distance, so ``E[result] == x``; returns a bfloat16 tensor of
    ``x``'s shape.

    Adding uniform noise to the 16 bits that bfloat16 drops and truncating them does exactly that
    (the sign bit is untouched, so it holds for negative values too)."""
    bits = x.view(torch.int32)
    noise = torch.randint(0, 1 << 16, x.shape, dtype=torch.int32, device=x.device, generator=generator)
    bits.add_(noise).bitwise_and_(-(1 << 16))
    return x.to(torch.bfloat16)


class LowPrecisionStateAdam(torch.optim.Optimizer):
    """``torch.optim.Adam``'s update (no amsgrad) with ``exp_avg`` and ``exp_avg_sq`` stored in
    ``state_dtype``: ``torch.bfloat16`` (stochastic rounding, seeded by ``seed``) or
    ``torch.float32`` (then the same as ``torch.optim.Adam``; kept for the tests).

    ``flat_state`` (default): every parameter's moments are allocated at construction, as views of
    one zeroed buffer per moment (the state a long run reaches anyway; tens of thousands of small
    tensors otherwise cost the allocator about a third more than their bytes). A moment at zero
    with step 0 is exactly what Adam creates at a parameter's first gradient, so the updates are
    those of lazily created state (tested). Without it, state is created lazily as in
    ``torch.optim.Adam``. Parameters without a gradient are skipped either way. Steps are counted
    per parameter as plain integers. The rounding generator's state is part of
    :meth:`state_dict`, so a resumed run rounds as an uninterrupted one would.
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, state_dtype: torch.dtype = torch.bfloat16,
                 seed: int = 0, flat_state: bool = True):
        if state_dtype not in (torch.bfloat16, torch.float32):
            raise ValueError(f"state_dtype must be torch.bfloat16 or torch.float32, got {state_dtype}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.state_dtype = state_dtype
        self._rounding = torch.Generator().manual_seed(seed)
        self._flat_views: dict[torch.Tensor, tuple[torch.Tensor, torch.Tensor]] = {}
        if flat_state:
            self._allocate_flat_state()

    def _allocate_flat_state(self) -> None:
        by_device: dict[torch.device, list[torch.Tensor]] = {}
        for group in self.param_groups:
            for p in group["params"]:
                by_device.setdefault(p.device, []).append(p)
        for device, params in by_device.items():
            total = sum(p.numel() for p in params)
            buffers = [torch.zeros(total, dtype=self.state_dtype, device=device) for _ in range(2)]
            offset = 0
            for p in params:
                # the parameter's own strides (dense), so the update's operands share one layout
                self._flat_views[p] = tuple(b.as_strided(p.shape, p.stride(), offset) for b in buffers)
                self.state[p] = {"step": 0, "exp_avg": self._flat_views[p][0], "exp_avg_sq": self._flat_views[p][1]}
                offset += p.numel()

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["rounding_rng"] = self._rounding.get_state()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        rng = state_dict.pop("rounding_rng", None)
        super().load_state_dict(state_dict)
        # torch casts loaded state to each parameter's dtype; the moments go back (exactly) to
        # ours, into the flat buffers when there are any
        for p, views in self._flat_views.items():
            loaded = self.state.get(p) or {}
            for key, view in zip(("exp_avg", "exp_avg_sq"), views):
                if key in loaded:
                    view.copy_(loaded[key])
                else:
                    view.zero_()
            self.state[p] = {"step": int(loaded.get("step", 0)), "exp_avg": views[0], "exp_avg_sq": views[1]}
        for p, state in self.state.items():
            if p not in self._flat_views and state:
                state["step"] = int(state["step"])
                for key in ("exp_avg", "exp_avg_sq"):
                    state[key] = state[key].to(self.state_dtype)
        if rng is not None:
            self._rounding.set_state(rng)

    def _state_of(self, p: torch.Tensor) -> dict:
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p, dtype=self.state_dtype, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, dtype=self.state_dtype, memory_format=torch.preserve_format)
        return state

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            for chunk in _chunks(params, _CHUNK_NUMEL):
                self._update(group, chunk)
        return loss

    def _update(self, group: dict, params: list[torch.Tensor]) -> None:
        beta1, beta2 = group["betas"]
        states = [self._state_of(p) for p in params]
        grads = [p.grad for p in params]
        if group["weight_decay"]:
            grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        low_precision = self.state_dtype != torch.float32
        # float32 state is updated in place; bfloat16 state through float32 copies, rounded back below
        exp_avg = [s["exp_avg"].float() if low_precision else s["exp_avg"] for s in states]
        exp_avg_sq = [s["exp_avg_sq"].float() if low_precision else s["exp_avg_sq"] for s in states]
        torch._foreach_lerp_(exp_avg, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sq, beta2)
        torch._foreach_addcmul_(exp_avg_sq, grads, grads, 1 - beta2)
        step_sizes, bias2_roots = [], []
        for s in states:
            s["step"] += 1
            t = s["step"]
            step_sizes.append(-group["lr"] / (1 - beta1 ** t))
            bias2_roots.append(math.sqrt(1 - beta2 ** t))
        denom = torch._foreach_sqrt(exp_avg_sq)
        torch._foreach_div_(denom, bias2_roots)
        torch._foreach_add_(denom, group["eps"])
        torch._foreach_addcdiv_(params, exp_avg, denom, step_sizes)
        if low_precision:
            for s, m, v in zip(states, exp_avg, exp_avg_sq):
                for key, value in (("exp_avg", m), ("exp_avg_sq", v)):
                    generator = self._rounding if value.device.type == "cpu" else None
                    s[key].copy_(stochastic_round_to_bf16(value, generator))


def _chunks(params: list[torch.Tensor], numel: int) -> Iterable[list[torch.Tensor]]:
    chunk, size = [], 0
    for p in params:
        chunk.append(p)
        size += p.numel()
        if size >= numel:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def check_state_dtype(state_dtype: str, key: str = "supernet.optimizer_state") -> str:
    """``state_dtype`` if it is one of :data:`STATE_DTYPES`, else an :class:`AutoAttendError` naming ``key``."""
    if state_dtype not in STATE_DTYPES:
        raise AutoAttendError(f"{key}: expected one of {', '.join(STATE_DTYPES)}, got {state_dtype!r}")
    return state_dtype


def supernet_adam(params: Iterable[torch.Tensor], lr: float, weight_decay: float = 0.0,
                  state_dtype: str = "float32", seed: int = 0) -> torch.optim.Optimizer:
    """The supernet's Adam: ``torch.optim.Adam`` for ``state_dtype="float32"`` (the default, the
    authors' protocol), :class:`LowPrecisionStateAdam` with bfloat16 moments for ``"bfloat16"``."""
    if check_state_dtype(state_dtype) == "float32":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return LowPrecisionStateAdam(params, lr=lr, weight_decay=weight_decay, state_dtype=torch.bfloat16, seed=seed)


def materialise_adam_state(optimizer: torch.optim.Optimizer) -> int:
    """Create the (zero) Adam state of every parameter that has none yet, as it is once training
    has sampled every op module; returns the bytes the moments then hold.

    Adam creates exactly this state (step 0, zero moments) lazily at a parameter's first gradient,
    so later updates are the same as without this call. The benchmark uses it so that its peak
    memory is that of a long run, not of its first few steps."""
    total = 0
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state[p]
            if not state:
                if isinstance(optimizer, LowPrecisionStateAdam):
                    optimizer._state_of(p)
                else:
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            total += sum(v.numel() * v.element_size() for k, v in state.items() if k != "step")
    return total

"""The supernet's optimizer: Adam with its two moments kept in float32 (the default, ``torch.optim.Adam``)
or, as separate, labelled memory options, in bfloat16 or in 8-bit block-wise codes
(:class:`BlockwiseInt8StateAdam`).

The full-context supernet has about 119 M trainable parameters (475 MB in float32); once every op
module has been sampled, Adam's two moments hold twice that. Keeping the moments in bfloat16 halves
their memory (950 -> 475 MB). Values are rounded to bfloat16 *stochastically* (up or down with
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

STATE_DTYPES = ("float32", "bfloat16", "int8")

# values per scale of BlockwiseInt8StateAdam's 8-bit moments
INT8_BLOCK = 128

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
                view.copy_(loaded[key]) if key in loaded else view.zero_()
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

    def _store(self, dst: torch.Tensor, value: torch.Tensor) -> None:
        if dst.dtype == torch.float32:
            dst.copy_(value)
        else:
            dst.copy_(stochastic_round_to_bf16(value, self._rounding if dst.device.type == "cpu" else None))

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

    def _load_moments(self, states: list[dict]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """float32 moments to update in place (the stored ones themselves for float32 state)."""
        if self.state_dtype == torch.float32:
            return [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states]
        return [s["exp_avg"].float() for s in states], [s["exp_avg_sq"].float() for s in states]

    def _store_moments(self, states: list[dict], exp_avg: list[torch.Tensor], exp_avg_sq: list[torch.Tensor]) -> None:
        if self.state_dtype != torch.float32:
            for s, m, v in zip(states, exp_avg, exp_avg_sq):
                self._store(s["exp_avg"], m)
                self._store(s["exp_avg_sq"], v)

    def _update(self, group: dict, params: list[torch.Tensor]) -> None:
        beta1, beta2 = group["betas"]
        states = [self._state_of(p) for p in params]
        grads = [p.grad for p in params]
        if group["weight_decay"]:
            grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        exp_avg, exp_avg_sq = self._load_moments(states)
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
        self._store_moments(states, exp_avg, exp_avg_sq)


class BlockwiseInt8StateAdam(LowPrecisionStateAdam):
    """The same Adam update with each moment stored in 8 bits per value, block-wise: blocks of
    :data:`INT8_BLOCK` consecutive values (in the parameter's memory order) share one float32 scale.

    * ``exp_avg`` (signed): ``code = m / absmax * 127``, int8.
    * ``exp_avg_sq`` (>= 0, spanning many orders of magnitude within a block): the fourth root,
      ``code = (v / max) ** (1/4) * 255``, uint8, so the relative resolution is even across decades
      (a value 1e-8 of its block's maximum still gets code 2.55); a positive value never rounds to
      code 0, so the update's denominator never collapses to ``eps``.

    Codes are rounded stochastically (``floor(x + U[0, 1))``, unbiased in the code domain). All
    parameters' codes and scales are allocated at once, one buffer each. About 2.06 bytes per
    parameter for both moments (bfloat16: 4, float32: 8). A labelled lower-precision option, like
    :class:`LowPrecisionStateAdam`'s bfloat16.
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, seed: int = 0):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         state_dtype=torch.float32, seed=seed, flat_state=False)
        self.state_dtype = torch.uint8  # what state_dict/load_state_dict report; the moments are below
        by_device: dict[torch.device, list[torch.Tensor]] = {}
        for group in self.param_groups:
            for p in group["params"]:
                by_device.setdefault(p.device, []).append(p)
        for device, params in by_device.items():
            blocks = [-(-p.numel() // INT8_BLOCK) for p in params]
            total = sum(blocks)
            codes_m = torch.zeros(total, INT8_BLOCK, dtype=torch.int8, device=device)
            codes_v = torch.zeros(total, INT8_BLOCK, dtype=torch.uint8, device=device)
            scales = torch.zeros(2, total, dtype=torch.float32, device=device)
            start = 0
            for p, n in zip(params, blocks):
                self.state[p] = {"step": 0, "exp_avg": codes_m[start:start + n], "exp_avg_scale": scales[0, start:start + n],
                                 "exp_avg_sq": codes_v[start:start + n], "exp_avg_sq_scale": scales[1, start:start + n]}
                start += n
        self._views = {p: dict(st) for p, st in self.state.items()}

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        rng = state_dict.pop("rounding_rng", None)
        torch.optim.Optimizer.load_state_dict(self, state_dict)
        # torch casts loaded tensors to the parameter's dtype: codes and scales go back into our
        # buffers (exactly: the codes are integers)
        for p, views in self._views.items():
            loaded = self.state.get(p) or {}
            for key, view in views.items():
                if key != "step":
                    view.copy_(loaded[key]) if key in loaded else view.zero_()
            self.state[p] = {**views, "step": int(loaded.get("step", 0))}
        if rng is not None:
            self._rounding.set_state(rng)

    def _state_of(self, p: torch.Tensor) -> dict:
        return self.state[p]

    @staticmethod
    def _as_param(flat: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """The first ``p.numel()`` values of the padded (blocks, INT8_BLOCK) float32 ``flat``, laid out
        as ``p`` is in memory (a view: in-place updates land in ``flat``)."""
        return flat.view(-1)[:p.numel()].as_strided(p.shape, p.stride())

    def _load_moments(self, states: list[dict]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        self._flat_moments = []
        exp_avg, exp_avg_sq = [], []
        for p, s in zip(self._chunk_params, states):
            m = s["exp_avg"].float().mul_(s["exp_avg_scale"].unsqueeze(1) / 127)
            v = s["exp_avg_sq"].float().div_(255).pow_(4).mul_(s["exp_avg_sq_scale"].unsqueeze(1))
            self._flat_moments.append((m, v))
            exp_avg.append(self._as_param(m, p))
            exp_avg_sq.append(self._as_param(v, p))
        return exp_avg, exp_avg_sq

    def _store_moments(self, states: list[dict], exp_avg: list[torch.Tensor], exp_avg_sq: list[torch.Tensor]) -> None:
        g = self._rounding if self._flat_moments and self._flat_moments[0][0].device.type == "cpu" else None
        for s, (m, v) in zip(states, self._flat_moments):
            scale = m.abs().amax(dim=1)
            s["exp_avg_scale"].copy_(scale)
            codes = m.div_(scale.clamp_min(torch.finfo(torch.float32).tiny).unsqueeze(1)).mul_(127)
            codes.add_(torch.rand(codes.shape, generator=g, device=codes.device)).floor_().clamp_(-127, 127)
            s["exp_avg"].copy_(codes)
            top = v.amax(dim=1)
            s["exp_avg_sq_scale"].copy_(top)
            positive = v > 0
            codes = v.div_(top.clamp_min(torch.finfo(torch.float32).tiny).unsqueeze(1)).pow_(0.25).mul_(255)
            codes.add_(torch.rand(codes.shape, generator=g, device=codes.device)).floor_().clamp_(0, 255)
            codes.masked_fill_(positive & (codes == 0), 1)
            s["exp_avg_sq"].copy_(codes)
        self._flat_moments = []

    def _update(self, group: dict, params: list[torch.Tensor]) -> None:
        self._chunk_params = params
        super()._update(group, params)


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
    authors' protocol), :class:`LowPrecisionStateAdam` with bfloat16 moments for ``"bfloat16"``,
    :class:`BlockwiseInt8StateAdam` with 8-bit block-wise moments for ``"int8"``."""
    if check_state_dtype(state_dtype) == "float32":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if state_dtype == "int8":
        return BlockwiseInt8StateAdam(params, lr=lr, weight_decay=weight_decay, seed=seed)
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

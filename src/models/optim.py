"""The supernet's optimizer: Adam with its two moments kept in float32 (the default, ``torch.optim.Adam``)
or, as a separate, labelled memory option, in bfloat16; either kind of moments can also be kept in a
file instead of the process's memory (``offload_dir``, :class:`OffloadedMoments`).

The full-context supernet has about 119 M trainable parameters (453 MiB in float32); once every op
module has been sampled, Adam's two moments hold twice that. Keeping the moments in bfloat16 halves
their memory (907 -> 453 MiB). Values are rounded to bfloat16 *stochastically* (up or down with
probability given by the distance, so the rounding is unbiased): rounding to nearest would freeze
the second moment, whose per-step decay (``beta2 = 0.999``, a relative change of 1e-3) is smaller
than bfloat16's half-spacing (2^-9). The update itself is computed in float32, exactly as
``torch.optim.Adam`` computes it (L2 weight decay added to the gradient, bias-corrected moments).
"""

from __future__ import annotations

import ctypes
import math
import os
import re
import weakref
from pathlib import Path
from typing import Iterable

import torch

from src.choices import OPTIMIZER_STATES
from src.utils.errors import AutoAttendError


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
    ``torch.float32`` (then the same as ``torch.optim.Adam``: the tests' reference, and what
    :func:`supernet_adam` builds for float32 moments with ``offload_dir``).

    ``flat_state`` (default): every parameter's moments are allocated at construction, as views of
    one zeroed buffer per moment (the state a long run reaches anyway; tens of thousands of small
    tensors otherwise cost the allocator about a third more than their bytes). A moment at zero
    with step 0 is exactly what Adam creates at a parameter's first gradient, so the updates are
    those of lazily created state (tested). Without it, state is created lazily as in
    ``torch.optim.Adam``. Parameters without a gradient are skipped either way. Steps are counted
    per parameter as plain integers. The rounding generator's state is part of
    :meth:`state_dict`, so a resumed run rounds as an uninterrupted one would.

    ``offload_dir`` (CPU parameters only; implies ``flat_state``): the two flat buffers live in a
    file mapped into memory (:class:`OffloadedMoments`) whose pages are handed back to the kernel
    after each chunk of parameters a :meth:`step` updates, so the process holds only the moments
    it is updating. The arithmetic is unchanged (float32 state still equals ``torch.optim.Adam``
    bit for bit). :meth:`state_dict` then saves the moments as a snapshot file in ``offload_dir``
    (named in the returned dict) instead of as tensors.
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, state_dtype: torch.dtype = torch.bfloat16,
                 seed: int = 0, flat_state: bool = True, offload_dir: str | Path | None = None):
        if state_dtype not in (torch.bfloat16, torch.float32):
            raise ValueError(f"state_dtype must be torch.bfloat16 or torch.float32, got {state_dtype}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.state_dtype = state_dtype
        self._rounding = torch.Generator().manual_seed(seed)
        self._flat_views: dict[torch.Tensor, tuple[torch.Tensor, torch.Tensor]] = {}
        self._offload: OffloadedMoments | None = None
        if offload_dir is not None:
            devices = {p.device.type for group in self.param_groups for p in group["params"]}
            if devices != {"cpu"}:
                raise AutoAttendError(f"Adam state offloading keeps CPU parameters' moments in a file; "
                                      f"got parameters on {', '.join(sorted(devices))}")
            total = sum(p.numel() for group in self.param_groups for p in group["params"])
            self._offload = OffloadedMoments(offload_dir, 2 * total, state_dtype)
        if flat_state or self._offload is not None:
            self._allocate_flat_state()

    def _allocate_flat_state(self) -> None:
        by_device: dict[torch.device, list[torch.Tensor]] = {}
        for group in self.param_groups:
            for p in group["params"]:
                by_device.setdefault(p.device, []).append(p)
        for device, params in by_device.items():
            total = sum(p.numel() for p in params)
            if self._offload is not None:  # zeros until written: the file starts as a hole
                buffers = [self._offload.buffer[:total], self._offload.buffer[total:]]
            else:
                buffers = [torch.zeros(total, dtype=self.state_dtype, device=device) for _ in range(2)]
            offset = 0
            for p in params:
                # the parameter's own strides (dense), so the update's operands share one layout
                self._flat_views[p] = tuple(b.as_strided(p.shape, p.stride(), b.storage_offset() + offset)
                                             for b in buffers)
                self.state[p] = {"step": 0, "exp_avg": self._flat_views[p][0], "exp_avg_sq": self._flat_views[p][1]}
                offset += p.numel()

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["rounding_rng"] = self._rounding.get_state()
        if self._offload is not None:
            # the moments go to a snapshot file (copied by the kernel, never through this process's
            # memory); the dict keeps each parameter's step and the snapshot's name
            # (Optimizer.state_dict packs the live per-parameter dicts: copy, never pop)
            state["state"] = {index: {"step": entry["step"]} for index, entry in state["state"].items()}
            progress = max((s.get("step", 0) for s in state["state"].values()), default=0)
            state["offloaded_moments"] = {"file": self._offload.snapshot(progress).name,
                                          "numel": self._offload.numel, "dtype": str(self.state_dtype)}
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        rng = state_dict.pop("rounding_rng", None)
        offloaded = state_dict.pop("offloaded_moments", None)
        if offloaded is not None:
            if self._offload is None:
                raise AutoAttendError(f"this optimizer state keeps Adam's moments in the file {offloaded['file']!r}: "
                                      "load it with state offloading on (supernet.optimizer_offload=true)")
            if offloaded["numel"] != self._offload.numel or offloaded["dtype"] != str(self.state_dtype):
                raise AutoAttendError(f"offloaded Adam moments {offloaded['file']!r} hold {offloaded['numel']} "
                                      f"{offloaded['dtype']} values; this optimizer has {self._offload.numel} "
                                      f"{self.state_dtype}")
            self._offload.restore(offloaded["file"])
        super().load_state_dict(state_dict)
        # torch casts loaded state to each parameter's dtype; the moments go back (exactly) to
        # ours, into the flat buffers when there are any (offloaded ones are already in place)
        for p, views in self._flat_views.items():
            loaded = self.state.get(p) or {}
            if offloaded is None:
                for key, view in zip(("exp_avg", "exp_avg_sq"), views):
                    if key in loaded:
                        view.copy_(loaded[key])
                    else:
                        view.zero_()
            self.state[p] = {"step": int(loaded.get("step", 0)), "exp_avg": views[0], "exp_avg_sq": views[1]}
        if self._offload is not None:
            self._offload.release()
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
                if self._offload is not None:  # at most one chunk's moments resident at a time
                    self._offload.release()
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


_MADV_DONTNEED = 4


def _madvise():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return libc.madvise


class OffloadedMoments:
    """Adam's moments (``numel`` values of ``dtype``) in a file mapped into memory, shared with the
    kernel's page cache, instead of in the process's own memory.

    ``buffer`` is the mapped (numel,) tensor. The file is created under ``directory`` and unlinked at
    once (the mapping and an open descriptor keep it alive; nothing is left behind when the process
    ends). :meth:`release` drops the mapping's pages from the process (``madvise(MADV_DONTNEED)``: for
    a shared file mapping the data stays in the page cache, from where the kernel writes it back and
    reclaims it when memory is needed), so the process keeps only the pages an optimizer step
    touches. :meth:`snapshot` copies the file to ``adam_moments.<progress>.bin`` (kernel to kernel,
    ``copy_file_range``) for a checkpoint, keeping the newest two; :meth:`restore` copies one back.
    Linux only (``madvise``, ``copy_file_range``).
    """

    SNAPSHOT = re.compile(r"adam_moments\.(\d+)\.bin")

    def __init__(self, directory: str | Path, numel: int, dtype: torch.dtype):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.numel = numel
        self.nbytes = numel * torch.empty((), dtype=dtype).element_size()
        path = self.directory / f".adam_moments.{os.getpid()}.{id(self)}.bin"
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(self._fd, self.nbytes)
            self.buffer = torch.from_file(str(path), shared=True, size=numel, dtype=dtype)
        finally:
            path.unlink()
        weakref.finalize(self, os.close, self._fd)
        self._snapshots: list[Path] = []
        self._madvise = _madvise()
        lead = self.buffer.data_ptr() % os.sysconf("SC_PAGE_SIZE")  # madvise takes whole pages
        self._pages = (self.buffer.data_ptr() - lead, self.nbytes + lead)

    def release(self) -> None:
        """Hand every page of the mapping back (the values stay in the file)."""
        if self._madvise(*self._pages, _MADV_DONTNEED) != 0:
            raise OSError(ctypes.get_errno(), "madvise(MADV_DONTNEED) failed on the offloaded Adam moments")

    def snapshot(self, progress: int) -> Path:
        """The moments as they are now, copied to ``adam_moments.<progress>.bin`` (atomically)."""
        target = self.directory / f"adam_moments.{progress}.bin"
        partial = target.with_name(target.name + ".partial")
        out = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _copy_range(self._fd, out, self.nbytes)
        finally:
            os.close(out)
        os.replace(partial, target)
        # keep the newest two: the checkpoint being written names this one, the previous checkpoint
        # (already complete when this is called again) the one before
        self._snapshots = [p for p in self._snapshots if p != target] + [target]
        while len(self._snapshots) > 2:
            self._snapshots.pop(0).unlink(missing_ok=True)
        return target

    def restore(self, name: str) -> None:
        """Copy snapshot ``name`` (a file in ``directory``) into the mapped file."""
        if not self.SNAPSHOT.fullmatch(name):
            raise AutoAttendError(f"offloaded Adam moments: {name!r} is not a snapshot name (adam_moments.<n>.bin)")
        path = self.directory / name
        if not path.is_file():
            raise AutoAttendError(f"offloaded Adam moments: {path} is missing (the checkpoint keeps the moments "
                                  "in that file, next to it)")
        if path.stat().st_size != self.nbytes:
            raise AutoAttendError(f"offloaded Adam moments: {path} holds {path.stat().st_size} bytes, "
                                  f"expected {self.nbytes}")
        source = os.open(path, os.O_RDONLY)
        try:
            _copy_range(source, self._fd, self.nbytes)
        finally:
            os.close(source)
        self._snapshots = [path]
        # the resumed invocation's other snapshots (one per resume, each as large as the moments: 907 MiB for
        # the paper supernet) and a copy a kill cut short: no checkpoint of this run reads them any more
        remove_other_snapshots(self.directory, keep=name)


def remove_other_snapshots(directory: str | Path, keep: str | None = None) -> list[Path]:
    """Remove the ``adam_moments.<n>.bin`` snapshots in ``directory`` but ``keep`` (default: the newest, the one
    the last checkpoint names) and every ``.partial`` copy a killed snapshot left; returns those removed."""
    directory = Path(directory)
    snapshots = sorted((p for p in directory.glob("adam_moments.*.bin") if OffloadedMoments.SNAPSHOT.fullmatch(p.name)),
                       key=lambda p: int(OffloadedMoments.SNAPSHOT.fullmatch(p.name)[1]))
    if keep is None and snapshots:
        keep = snapshots[-1].name
    removed = [p for p in snapshots if p.name != keep] + sorted(directory.glob("adam_moments.*.bin.partial"))
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def _copy_range(source: int, target: int, nbytes: int) -> None:
    """Copy the first ``nbytes`` of file ``source`` over the start of file ``target`` (descriptors)."""
    done = 0
    while done < nbytes:
        copied = os.copy_file_range(source, target, nbytes - done, done, done)
        if copied == 0:
            raise OSError(f"copy_file_range stopped after {done} of {nbytes} bytes")
        done += copied


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
    """``state_dtype`` if it is one of :data:`OPTIMIZER_STATES`, else an :class:`AutoAttendError` naming ``key``."""
    if state_dtype not in OPTIMIZER_STATES:
        raise AutoAttendError(f"{key}: expected one of {', '.join(OPTIMIZER_STATES)}, got {state_dtype!r}")
    return state_dtype


def check_offload(value, key: str = "supernet.optimizer_offload") -> bool:
    """``value`` if it is a boolean, else an :class:`AutoAttendError` naming ``key``."""
    if not isinstance(value, bool):
        raise AutoAttendError(f"{key}: expected true or false, got {value!r}")
    return value


def supernet_adam(params: Iterable[torch.Tensor], lr: float, weight_decay: float = 0.0,
                  state_dtype: str = "float32", seed: int = 0,
                  offload_dir: str | Path | None = None) -> torch.optim.Optimizer:
    """The supernet's Adam: ``torch.optim.Adam`` for ``state_dtype="float32"`` (the default, the
    authors' protocol), :class:`LowPrecisionStateAdam` with bfloat16 moments for ``"bfloat16"``.
    With ``offload_dir`` (a separate memory option that changes no arithmetic), the moments of
    either dtype live in a file there (:class:`LowPrecisionStateAdam`; float32 is then bit for bit
    ``torch.optim.Adam``)."""
    if check_state_dtype(state_dtype) == "float32" and offload_dir is None:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    dtype = torch.float32 if state_dtype == "float32" else torch.bfloat16
    return LowPrecisionStateAdam(params, lr=lr, weight_decay=weight_decay, state_dtype=dtype, seed=seed,
                                 offload_dir=offload_dir)


def fill_unused_grads(optimizer: torch.optim.Optimizer) -> int:
    """Give every parameter the optimizer has stepped before (its state's ``step`` above 0) that has
    no gradient now a zero one, so this step updates it from its moments alone; returns how many.

    That is what the authors' supernet script did under the torch 1.x of 2021, whose
    ``optimizer.zero_grad()`` filled gradients with zeros instead of setting them to ``None``: a
    parameter, once used, kept being moved by Adam's momentum at every later step. (Keeping the
    gradients between steps, ``zero_grad(set_to_none=False)``, does the same while a fit runs; this
    reads the optimizer's state, which a checkpoint holds, so a resumed fit fills the same ones.)"""
    filled = 0
    for group in optimizer.param_groups:
        for p in group["params"]:
            if p.grad is None and p.requires_grad:
                state = optimizer.state.get(p)
                if state and float(state.get("step", 0)) > 0:
                    p.grad = torch.zeros_like(p)
                    filled += 1
    return filled


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

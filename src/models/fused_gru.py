"""A fused CPU kernel for the bidirectional GRU op, with torch's ``nn.GRU`` as the fallback.

torch's CPU GRU runs every time step as about ten small kernels, each recorded for autograd; on
the text supernet's batches (D=64, about 50 steps, a few thousand real tokens) that dispatch is
most of the op's cost, and the GRU was about 40 % of a supernet step in the profiler. The kernel
in ``gru_kernel.cpp`` runs a step as one matrix product plus one loop over the gates, with the
backward pass written out; the input projections and the packing stay torch ops, so autograd
covers them. It is compiled with ``torch.utils.cpp_extension`` at first use (about 15 s, cached
under ``$TORCH_EXTENSIONS_DIR`` or ``~/.cache/torch_extensions``, see :func:`_build_directory`).

Backends (``hardware.gru``, set by :func:`set_backend`):

* ``auto`` (default): the kernel for CPU float tensors when it compiles, else ``nn.GRU`` with one
  warning that says why;
* ``fused``: the kernel, or an error when it cannot be built;
* ``torch``: always ``nn.GRU`` (packed sequences).

``tests/test_fused_gru.py`` checks the kernel against ``nn.GRU``: outputs and every gradient
(float64 to 1e-12, float32 to float tolerance), with padding of any amount.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import shutil
import sys
import threading
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from src.utils.errors import AutoAttendError

log = logging.getLogger(__name__)

BACKENDS = ("auto", "fused", "torch")
SOURCE = Path(__file__).with_name("gru_kernel.cpp")
# -ffast-math lets GCC call glibc's vectorised tanhf (libmvec); it is a compile flag only, so the
# library does not link crtfastmath.o, which would flush denormals to zero for the whole process
# (tested).
CFLAGS = ["-O3", "-march=native", "-ffast-math"]
STALE_LOCK_S = 600

_backend = "auto"
_lock = threading.Lock()
_kernel_error: str | None = None
_kernel_loaded = False


def set_backend(name: str) -> None:
    """Choose how :class:`~src.models.ops.GRUOp` runs: one of :data:`BACKENDS`."""
    global _backend
    if name not in BACKENDS:
        raise AutoAttendError(f"hardware.gru: unknown GRU backend {name!r} (expected one of {', '.join(BACKENDS)})")
    _backend = name


def get_backend() -> str:
    return _backend


def _extension_name() -> str:
    # -march=native: the binary is only valid on CPUs with the same instruction set, so the build
    # folder is keyed by the CPU's feature flags (a home folder shared between machines).
    flags = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags += line
                break
    except OSError:
        pass
    return "autoattend_gru_" + hashlib.sha1(flags.encode()).hexdigest()[:10]


def _build_directory(name: str) -> Path:
    """``$TORCH_EXTENSIONS_DIR`` (else ``~/.cache/torch_extensions``) / python and torch version / name.

    A build killed outright leaves torch's ``lock`` file behind, and every later load would wait
    for it forever; a lock older than ten minutes (a build takes about 15 s) is removed.
    """
    root = os.environ.get("TORCH_EXTENSIONS_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "torch_extensions")
    tag = f"py{sys.version_info.major}{sys.version_info.minor}_torch{torch.__version__}"
    path = Path(root) / tag / name
    path.mkdir(parents=True, exist_ok=True)
    lock = path / "lock"
    try:
        if time.time() - lock.stat().st_mtime > STALE_LOCK_S:
            log.warning("removing a stale build lock left by an interrupted build: %s", lock)
            lock.unlink(missing_ok=True)
    except FileNotFoundError:
        pass
    return path


def _put_ninja_on_path() -> None:
    # torch runs `ninja` from PATH; the pip package's binary sits in the virtualenv's bin folder,
    # which is not on PATH when the venv's python is called directly (as the Makefile does).
    if shutil.which("ninja") is None:
        try:
            import ninja
        except ImportError:
            return
        os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")


def kernel_error() -> str | None:
    """Why the kernel is unavailable (it is built on the first call), or ``None`` once it is loaded."""
    global _kernel_error, _kernel_loaded
    with _lock:
        if _kernel_loaded or _kernel_error is not None:
            return _kernel_error
        try:
            from torch.utils.cpp_extension import load

            _put_ninja_on_path()
            name = _extension_name()
            build_dir = _build_directory(name)
            if not (build_dir / f"{name}.so").exists():
                log.info("building the fused GRU kernel in %s (once per machine, about 15 s)", build_dir)
            load(name=name, sources=[str(SOURCE)], extra_cflags=CFLAGS, is_python_module=False,
                 build_directory=str(build_dir))
            _kernel_loaded = True
        except Exception as err:  # a missing compiler or ninja, a failed build: fall back, say why
            first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
            _kernel_error = f"{type(err).__name__}: {first_line}"
            log.warning("fused GRU kernel unavailable, using torch's nn.GRU (slower on CPU): %s", _kernel_error)
        return _kernel_error


def status() -> str:
    """What the GRU op runs on, for logs and run records; never starts a build."""
    if _backend == "torch":
        return "torch nn.GRU (hardware.gru=torch)"
    if _kernel_loaded:
        return "fused kernel (CPU), torch nn.GRU elsewhere" if _backend == "auto" else "fused kernel"
    if _kernel_error is not None:
        return f"torch nn.GRU (kernel unavailable: {_kernel_error})"
    return "fused kernel not built yet (no GRU op has run)"


def use_kernel(x: torch.Tensor) -> bool:
    """Whether the GRU op should run ``x`` through the kernel under the current backend."""
    if _backend == "torch":
        return False
    supported = x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
    if _backend == "fused":
        if not supported:
            raise AutoAttendError(f"hardware.gru=fused: the kernel runs float32/float64 tensors on the CPU, "
                                  f"got {x.dtype} on {x.device} (use hardware.gru=auto)")
        error = kernel_error()
        if error is not None:
            raise AutoAttendError(f"hardware.gru=fused: the kernel could not be built: {error}")
        return True
    return supported and kernel_error() is None


class _Recurrence(torch.autograd.Function):
    """The kernel's recurrence over a packed batch: gi (N, 3D) -> h (N, D)."""

    @staticmethod
    def forward(ctx, gi, w_hh, b_hh, batch_sizes):
        h, saved = torch.ops.autoattend_gru.forward(gi, w_hh, b_hh, batch_sizes, True)
        ctx.save_for_backward(h, saved, w_hh, batch_sizes)
        return h

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_h):
        h, saved, w_hh, batch_sizes = ctx.saved_tensors
        dgi, dw, db = torch.ops.autoattend_gru.backward(grad_h, h, saved, w_hh, batch_sizes)
        return dgi, dw, db, None


def recurrence(gi: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor, batch_sizes: torch.Tensor) -> torch.Tensor:
    """One GRU direction's recurrence over a packed batch (layout in ``gru_kernel.cpp``).

    gi: (N, 3D) input projections of the N tokens, step-major; batch_sizes: (steps,) int64 on the
    CPU. Returns h: (N, D). Nothing is saved for backward when no input needs a gradient.
    """
    if not _kernel_loaded and kernel_error() is not None:
        raise AutoAttendError(f"the fused GRU kernel could not be built: {_kernel_error}")
    gi = gi.contiguous()
    if torch.is_grad_enabled() and (gi.requires_grad or w_hh.requires_grad or b_hh.requires_grad):
        return _Recurrence.apply(gi, w_hh, b_hh, batch_sizes)
    return torch.ops.autoattend_gru.forward(gi, w_hh, b_hh, batch_sizes, False)[0]


class PackPlan:
    """Where each direction reads its tokens in a right-padded batch, packed step-major.

    mask: (B, T) True at real tokens (each row's real tokens first). ``forward_index`` and
    ``backward_index`` (N,) index the flattened (B * T) positions: step s of the forward direction
    reads position s of each sequence longer than s (longest first); the backward direction reads
    position ``length - 1 - s``, so it starts at each sequence's last real token, never at padding.
    """

    def __init__(self, mask: torch.Tensor):
        b, t = mask.shape
        lengths = mask.sum(1)
        order = torch.argsort(lengths, descending=True, stable=True)
        sorted_lengths = lengths[order]
        steps = torch.arange(int(sorted_lengths[0]) if b else 0, device=mask.device).unsqueeze(1)
        active = sorted_lengths.unsqueeze(0) > steps  # (steps, B)
        base = (order * t).unsqueeze(0)
        self.batch_sizes = active.sum(1).cpu()
        self.forward_index = (base + steps)[active]
        self.backward_index = (base + sorted_lengths.unsqueeze(0) - 1 - steps)[active]


def bidirectional_gru(gru: nn.GRU, x: torch.Tensor, mask: torch.Tensor, plan: PackPlan | None = None) -> torch.Tensor:
    """``gru`` (one layer, bidirectional, batch_first) over ``x`` (B, T, D), the directions summed.

    mask: (B, T) True at real tokens. Returns (B, T, D), zero at padded positions. Computes what
    ``nn.GRU`` over the packed sequences computes, through the fused kernel.
    """
    b, t, _ = x.shape
    plan = plan or PackPlan(mask)
    flat = x.reshape(b * t, x.shape[-1])
    out = x.new_zeros(b * t, gru.hidden_size)
    for index, suffix in ((plan.forward_index, ""), (plan.backward_index, "_reverse")):
        gi = F.linear(flat.index_select(0, index), getattr(gru, "weight_ih_l0" + suffix), getattr(gru, "bias_ih_l0" + suffix))
        h = recurrence(gi, getattr(gru, "weight_hh_l0" + suffix), getattr(gru, "bias_hh_l0" + suffix), plan.batch_sizes)
        out = out.index_add(0, index, h)
    return out.view(b, t, gru.hidden_size)

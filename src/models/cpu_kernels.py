"""The project's fused CPU kernels: building, loading, and the switch between them and plain torch.

One C++ extension holds these kernels, each with a torch fallback that computes the same values:

* ``gru_kernel.cpp``: one direction of the GRU op's recurrence, forward and backward
  (:mod:`src.models.fused_gru`; fallback ``nn.GRU``);
* ``attention_kernel.cpp``: masked multi-head attention without projections, for inference
  (:func:`src.models.ops.masked_attention` when nothing needs a gradient) and for training with
  dropout on the weights (:func:`src.models.ops.fused_attention`, forward and backward); fallback
  ATen ops;
* ``dropout_kernel.cpp``: dropout keep masks from a counter-based generator seeded from the
  caller's torch generator (:func:`src.models.ops.keep_mask`; the fallback draws the same stream in
  torch ops, :func:`src.models.ops.stream_keep`), and dropout itself in one pass with that mask
  (:func:`src.models.ops.fast_dropout`; fallback ``torch.where`` with the mask);
* ``padding_kernel.cpp``: the padded positions of a (B, T, D) tensor set to a value
  (:func:`src.models.ops.fill_padded`; fallback ``masked_fill``);
* ``layernorm_kernel.cpp``: LayerNorm of the real positions only, padded ones filled
  (:func:`src.models.ops.masked_layer_norm`; fallback ``nn.LayerNorm`` then ``masked_fill``);
* ``pool_kernel.cpp``: the max-pool op along the tokens, forward and backward
  (:func:`src.models.ops.max_pool_time`; fallback a channels-last ``max_pool2d``);
* ``propagate_kernel.cpp``: weighted neighbour sums over a CSR view of a graph's edges, the
  message passing of every graph op (one weight per edge, or per edge and head for GAT and the
  attention), forward and backward (:func:`src.models.graph.propagate`,
  ``src.models.graph._HeadGatherSum``; fallback PyG's ``propagate``, which it matches bit for bit).

The extension is compiled with ``torch.utils.cpp_extension`` at first use (30-50 s on 2 cores:
``experiments/bench/kernel_build_timing.sh``; cached under ``$TORCH_EXTENSIONS_DIR`` or ``~/.cache/torch_extensions``, see :func:`_build_directory`).

Backends (``hardware.kernels``, set by :func:`set_backend`):

* ``auto`` (default): the kernels for CPU float tensors when the extension compiles, else the torch
  paths with one warning that says why;
* ``fused``: the kernels, or an error when they cannot be built;
* ``torch``: always the torch paths.

The backend also decides the dense products of :mod:`src.models.linear` (oneDNN, which torch ships,
instead of MKL; not a kernel of this extension): any backend but ``torch`` uses oneDNN for float32
CPU tensors.

``tests/test_cpu_kernels.py`` checks each kernel against its torch path.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import platform
import shutil
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import torch

try:
    import fcntl
except ImportError:  # not on Windows
    fcntl = None

from src.choices import KERNEL_BACKENDS
from src.utils.errors import AutoAttendError

log = logging.getLogger(__name__)

BACKENDS = KERNEL_BACKENDS
SOURCES = tuple(Path(__file__).with_name(name)
                for name in ("gru_kernel.cpp", "attention_kernel.cpp", "dropout_kernel.cpp", "padding_kernel.cpp",
                                                     "layernorm_kernel.cpp", "pool_kernel.cpp", "propagate_kernel.cpp"))
# -ffast-math lets GCC call glibc's vectorised tanhf / expf (libmvec); it is a compile flag only, so
# the library does not link crtfastmath.o, which would flush denormals to zero for the whole process
# (tested).
CFLAGS = ["-O3", "-march=native", "-ffast-math"]
# GCC's tuning for Intel's AVX-512 cores (sapphirerapids, rocketlake, ...; not znver4 or x86-64-v4)
# vectorises loops 256 bits wide (`-mprefer-vector-width=256`): the GRU's gates, LayerNorm and the
# other loops it vectorises itself then used half a register, while the explicit 16-float vectors
# use a whole one. 512 on x86 (without AVX-512 the compiler stays at 256): the bidirectional GRU op
# of a scoring bucket 4.96 -> 3.90 ms, scoring 0.438-0.442 -> 0.378-0.396 s a candidate on an Intel
# Xeon with AVX-512 (2026-12-05, experiments/README.md, series r).
if platform.machine() in ("x86_64", "AMD64"):
    CFLAGS.append("-mprefer-vector-width=512")
STALE_LOCK_S = 600

_backend = "auto"
_lock = threading.Lock()
_error: str | None = None
_loaded = False


def set_backend(name: str) -> None:
    """Choose whether the ops run the fused kernels: one of :data:`BACKENDS`."""
    global _backend
    if name not in BACKENDS:
        raise AutoAttendError(f"hardware.kernels: unknown backend {name!r} (expected one of {', '.join(BACKENDS)})")
    _backend = name


def get_backend() -> str:
    return _backend


def _extension_name() -> str:
    # -march=native: the binary is only valid on CPUs with the same instruction set, so the build
    # folder is keyed by the CPU's feature flags (a home folder shared between machines), and by
    # the checkout: the build file names the sources by absolute path, so two checkouts sharing a
    # folder would each rebuild everything whenever the other had built last.
    flags = platform.machine() + str(SOURCES[0].parent.resolve()) + " ".join(CFLAGS)  # a new flag: a new build
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags += line
                break
    except OSError:
        pass
    return "autoattend_kernels_" + hashlib.sha1(flags.encode()).hexdigest()[:10]


def _build_directory(name: str) -> Path:
    """``$TORCH_EXTENSIONS_DIR`` (else ``~/.cache/torch_extensions``) / python and torch version / name."""
    root = os.environ.get("TORCH_EXTENSIONS_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "torch_extensions")
    tag = f"py{sys.version_info.major}{sys.version_info.minor}_torch{torch.__version__}"
    path = Path(root) / tag / name
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def _build_owner(path: Path):
    """Hold an OS lock on ``path/owner.lock`` while loading (or building) the kernels.

    A build interrupted by Ctrl-C or a kill leaves torch's own ``lock`` file behind, and every later
    load would wait on it. The OS lock is released when its process dies, so a process holding it
    knows that any torch ``lock`` left in the folder is stale and removes it at once. (Without
    ``fcntl``, a torch lock older than ten minutes is taken as stale; a build takes 30-50 s on 2 cores.)
    """
    torch_lock = path / "lock"
    if fcntl is None:
        with contextlib.suppress(FileNotFoundError):
            if time.time() - torch_lock.stat().st_mtime > STALE_LOCK_S:
                log.warning("removing a stale build lock left by an interrupted build: %s", torch_lock)
                torch_lock.unlink(missing_ok=True)
        yield
        return
    with open(path / "owner.lock", "a") as owner:
        try:
            fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another process building the fused CPU kernels in %s", path)
            fcntl.flock(owner, fcntl.LOCK_EX)
        try:
            if torch_lock.exists():
                log.warning("removing the build lock of an interrupted build: %s", torch_lock)
                torch_lock.unlink(missing_ok=True)
            yield
        finally:
            fcntl.flock(owner, fcntl.LOCK_UN)


def _put_ninja_on_path() -> None:
    # torch runs `ninja` from PATH; the pip package's binary sits in the virtualenv's bin folder,
    # which is not on PATH when the venv's python is called directly (as the Makefile does).
    if shutil.which("ninja") is None:
        try:
            import ninja
        except ImportError:
            return
        os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")


def _library_state(library: Path) -> str:
    """``missing``, ``stale`` (a source is newer) or ``current``: whether loading builds first."""
    if not library.exists():
        return "missing"
    return "stale" if max(s.stat().st_mtime for s in SOURCES) > library.stat().st_mtime else "current"


def build_pending() -> bool:
    """Whether the kernels' first use will compile them (none built for this checkout and CPU kind,
    or their sources changed since), for the run's timing; ``False`` once loaded or failed, or
    under ``hardware.kernels=torch``."""
    if _loaded or _error is not None or _backend == "torch":
        return False
    try:
        name = _extension_name()
        return _library_state(_build_directory(name) / f"{name}.so") != "current"
    except OSError:  # the build folder cannot be made: the build will say why
        return False


def kernel_error() -> str | None:
    """Why the kernels are unavailable (they are built on the first call), or ``None`` once loaded."""
    global _error, _loaded
    if _loaded:  # the hot path (every GRU direction, attention layer and dropout mask): no lock
        return None
    with _lock:
        if _loaded or _error is not None:
            return _error
        try:
            from torch.utils.cpp_extension import load

            _put_ninja_on_path()
            name = _extension_name()
            build_dir = _build_directory(name)
            library = build_dir / f"{name}.so"
            if not os.access(build_dir, os.W_OK) and _library_state(library) == "current":
                # a build shared read-only (an image's, another user's): torch's load() would create its lock
                # file there first and fail, and the run fell back to the torch paths; nothing is to be built
                torch.ops.load_library(str(library))
                _loaded = True
                return None
            with _build_owner(build_dir):
                state = _library_state(library)
                if state == "missing":
                    log.info("building the fused CPU kernels in %s (once per checkout and CPU kind, 30-50 s on 2 cores)", build_dir)
                elif state == "stale":
                    log.info("rebuilding the fused CPU kernels in %s: their sources changed (30-50 s on 2 cores)", build_dir)
                load(name=name, sources=[str(s) for s in SOURCES], extra_cflags=CFLAGS, is_python_module=False,
                     build_directory=str(build_dir))
            _loaded = True
        except Exception as err:  # a missing compiler or ninja, a failed build: fall back, say why
            first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
            _error = f"{type(err).__name__}: {first_line}"
            log.warning("fused CPU kernels unavailable, using the torch paths (slower on CPU): %s", _error)
        return _error


def status() -> str:
    """What the kernel-backed ops (GRU, attention, dropout, LayerNorm, padding fills, max-pool, graph
    propagation) run on, for logs and run records; never starts a build."""
    if _backend == "torch":
        return "torch ops (hardware.kernels=torch)"
    if _loaded:
        return "fused kernels (CPU), torch ops elsewhere" if _backend == "auto" else "fused kernels"
    if _error is not None:
        return f"torch ops (kernels unavailable: {_error})"
    return "fused kernels not built yet (no op that uses them has run)"


def status_on(device: torch.device | str) -> str:
    """:func:`status` for a run on ``device``: on a GPU the ops are torch's (the kernels take CPU
    tensors only), whatever the backend."""
    device = torch.device(device)
    if device.type != "cpu":
        return f"torch ops ({device.type} tensors; the fused kernels are for CPU tensors)"
    return status()


def use_kernel(x: torch.Tensor) -> bool:
    """Whether an op should run ``x`` through a kernel under the current backend. Not under CPU
    autocast (``hardware.precision`` bf16-mixed / 16-mixed): the kernels compute in one float dtype,
    while autocast hands an op's inputs over in mixed ones (q in bfloat16, v from ``identity`` in
    float32); the torch ops follow autocast's rules there."""
    if _backend == "torch":
        return False
    autocast = torch.is_autocast_enabled("cpu")
    supported = x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and not autocast
    if _backend == "fused":
        if not supported:
            got = "under CPU autocast (hardware.precision mixed)" if autocast else f"got {x.dtype} on {x.device}"
            raise AutoAttendError(f"hardware.kernels=fused: the kernels run float32/float64 tensors on the CPU "
                                  f"without autocast, {got} (use hardware.kernels=auto)")
        error = kernel_error()
        if error is not None:
            raise AutoAttendError(f"hardware.kernels=fused: the kernels could not be built: {error}")
        return True
    return supported and kernel_error() is None


def require_loaded() -> None:
    """Raise if the kernels cannot be built (for callers that invoke a kernel directly)."""
    error = kernel_error()
    if error is not None:
        raise AutoAttendError(f"the fused CPU kernels could not be built: {error}")

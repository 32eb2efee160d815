"""How much memory the machine gives this process, for checks that refuse settings no machine
of that size can run (rather than letting the kernel kill the run minutes later), and the units
memory figures are reported in.

Units: every figure whose name ends in ``_mb`` (``bench.json``'s ``supernet_peak_rss_mb``,
``supernet_adam_state_mb``, ``graph_supernet_peak_rss_mb``, ``*_peak_cuda_mb``, ``bench_data``'s
``peak_rss_mb``, ``csv_mb``, ``cache_mb``) is in megabytes of 10^6 bytes (:data:`MB`), the unit of the
issue's target (peak memory at most 1.6 GB = 1.6 x 10^9 bytes = 1,600 MB). Messages that speak of
GiB use 2^30 bytes and say so. Linux reports ``ru_maxrss`` and ``/proc`` sizes (``VmRSS``,
``VmHWM``) in KiB (1,024 bytes, printed as "kB"). Records written before ``*_mb`` meant 10^6 bytes
(``bench.json`` files without a ``memory_unit`` key, ``bench_data.json`` files without one) hold MiB
(2^20 bytes) under the same names: that code divided KiB by 1,024 and bytes by 2^20.
"""

from __future__ import annotations

import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")

KIB = 1024  # what Linux's "kB" in /proc and ru_maxrss count
MB = 10**6  # the unit of every ``*_mb`` figure
MEMORY_UNIT = "MB = 10^6 bytes"  # written into bench.json next to its ``*_mb`` figures


def to_mb(n_bytes: float) -> float:
    """Bytes as megabytes of 10^6 bytes, the unit of every ``*_mb`` figure."""
    return n_bytes / MB


def binary_size(n_bytes: float) -> str:
    """Bytes for a message, in GiB (2^30 bytes) from 1 GiB up, else in MiB (2^20 bytes), with the unit."""
    return f"{n_bytes / 2**30:,.1f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:,.1f} MiB"


def kib_to_bytes(kib: float) -> float:
    """A Linux ``kB`` figure (``ru_maxrss``, ``VmRSS``, ``VmHWM``: units of 1,024 bytes) in bytes."""
    return kib * KIB


def peak_rss_bytes() -> int:
    """This process's peak resident memory (``ru_maxrss``, KiB on Linux) in bytes."""
    import resource

    return int(kib_to_bytes(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def _cgroup_limits(proc_cgroup: str, root: Path = CGROUP_ROOT) -> list[int]:
    """The memory limits of this process's control group and of each group above it (a limit
    anywhere up the tree applies), from ``/proc/self/cgroup`` text: cgroup v2 (``0::/path``,
    ``memory.max``) and v1 (``N:memory:/path``, ``memory.limit_in_bytes``)."""
    limits = []
    for line in proc_cgroup.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            base, name = root, "memory.max"
        elif "memory" in controllers.split(","):
            base, name = root / "memory", "memory.limit_in_bytes"
        else:
            continue
        group = base / path.lstrip("/")
        for folder in (group, *group.parents):
            try:
                limits.append(int((folder / name).read_text().strip()))  # "max" (no limit) is no int
            except (OSError, ValueError):
                pass
            if folder == base:
                break
    return limits


def machine_memory_bytes() -> int | None:
    """Physical memory, or the lowest control-group limit over this process when that is lower;
    None when unknown."""
    try:
        sizes = [os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")]
    except (ValueError, OSError, AttributeError):
        sizes = []
    try:
        sizes += _cgroup_limits(Path("/proc/self/cgroup").read_text())
    except OSError:
        pass
    sizes = [s for s in sizes if s > 0]
    return min(sizes) if sizes else None

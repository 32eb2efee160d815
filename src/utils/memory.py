"""How much memory the machine gives this process, for checks that refuse settings no machine
of that size can run (rather than letting the kernel kill the run minutes later)."""

from __future__ import annotations

import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


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

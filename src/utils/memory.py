"""How much memory the machine gives this process, for checks that refuse settings no machine
of that size can run (rather than letting the kernel kill the run minutes later)."""

from __future__ import annotations

import os
from pathlib import Path

# cgroup v2, then v1: a container's limit is what the process can actually use
CGROUP_LIMITS = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))


def machine_memory_bytes() -> int | None:
    """Physical memory, or the control group's limit when that is lower; None when unknown."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = None
    for path in CGROUP_LIMITS:
        try:
            limit = int(path.read_text().strip())  # "max" (no limit) is not an int
        except (OSError, ValueError):
            continue
        total = limit if total is None else min(total, limit)
    return total if total and total > 0 else None

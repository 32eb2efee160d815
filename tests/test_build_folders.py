"""The temporary build folders of the data caches (``.building-<pid>.<machine>-<what>-<random>``): a
killed run's are removed by the next build, a running one's are kept, and a build of another machine
or PID namespace sharing the cache (whose PID means nothing here) is kept until it is a day old."""

from __future__ import annotations

import os
import re
import time

from src.utils.io import FOREIGN_BUILD_MAX_AGE_S, build_prefix, machine_tag, remove_stale_builds

DEAD = 999_999_999  # above any PID limit


def test_a_build_is_named_by_this_process_and_its_machine():
    assert re.fullmatch(rf"\.building-{os.getpid()}\.[0-9a-f]{{8}}-Cora-", build_prefix("Cora"))
    assert build_prefix("x").split("-")[1] == f"{os.getpid()}.{machine_tag()}"


def test_stale_builds_are_those_of_dead_processes_here_and_day_old_ones_of_other_machines(tmp_path):
    ours_dead = tmp_path / f".building-{DEAD}.{machine_tag()}-Cora-a"
    ours_alive = tmp_path / f".building-{os.getpid()}.{machine_tag()}-Cora-b"
    untagged_dead = tmp_path / f".building-{DEAD}-Cora-c"  # written before the tags: this namespace's
    foreign_fresh = tmp_path / f".building-{os.getpid()}.0000beef-Cora-d"
    foreign_dead_fresh = tmp_path / f".building-{DEAD}.0000beef-Cora-e"
    foreign_old = tmp_path / f".building-{os.getpid()}.0000beef-Cora-f"
    for folder in (ours_dead, ours_alive, untagged_dead, foreign_fresh, foreign_dead_fresh, foreign_old):
        folder.mkdir()
    (foreign_old / "part.pt").write_bytes(b"x")
    (tmp_path / f".building-{DEAD}.0000beef-sst.pt-g").write_bytes(b"y")  # a file, as the SST cache's
    now = time.time()
    day_ago = now - FOREIGN_BUILD_MAX_AGE_S - 60
    os.utime(foreign_old, (day_ago, day_ago))
    os.utime(tmp_path / f".building-{DEAD}.0000beef-sst.pt-g", (day_ago, day_ago))
    remove_stale_builds(tmp_path, now=now)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (ours_alive, foreign_fresh, foreign_dead_fresh))

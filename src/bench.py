"""Entry point: ``python -m src.bench [bench.reps=10] [hardware=gpu] ...`` (``make bench``).

The figures and how each is measured are described in :mod:`src.bench_harness`. This module and
what it imports at the top are free of torch, Lightning and PyG, as ``src.search`` is: a bad
``bench.*`` or ``hardware`` setting is refused in one line within about a second; the harness
(torch, the models, the kernels) is imported once the settings have passed.
"""

from __future__ import annotations

if __name__ == "__main__":
    # before the heavy imports: restart once with mimalloc preloaded, as `make bench` runs
    from src.utils.allocator import entry_point_preload

    entry_point_preload()

import logging
import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from src.pipeline.checks import check_bench_config
from src.pipeline.run import (made_by_this_process, note_job_started, refuse_added_settings, refuse_deleted_settings,
                              remove_if_only_its_log, run_and_exit)
from src.utils import interrupt
from src.utils.errors import user_error_behind
from src.utils.logs import log_to_files_only

log = logging.getLogger("src.bench")
RECORD_REPS = 5  # timed repetitions behind each recorded figure (issue 5: the median of at least 5)


@hydra.main(version_base="1.3", config_path="../conf", config_name="bench")
def main(cfg: DictConfig) -> None:
    """The figures, or one ``interrupted:`` line (exit status 130, SIGTERM 143) when stopped: the
    benchmark has nothing to resume and writes ``bench.json`` only once every figure is measured."""
    note_job_started()
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    made_for_this_run = made_by_this_process(run_dir, hydra_record=True)
    checked: list[bool] = []  # the settings passed: a later error's log stays (it follows the machine facts)
    stopped: list[int] = []

    def on_interrupt(signum, frame):
        # a repeat of SIGXCPU stops it again: the bench holds no checkpoint a second stop could cut short,
        # and where code in the figures swallowed the first stop, the repeat is what ends the bench
        stopped.append(signum)
        raise KeyboardInterrupt

    previous = interrupt.install(on_interrupt)
    try:
        run_bench(cfg, checked)
    except Exception as exc:
        # a bad setting, hardware=gpu without a GPU, unreadable data, an unwritable run or cache
        # folder, a full disk: one line and status 2, as the other entry points (src.pipeline.run.entry)
        # say them (an error while measuring was Hydra's "Error executing job" line, a traceback and
        # status 1). Anything else keeps its traceback.
        error = user_error_behind(exc)
        if error is None:
            raise
        log_to_files_only(log, f"error: {error}", logging.ERROR)
        print(f"error: {error}", file=sys.stderr)
        if made_for_this_run and not checked:  # refused: the folder Hydra made holds nothing of the bench's
            remove_if_only_its_log(run_dir)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        interrupt.install(signal.SIG_IGN)
        signum = stopped[0] if stopped else signal.SIGINT
        by = interrupt.signal_name(signum)
        print(f"interrupted{by}: the benchmark stopped before its last figure; no bench.json was written",
              file=sys.stderr)
        sys.exit(128 + int(signum))
    finally:
        interrupt.restore(previous)


def run_bench(cfg: DictConfig, checked: list[bool] | None = None) -> None:
    """Check the settings (then append ``True`` to ``checked``), then import the harness: it prints
    the machine facts, measures every figure and writes ``bench.json``."""
    refuse_deleted_settings()  # ~seed: a ConfigAttributeError traceback
    refuse_added_settings()  # +bench.foo=1 ran the whole bench with nothing reading it
    check_bench_config(cfg)
    if checked is not None:
        checked.append(True)
    if int(cfg.bench.reps) < RECORD_REPS:  # allowed for a quick look; the graph figures take RECORD_REPS anyway
        log.warning("bench.reps=%d: the text figures are medians of fewer than the %d timed repetitions the "
                    "benchmark's figures are defined over; fine for a quick look, not for a record",
                    int(cfg.bench.reps), RECORD_REPS)
    from src import bench_harness

    bench_harness.measure(cfg)


if __name__ == "__main__":
    run_and_exit(main)

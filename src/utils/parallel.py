"""Thread-level parallelism for CPU work made of many small kernels.

A supernet step or a candidate's scoring is thousands of small kernels (the GRU recurrence above
all) that a second intra-op thread barely speeds up; two independent pieces of work at a time,
each with one intra-op thread, use two cores far better (docs/performance.md).
"""

from __future__ import annotations

import ctypes
import errno
import multiprocessing
import os
import signal
import sys
import warnings
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

import torch

from src.utils.errors import WorkersFailedError, workers_refused
from src.utils.workers import parse_workers

PR_SET_PDEATHSIG = 1  # prctl(2)

# ``"auto"`` workers: this many threads at most (the GIL-bound Python part of each piece of work
# stops paying beyond a few).
MAX_AUTO_WORKERS = 4

T = TypeVar("T")
R = TypeVar("R")


def thread_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``fn`` over ``items`` in ``workers`` threads; results are yielded in item order.

    While it runs, torch uses ``threads // workers`` intra-op threads (at least 1); the setting is
    restored afterwards, also on error. An exception in ``fn`` is raised here and cancels the items
    not yet started; where the consuming loop itself can raise, wrap the call in
    ``contextlib.closing`` so that this clean-up happens at once. ``workers <= 1`` runs everything
    in the calling thread.

    Thread-local torch state (grad mode, inference mode, autocast) does not carry over into the
    worker threads: ``fn`` must set what it needs.
    """
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        yield from map(fn, items)
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads // workers))
    try:
        with ThreadPoolExecutor(min(workers, len(items)), thread_name_prefix="autoattend") as pool:
            yield from _in_order(pool, fn, items)
    finally:
        torch.set_num_threads(threads)


def resolve_workers(workers: int | str | None, device: torch.device | str, name: str = "workers") -> int:
    """``"auto"``/``None``: ``min(torch.get_num_threads(), 4)`` on CPU and 1 elsewhere (GPU kernels
    already run asynchronously); an int is used as given on CPU (1 elsewhere). ``name`` (the config
    key) is for the error raised on anything else or < 1."""
    count = parse_workers(workers, name)
    if torch.device(device).type != "cpu":
        return 1
    if count is None:
        return max(1, min(torch.get_num_threads(), MAX_AUTO_WORKERS))
    return count


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. under ``taskset``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_process_workers(workers: int | str | None, device: torch.device | str, name: str = "workers") -> int:
    """Like :func:`resolve_workers`, for :func:`process_map`: ``"auto"`` is the number of cores the
    current intra-op thread count leaves room for, ``usable_cores() // torch.get_num_threads()``
    (at most 4), so a one-thread run on two cores gets 2."""
    if parse_workers(workers, name) is None:
        if torch.device(device).type != "cpu":
            return 1
        return max(1, min(MAX_AUTO_WORKERS, usable_cores() // max(1, torch.get_num_threads())))
    return resolve_workers(workers, device, name)


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when its parent dies, also by SIGKILL (the OOM killer), when no
    ``finally`` of the parent's stops it: a worker otherwise ran its fit to the end, holding its memory."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: the parent's own stopping of the workers stays
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def _init_process(threads: int) -> None:
    _die_with_parent()
    # Ctrl-C reaches the whole process group: the parent alone handles it (and stops the workers),
    # instead of every worker printing a KeyboardInterrupt traceback of its own
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    # torch warns each time a worker rebuilds a sparse tensor it was sent; they come from this process, checked
    warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")


def process_map(fn: Callable[[T], R], items: Iterable[T], workers: int,
                on_done: Callable[[], None] | None = None, setting: str = "the number of workers",
                ordered: bool = True) -> Iterator:
    """``fn`` over ``items`` in ``workers`` fresh processes (spawned, each with this process's
    intra-op thread count); results are yielded in item order. ``ordered=False``: ``(index, result)``
    pairs are yielded as the items finish, and when one fails, those that finished or were running
    beside it are yielded before its error is raised (for callers that record each item on its own,
    so what finished is kept).

    For work that depends on torch's global RNG (``seed_everything`` and everything after it): each
    process has its own, so ``fn`` returns what it would in this process. ``fn`` and the items must
    be picklable (``fn`` a module-level function). An exception in ``fn`` is raised here; it, Ctrl-C
    or the consumer closing the iterator cancels the items not yet started and stops those running
    (the workers ignore SIGINT: this process handles it). ``workers <= 1`` runs everything in this process.
    ``on_done``: called as each item finishes without error, in the order they finish (from a
    thread of the pool's when in processes), for a progress display. A worker killed (the OOM killer) or
    processes that cannot start are a :class:`WorkersFailedError` naming ``setting`` (the config key of
    ``workers``), not a BrokenProcessPool or BlockingIOError traceback.
    """
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        for index, item in enumerate(items):
            result = fn(item)
            if on_done is not None:
                on_done()
            yield result if ordered else (index, result)
        return
    check_shared_memory(f"{setting}=1")
    context = multiprocessing.get_context("spawn")  # fork is unsafe once torch has started threads
    pool = ProcessPoolExecutor(min(workers, len(items)), mp_context=context, initializer=_init_process,
                               initargs=(torch.get_num_threads(),))
    failing = False
    try:
        yield from (_in_order if ordered else _as_finished)(pool, fn, items, on_done)
    except BaseException as exc:
        failing = True
        # an error, Ctrl-C or the consumer closing: stop the items still running rather than wait
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        if isinstance(exc, BrokenProcessPool):
            raise WorkersFailedError(f"a worker process died (killed by the system: most likely out of memory); "
                                     f"what finished is kept: run the same command to resume, with {setting} "
                                     "lower if memory is short") from exc
        # a fork's EAGAIN or ENOMEM, or a thread refused (can't start new thread): named with the setting
        if (isinstance(exc, OSError) and exc.errno in (errno.EAGAIN, errno.ENOMEM)) or workers_refused(exc):
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise WorkersFailedError(f"cannot start worker processes ({reason}: a limit on processes, or "
                                     f"memory); run the same command with {setting}=1 (no worker processes)") from exc
        raise
    finally:
        try:
            pool.shutdown(wait=True, cancel_futures=True)
        except RuntimeError:  # "cannot join thread before it is started", after a thread was refused
            if not failing:
                raise


SHARED_MEMORY = Path("/dev/shm")
SHARED_MEMORY_NEEDED = 8 * 2**20  # a text loader's prefetched batches take about 1 MiB, a graph worker's a few


def check_shared_memory(without: str, folder: Path = SHARED_MEMORY) -> None:
    """Worker processes pass tensors, and their locks, through ``/dev/shm``, which a container may make small
    (Docker's default, 64 MiB) or read-only: there the data-loader workers printed tracebacks while the run waited
    for ever, and the graph workers ended in a traceback naming no file. One line instead, before they start,
    saying how to run without them (``without``: the setting, e.g. ``hardware.num_workers=0``). Nothing is checked
    where the folder does not exist (not Linux)."""
    try:
        stats = os.statvfs(folder)
    except OSError:
        return
    free = stats.f_bavail * stats.f_frsize
    if stats.f_flag & os.ST_RDONLY:
        problem = "is read-only"
    elif free < SHARED_MEMORY_NEEDED:
        problem = f"has {free / 2**20:.2f} MiB free (worker processes need {SHARED_MEMORY_NEEDED // 2**20} MiB)"
    else:
        return
    raise WorkersFailedError(f"worker processes pass their tensors through {folder}, which {problem}: run the same "
                             f"command with {without} (no worker processes), or give the container more shared "
                             f"memory (docker run --shm-size=1g)")


def _submitted(pool: Executor, fn: Callable[[T], R], items: list[T],
               on_done: Callable[[], None] | None) -> list[Future]:
    """Every item submitted to ``pool``; ``on_done`` called as each finishes without error."""
    futures = [pool.submit(fn, item) for item in items]
    if on_done is not None:
        for future in futures:
            future.add_done_callback(lambda f: None if f.cancelled() or f.exception() is not None else on_done())
    return futures


def _in_order(pool: Executor, fn: Callable[[T], R], items: list[T],
              on_done: Callable[[], None] | None = None) -> Iterator[R]:
    """Submit every item to ``pool`` and yield the results in item order; on any exit (done, an
    error, the consumer closing) the items not yet started are cancelled. ``on_done``: called as
    each item finishes without error, whatever the order."""
    futures = _submitted(pool, fn, items, on_done)
    try:
        for future in futures:
            yield future.result()
    finally:
        for future in futures:
            future.cancel()


def _as_finished(pool: Executor, fn: Callable[[T], R], items: list[T],
                 on_done: Callable[[], None] | None = None) -> Iterator[tuple[int, R]]:
    """As :func:`_in_order`, but ``(index, result)`` in the order the items finish. At the first
    failure the items not yet started are cancelled and those running are waited for (what they
    finish is given, as the items before a failure are in item order); then the failure is raised."""
    futures = _submitted(pool, fn, items, on_done)
    index_of = {future: index for index, future in enumerate(futures)}
    given: set[int] = set()
    failed: Future | None = None
    try:
        for future in as_completed(futures):
            if future.cancelled():
                continue
            if future.exception() is not None:
                failed = future
                break
            given.add(index_of[future])
            yield index_of[future], future.result()
        if failed is None:
            return
        for other in futures:
            other.cancel()  # those not started; a running one finishes
        # a cancelled future need not wake as_completed (only an executor's hand-over does): not waited on
        rest = [f for f in futures if index_of[f] not in given and f is not failed and not f.cancelled()]
        for other in as_completed(rest):
            if not other.cancelled() and other.exception() is None:
                yield index_of[other], other.result()
        failed.result()  # raises its error, traceback and all
    finally:
        for future in futures:
            future.cancel()

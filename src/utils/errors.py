"""User-facing errors: one clear line, non-zero exit, never a traceback."""

from __future__ import annotations

import errno


class AutoAttendError(Exception):
    """An error caused by the user's input (config, data, architecture file).

    Entry points print ``error: <message>`` on one line and exit with status 2.
    The message must say which file or key is wrong and what was expected.
    """


class DataNotFoundError(AutoAttendError):
    """A dataset is neither on disk nor reachable on the hub."""


class InvalidArchitectureError(AutoAttendError):
    """An architecture violates the search space; names the layer and the field."""

    def __init__(self, message: str, layer: int | None = None, field: str | None = None,
                 source: str | None = None):
        where = []
        if layer is not None:
            where.append(f"layer {layer}")
        if field is not None:
            where.append(f"field '{field}'")
        prefix = f"invalid architecture ({', '.join(where)}): " if where else "invalid architecture: "
        # the file first, as every other error about a file says it: "<file>: invalid architecture (...): ..."
        super().__init__((f"{source}: " if source else "") + prefix + message)
        self.layer = layer
        self.field = field


class SpaceExhaustedError(AutoAttendError):
    """A search asked for more new architectures than its space (or a parent's neighbourhood in it)
    still holds: a space too small for the strategy's budget."""


class TrainingDivergedError(AutoAttendError):
    """A training loss that is no longer finite (nan, inf): the weights it updates are lost, and every
    score of them would be that of NaN logits (the class with id 0 everywhere). The stage that ran the
    fit adds which fit and which setting (:func:`src.pipeline.common.diverged_hint`)."""


def check_finite_loss(value: float, step: int, by: bool = False) -> None:
    """Raise :class:`TrainingDivergedError` when ``value`` (a step's training loss) is nan or infinite;
    ``step``: the step it was (``by``: a loss at or before ``step`` was, which one is not known)."""
    if value != value or value in (float("inf"), float("-inf")):
        what = f"was not finite by step {step}" if by else f"became {value} at step {step}"
        raise TrainingDivergedError(f"the training loss {what} (the training diverged: a learning rate too high "
                                    "for the data, or non-finite inputs)")


class WorkersFailedError(AutoAttendError):
    """Worker processes died (the OOM killer) or could not start: the system's doing, said in one line with
    what to change (:func:`src.utils.parallel.process_map`, and a data loader's worker killed)."""


class RunDirInUseError(AutoAttendError):
    """The run folder is held by another command still running: the refusal is not written into
    that run's log (opened at its first line, it is not even opened for this command)."""


class RunDirLinkError(AutoAttendError):
    """The run folder holds a symbolic link: the refusal is not written into its log either, which may be one."""


# What the machine refuses rather than what the code gets wrong: said in one line, as a user error
_PERMISSIONS = ("check its permissions for the user running this, or (a run's data, cache or output) point "
                "paths.data_dir / paths.cache_dir / paths.output_dir (hydra.run.dir) elsewhere")
_MACHINE_ERRORS = {
    errno.EACCES: _PERMISSIONS,
    errno.EPERM: _PERMISSIONS,
    errno.EROFS: "a read-only file system: point paths.cache_dir / paths.output_dir (hydra.run.dir) elsewhere",
    errno.ENOSPC: "the disk is full: free some space, or point paths.cache_dir / paths.output_dir elsewhere",
    errno.EDQUOT: "the disk quota is used up: free some space, or point the paths elsewhere",
    errno.ENAMETOOLONG: "a name longer than the file system allows (most allow 255 bytes a name): choose a shorter one",
    errno.EFBIG: "the file would pass the process's file-size limit (ulimit -f, a batch system's): raise it "
                 "(ulimit -f unlimited) and run the same command to resume",
}


def machine_error(err: BaseException, where: str | None = None) -> AutoAttendError | None:
    """A permission, read-only or full-disk ``OSError`` about a named file as one line naming it (``where``,
    when given, names the folder written to for one without a file name: a library's write into a cache),
    else ``None`` (one without a file name is not the user's to mend: its traceback stays)."""
    name = getattr(err, "filename", None) or where
    if not isinstance(err, OSError) or err.errno not in _MACHINE_ERRORS or name is None:
        return None
    return AutoAttendError(f"{name}: {err.strerror or err}; {_MACHINE_ERRORS[err.errno]}")


def loader_worker_died(err: BaseException) -> WorkersFailedError | None:
    """torch's RuntimeError for a data loader worker process that died (``DataLoader worker (pid(s) ...) exited
    unexpectedly``, ``... is killed by signal: Killed``: the OOM killer, mostly) as one line saying so, else None."""
    text = str(err)
    if not (isinstance(err, RuntimeError) and text.startswith("DataLoader worker")):
        return None
    return WorkersFailedError(f"a data loader worker process died ({text.splitlines()[0].rstrip('. ')}: most likely "
                              "out of memory); what finished is kept: run the same command to resume, with "
                              "hardware.num_workers lower (0: none) if memory is short")


def workers_refused(err: BaseException) -> WorkersFailedError | None:
    """A thread or process the system refused to start (Python's RuntimeError ``can't start new thread``, a fork's
    EAGAIN): a limit on processes and threads (``ulimit -u``, a container's pids limit) or memory, as one line
    saying so, else None. The clean-up after the refusal raised a second error that ended the traceback (``cannot
    join thread before it is started``, Lightning's ``Please call iter(combined_loader) first``)."""
    thread = isinstance(err, RuntimeError) and str(err).startswith("can't start new thread")
    fork = isinstance(err, OSError) and err.errno == errno.EAGAIN and getattr(err, "filename", None) is None
    if not (thread or fork):
        return None
    return WorkersFailedError("cannot start a thread or process (a limit on processes and threads: ulimit -u, a "
                              "container's pids limit; or memory): run the same command with hardware.num_workers=0 "
                              "and graph.retrain.workers=1 (no worker processes), or raise the limit")


def user_error_behind(err: BaseException | None) -> AutoAttendError | None:
    """The :class:`AutoAttendError` that ``err`` is or was raised from (libraries wrap what user
    code raises: Hydra's ``instantiate``, ``datasets`` generators), or the machine's refusal
    (:func:`machine_error`: an unreadable data folder, an unwritable cache; :func:`loader_worker_died`,
    :func:`workers_refused`)
    behind it, else ``None``."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, AutoAttendError):
            return err
        refused = machine_error(err) or loader_worker_died(err) or workers_refused(err)
        if refused is not None:
            return refused
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def exit_status_of(main) -> int:
    """``main()``'s exit status, for entry points that print tables: when the reader of their
    output goes away (``python -m src.predict RUN --file F | head``), stop quietly with the status
    a shell gives a process that SIGPIPE ended (141), instead of a BrokenPipeError traceback; a
    permission, read-only or full-disk error is one ``error:`` line, status 2; a BrokenPipeError
    from another pipe than standard output (:func:`output_reader_gone`) is raised, a crash."""
    import sys

    try:
        status = main()
        sys.stdout.flush()  # a pipe closed after the last print breaks here, not at exit
        return status
    except BrokenPipeError:
        if not output_reader_gone():  # another pipe of the command's: a crash
            raise
        return quiet_after_reader_gone()
    except OSError as exc:  # after BrokenPipeError, one of them
        refused = machine_error(exc)
        if refused is None:
            raise
        print(f"error: {refused}", file=sys.stderr)
        return 2


SIGPIPE_STATUS = 141  # what a shell reports for a process that SIGPIPE ended (128 + 13)


def output_reader_gone() -> bool:
    """Whether standard output is a pipe whose reader has gone (``| head`` after its lines), as
    opposed to a BrokenPipeError from another pipe of the command's (a worker process gone), which
    is a crash to report. ``False`` where it cannot be told."""
    import select
    import sys

    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poll.poll(0))
    except (AttributeError, OSError, ValueError):  # no file descriptor (replaced), no poll
        return False


def quiet_after_reader_gone() -> int:
    """After the reader of standard output went away: point it at ``/dev/null``, so that the flush
    at exit cannot fail again, and return :data:`SIGPIPE_STATUS`."""
    import os
    import sys

    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return SIGPIPE_STATUS

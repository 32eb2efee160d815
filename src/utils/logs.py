"""Writing to the run's log file alone; the console's handler."""

from __future__ import annotations

import logging
import sys

from src.utils.errors import output_reader_gone, quiet_after_reader_gone


class ConsoleHandler(logging.StreamHandler):
    """Hydra's console handler (``conf/hydra/job_logging/delayed_file.yaml``), except that when the reader of
    standard output goes away (``python -m src.search ... | head``) standard output is pointed at
    ``/dev/null`` and the run goes on, its log file keeping every line: each later line was a
    ``--- Logging error ---`` traceback on standard error, about 500 lines for a smoke search."""

    def handleError(self, record: logging.LogRecord) -> None:
        if isinstance(sys.exc_info()[1], BrokenPipeError) and output_reader_gone():
            quiet_after_reader_gone()
            return
        super().handleError(record)


def print_to_console(text: str) -> None:
    """``print(text)``, or nothing once the reader of standard output has gone (see :class:`ConsoleHandler`)."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        if not output_reader_gone():
            raise
        quiet_after_reader_gone()


def log_to_files_only(logger: logging.Logger, message: str, level: int = logging.INFO, exc_info=None) -> None:
    """Record ``message`` as ``logger``'s in the run's log file (the root logger's file handlers,
    which Hydra points at the run folder) without repeating it on the console. The levels apply as
    to any record: nothing where ``logger`` is not enabled for ``level``, nor in a handler set above it.
    ``exc_info`` (``sys.exc_info()``): the exception's traceback follows the message."""
    if not logger.isEnabledFor(level):
        return
    record = logger.makeRecord(logger.name, level, __file__, 0, message, None, exc_info)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler) and level >= handler.level:
            handler.handle(record)

"""Writing to the run's log file alone."""

from __future__ import annotations

import logging


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

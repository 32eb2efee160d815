"""Worker counts as a config gives them (``auto`` or an integer >= 1), kept free of torch so that
:mod:`src.pipeline.checks` reads them with the same rule before torch is imported as
:mod:`src.utils.parallel` does at run time."""

from __future__ import annotations


def parse_workers(value: object, name: str = "workers") -> int | None:
    """``None`` for ``"auto"`` (or ``None``), else the count: an integer >= 1 or its decimal string
    (``"2"``, as an override quoted on a command line gives it). Anything else (0, ``1.5``,
    ``True``, ``"many"``) raises ``ValueError`` naming ``name``, the config key."""
    if value is None or value == "auto":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        count = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        count = int(value)
    else:
        count = 0
    if count < 1:
        raise ValueError(f"{name} must be 'auto' or an integer >= 1, got {value!r}")
    return count

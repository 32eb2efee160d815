"""The Hugging Face hub fallback: whether a benchmark's local files are there to read, and loading
the hub dataset when they are not."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from src.utils.errors import DataNotFoundError

PROBE_TIMEOUT_S = 3.0


def hub_unreachable() -> str | None:
    """Why the hub cannot be reached (``None``: it can, or offline mode reads the local cache).

    One TCP connection with a short timeout: without a network, ``datasets`` would retry for
    about half a minute before giving up."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on") or \
            os.environ.get("HF_DATASETS_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        return None
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        return (f"{host}:{port} is unreachable ({type(exc).__name__}: {exc}; with HF_HUB_OFFLINE=1 a copy in the "
                f"local Hugging Face cache is used)")
    return None


def hub_class_number(raw) -> int | None:
    """A hub label column's value as a class number: an integer, or a float holding a whole number (a column of
    integers with a missing value is stored as floats); None for anything else (a class name, a missing label, a
    score such as 0.75, which ``int`` truncated to class 0)."""
    import numbers

    if isinstance(raw, numbers.Integral):
        return int(raw)
    if isinstance(raw, numbers.Real) and float(raw).is_integer():
        return int(raw)
    return None


def load_hub_dataset(name: str, config: str | None = None):
    """``datasets.load_dataset(name, config)``; raises ``RuntimeError`` with the reason when the
    hub is unreachable (callers turn any failure into a message naming the local files)."""
    reason = hub_unreachable()
    if reason is not None:
        raise RuntimeError(reason)
    import datasets

    return datasets.load_dataset(name, config) if config is not None else datasets.load_dataset(name)


def local_files_complete(files: dict[str, Path], required: tuple[str, ...], what: str,
                         expected: str = "the {} split's file") -> bool:
    """Whether a benchmark's local files (``{split: path}``) are there to be read: True when every
    ``required`` split's file is, False when none of them is (the hub copy, or PyG's download, is the
    fallback). An error (``what`` names the data in it) when some are and others not, or when one of
    the paths, an optional one too, is a folder or other non-file (``expected``, formatted with its
    key, says what belongs there): the fallback (or a validation split carved from train) would have
    replaced the files given, in silence."""
    for split, path in files.items():
        if path.exists() and not path.is_file():
            kind = "a folder" if path.is_dir() else "not a regular file"
            raise DataNotFoundError(f"{what}: {path} is {kind}; expected {expected.format(split)}")
    present = [split for split in required if files[split].is_file()]
    if present and len(present) < len(required):
        missing = [str(files[split]) for split in required if split not in present]
        names = ", ".join(files[split].name for split in present)
        raise DataNotFoundError(f"{what}: incomplete files, {', '.join(missing)} missing (while {names} "
                                f"{'is' if len(present) == 1 else 'are'} there); add the missing "
                                f"file{'s' if len(missing) > 1 else ''}: a set given in part is not completed "
                                f"from the hub or a download, which only a folder with none of them falls back to")
    return len(present) == len(required)

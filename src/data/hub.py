"""Loading a Hugging Face hub dataset, the fallback when a benchmark's files are not on disk."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

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


def load_hub_dataset(name: str, config: str | None = None):
    """``datasets.load_dataset(name, config)``; raises ``RuntimeError`` with the reason when the
    hub is unreachable (callers turn any failure into a message naming the local files)."""
    reason = hub_unreachable()
    if reason is not None:
        raise RuntimeError(reason)
    import datasets

    return datasets.load_dataset(name, config) if config is not None else datasets.load_dataset(name)

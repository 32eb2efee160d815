"""Hydra search-path plugin: the recorded experiment configs (``+experiment=<name>``) for autoattend's entry points.

Hydra imports every module under the ``hydra_plugins`` namespace package. This one adds the repository's
``experiments/conf`` (its ``experiment/`` group) to the config search path of a config composed from autoattend's
``conf/`` folder, and of nothing else: the entry points' configs (``conf/search.yaml``, ``conf/retrain.yaml``) then
need no ``hydra.searchpath`` of their own, which Hydra allows only in a primary config, so a primary config of a
user's that extends ``search`` (``-cd DIR -cn mine`` with ``defaults: [search, ...]``) composes. The path is absolute:
``+experiment=<name>`` works from any working directory.
"""
from __future__ import annotations

from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

REPOSITORY = Path(__file__).resolve().parents[2]
CONF_DIR = REPOSITORY / "conf"
EXPERIMENTS_CONF_DIR = REPOSITORY / "experiments" / "conf"
PROVIDER = "autoattend-experiments"


def _is_autoattend_conf(path: str) -> bool:
    """Whether a search-path entry (``file:///...``, or a plain path as Hydra gives the primary config's folder) is
    autoattend's ``conf/`` folder."""
    if path.startswith("file://"):
        path = path[len("file://"):]
    elif "://" in path:  # pkg://, structured://
        return False
    try:
        return Path(path).resolve() == CONF_DIR
    except (OSError, RuntimeError):
        return False


class AutoAttendExperimentsSearchPath(SearchPathPlugin):
    """Appends ``file://<repository>/experiments/conf`` after autoattend's ``conf/`` (once; not where the folder is
    missing, which Hydra would warn of on every run)."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        entries = search_path.get_path()
        if any(entry.provider == PROVIDER for entry in entries):
            return
        if EXPERIMENTS_CONF_DIR.is_dir() and any(_is_autoattend_conf(entry.path or "") for entry in entries):
            search_path.append(provider=PROVIDER, path=f"file://{EXPERIMENTS_CONF_DIR}")

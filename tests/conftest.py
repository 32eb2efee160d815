"""Shared fixtures: the real Hydra config, composed and shrunk for tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

import src.pipeline.config  # noqa: F401  (registers the resolver conf/ uses, as the entry points' imports do)

CONF = Path(__file__).resolve().parents[1] / "conf"

# what this session collected before ``-m "not slow"`` deselected anything (the fixture collected_suite gives it:
# tests/test_docs_claims_2_findings.py checks the count of slow tests the docs give)
COLLECTED_SLOW = pytest.StashKey[list]()
COLLECTED_FILES = pytest.StashKey[set]()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    config.stash[COLLECTED_SLOW] = [item.nodeid for item in items if item.get_closest_marker("slow")]
    config.stash[COLLECTED_FILES] = {item.path.name for item in items}


@pytest.fixture
def collected_suite(request) -> tuple[list, set]:
    """(node ids of the tests marked slow, names of the test files) this session collected."""
    return request.config.stash[COLLECTED_SLOW], request.config.stash[COLLECTED_FILES]


def compose_config(name: str, overrides: list[str]) -> DictConfig:
    """Compose ``conf/<name>.yaml`` with ``overrides`` exactly as the command line would."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


@pytest.fixture
def smoke_cfg(tmp_path):
    """A ``budget=smoke`` search config whose data, cache and outputs live in ``tmp_path``."""

    def make(task: str = "sst2", name: str = "search", extra: list[str] | None = None,
             data_dir: Path | None = None) -> DictConfig:
        cfg = compose_config(name, [f"+task={task}", "budget=smoke", "hardware=cpu"] + (extra or []))
        with open_dict(cfg):
            cfg.paths.data_dir = str(data_dir or tmp_path / "data")
            cfg.paths.cache_dir = str(tmp_path / "cache")
            cfg.paths.output_dir = str(tmp_path / "out")
        return cfg

    return make


@pytest.fixture(autouse=True)
def _hub_offline(monkeypatch):
    """Tests never reach the Hugging Face hub: skip the hub reachability probe
    (:func:`src.data.hub.hub_unreachable`) as offline mode does; tests of the probe undo this."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def one_intra_op_thread():
    """One intra-op thread for a module's tests on tiny tensors (a second one only adds contention on shared
    cores); the count before is restored after the module."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def quiet_hydra_entry(monkeypatch):
    """``hydra_entry`` in this process: its sweep report is not written, its signal handlers kept."""
    from src.pipeline import run

    monkeypatch.setattr(run, "_report_sweeps", lambda: None)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "unset below, restored after the test")
    monkeypatch.delenv("HYDRA_FULL_ERROR")
    return run

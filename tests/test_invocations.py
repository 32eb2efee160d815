"""The record of a run's invocations (``invocations.json``): what ``read_invocations`` accepts, and
which earlier invocation a resume's machine settings are compared with (mutation audit 2026-12-05)."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from src.pipeline.run_settings import INVOCATIONS_FILE, read_invocations
from tests.conftest import compose_config


def _invocation(device="cpu", threads=1, kernels="fused"):
    return {"started": "2026-12-05T05:00:00+0000", "argv": [], "device": device, "threads": threads,
            "kernels": kernels, "data_dir": "/data", "commit": None}


def _record(run_dir, caplog, kernels="fused"):
    from src.pipeline import run

    with caplog.at_level(logging.WARNING, logger="src"):
        run._record_invocation(compose_config("search", ["+task=sst2", f"hardware.kernels={kernels}"]), run_dir)
    return json.loads((run_dir / INVOCATIONS_FILE).read_text())["invocations"]


def test_a_run_without_a_record_has_no_invocations_and_its_first_is_not_warned_about(tmp_path, caplog):
    """No ``invocations.json`` yet is an empty record, not a damaged one: the first invocation of a
    run is not told its record is unreadable."""
    assert read_invocations(tmp_path) == []
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert len(_record(tmp_path, caplog)) == 1
    finally:
        torch.set_num_threads(before)
    assert "unreadable" not in caplog.text and "computes with" not in caplog.text


@pytest.mark.parametrize("text", ['{"runs": []}', "[1, 2]", '{"invocations": {"a": 1}}', '{"invocations": [1, 2]}',
                                  '{"invocations": [{"device": "cpu"}, "x"]}', '{"invocations": {}}'])
def test_a_record_of_another_shape_is_damaged_and_started_again(text, tmp_path, caplog):
    """A record of the wrong shape (no ``invocations`` key, a list, entries that are not objects) is
    read as damaged: the resume warns and starts the record again rather than failing with a traceback."""
    (tmp_path / INVOCATIONS_FILE).write_text(text)
    assert read_invocations(tmp_path) is None
    assert len(_record(tmp_path, caplog)) == 1
    assert "unreadable; the record of invocations starts again from this one" in caplog.text


def test_a_resume_is_compared_with_the_last_invocation_and_a_device_change_is_warned_about(tmp_path, caplog):
    """The resume's threads, kernels and device are compared with the run's last invocation, not
    its first; another device is warned about too (it draws other dropout masks)."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        (tmp_path / INVOCATIONS_FILE).write_text(json.dumps({"invocations": [_invocation(threads=2),
                                                                             _invocation(threads=1)]}))
        assert len(_record(tmp_path, caplog)) == 3
        assert "computes with" not in caplog.text  # the last one had 1 thread, as this one
        caplog.clear()
        (tmp_path / INVOCATIONS_FILE).write_text(json.dumps({"invocations": [_invocation(device="cuda:0")]}))
        _record(tmp_path, caplog)
    finally:
        torch.set_num_threads(before)
    assert "this invocation computes with device cpu; the run's last one with device cuda:0" in caplog.text


def test_a_graph_run_recorded_without_kernels_is_resumed_with_them_named_not_recorded(tmp_path, caplog):
    """Graph runs recorded kernels None before their propagation moved onto the kernels; resumed
    since, the warning said "kernels None"."""
    from src.pipeline import run

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        (tmp_path / INVOCATIONS_FILE).write_text(json.dumps({"invocations": [_invocation(kernels=None)]}))
        with caplog.at_level(logging.WARNING, logger="src"):
            run._record_invocation(compose_config("search", ["+task=cora", "hardware.kernels=fused"]), tmp_path)
    finally:
        torch.set_num_threads(before)
    assert "this invocation computes with kernels fused; the run's last one with kernels not recorded:" in caplog.text


def test_each_invocation_records_its_data_folder(tmp_path, caplog):
    """``src.evaluate`` rebuilds the data from the folder the last invocation read."""
    from src.evaluate import recorded_data_dir

    invocations = _record(tmp_path, caplog)
    cfg = compose_config("search", ["+task=sst2"])
    assert invocations[-1]["data_dir"] == str(__import__("pathlib").Path(cfg.paths.data_dir).expanduser().resolve())
    assert recorded_data_dir(tmp_path) == invocations[-1]["data_dir"]


def test_each_invocation_records_a_csv_tasks_corpus_folder_resolved(tmp_path):
    """A relative ``task.path`` is relative to where the run started: the record holds the folder
    (``src.evaluate`` started elsewhere reads it there); tasks without a path record none."""
    from pathlib import Path

    from src.pipeline import run

    for name, overrides in (("csv", ["+task=csv", "task.num_classes=3", "task.path=my_corpus"]), ("sst2", ["+task=sst2"])):
        run_dir = tmp_path / name
        run_dir.mkdir()
        run._record_invocation(compose_config("search", overrides), run_dir)
        last = json.loads((run_dir / INVOCATIONS_FILE).read_text())["invocations"][-1]
        assert last.get("task_path") == (str(Path("my_corpus").resolve()) if name == "csv" else None)


def test_a_sweep_job_records_its_own_overrides(tmp_path, caplog, monkeypatch):
    """A sweep's command line is the whole sweep's: each job's record names the job's overrides."""
    from types import SimpleNamespace

    from hydra.core.hydra_config import HydraConfig

    from src.pipeline import run

    monkeypatch.setattr(run, "_in_multirun", lambda: True)
    monkeypatch.setattr(HydraConfig, "get", staticmethod(lambda: SimpleNamespace(
        overrides=SimpleNamespace(task=["+task=sst2", "seed=1"]))))
    assert _record(tmp_path, caplog)[-1]["job_overrides"] == ["+task=sst2", "seed=1"]
    monkeypatch.setattr(run, "_in_multirun", lambda: False)
    assert "job_overrides" not in _record(tmp_path, caplog)[-1]


def test_the_report_shows_no_machine_kernels_for_runs_that_recorded_none(tmp_path):
    """A graph run recorded kernels None before 2026-12-06: no ``machine.kernels`` value for it, nor
    any machine value for a run without a record or with a damaged one; resumed since, its earlier
    invocations are ``not recorded`` (they read ``None``)."""
    from src.report import _machine_settings

    (tmp_path / INVOCATIONS_FILE).write_text(json.dumps({"invocations": [_invocation(kernels=None),
                                                                         _invocation(kernels=None, threads=2)]}))
    assert _machine_settings(tmp_path) == {"machine.device": "cpu", "machine.threads": "1 -> 2"}
    (tmp_path / INVOCATIONS_FILE).write_text(json.dumps({"invocations": [_invocation(kernels=None),
                                                                         _invocation(kernels="fused")]}))
    assert _machine_settings(tmp_path) == {"machine.device": "cpu", "machine.threads": "1",
                                           "machine.kernels": "not recorded -> fused"}
    (tmp_path / INVOCATIONS_FILE).write_text("{not json")
    assert _machine_settings(tmp_path) == {}
    (tmp_path / INVOCATIONS_FILE).unlink()
    assert _machine_settings(tmp_path) == {}


def test_within_a_node_means_the_node_or_a_key_inside_it():
    """``a.b`` is within ``a``; ``ab`` or ``a_b`` is not; a node ending in a dot holds what is inside it only."""
    from src.pipeline.run_settings import unread_by_retrain, within

    assert within("supernet", ("supernet",)) and within("supernet.dim", ("supernet",))
    assert not within("supernet_dim", ("supernet",)) and not within("graph.supernetwork.x", ("graph.supernet",))
    assert within("graph.hpo.space.lr", ("graph.hpo.space.",)) and not within("graph.hpo.space", ("graph.hpo.space.",))
    assert unread_by_retrain("graph.supernet.lr") and not unread_by_retrain("graph.supernet.act_at")
    assert not unread_by_retrain("space.ops") and not unread_by_retrain("supernets")


def test_evaluate_rebuilds_from_the_data_folder_of_the_last_invocation(tmp_path):
    from src.evaluate import recorded_data_dir

    (tmp_path / INVOCATIONS_FILE).write_text(json.dumps({"invocations": [
        {**_invocation(), "data_dir": "/old"}, {**_invocation(), "data_dir": "/new"}]}))
    assert recorded_data_dir(tmp_path) == "/new"


def test_a_last_invocation_without_a_data_folder_records_none(tmp_path):
    """An invocation that recorded no data folder says none: not the string ``None`` (which the
    missing-data error then gave as "the run read its data from None"), nor an earlier invocation's
    (mutation audit 2026-12-06)."""
    from src.evaluate import recorded_data_dir

    for last in ({"data_dir": None}, {"data_dir": ""}, {}):
        (tmp_path / INVOCATIONS_FILE).write_text(json.dumps({"invocations": [
            {**_invocation(), "data_dir": "/old"}, {**{k: v for k, v in _invocation().items() if k != "data_dir"},
                                                     **last}]}))
        assert recorded_data_dir(tmp_path) is None, last

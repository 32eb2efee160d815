"""The run's records (``run_settings.json``, ``data.json``, ``.hydra/``), checked in process without
running a pipeline (mutation audit 2026-12-07): what a resume may and may not change, how a
difference is said, and what a damaged record is called."""

from __future__ import annotations

import json
import logging

import pytest

from src.pipeline.run_settings import (DATA_FILE, SETTINGS_FILE, HydraRecord, check_run_data, check_run_settings,
                                       describe_data_difference, flatten, format_mean_std, read_data_record,
                                       run_settings, _show)
from src.utils.errors import AutoAttendError
from tests.conftest import compose_config


def _with_results(run_dir):
    """A run folder a re-run would resume from (the supernet's checkpoint)."""
    (run_dir / "supernet").mkdir(parents=True, exist_ok=True)
    (run_dir / "supernet" / "last.ckpt").write_bytes(b"")


def test_a_shown_value_is_cut_past_60_characters_and_a_string_is_not_quoted():
    assert _show("x" * 60) == "x" * 60
    assert _show("x" * 61) == "x" * 57 + "..." and len(_show("y" * 500)) == 60
    assert (_show("full"), _show(None), _show([1, 2]), _show(0.5)) == ("full", "null", "[1, 2]", "0.5")


def test_a_refusal_names_six_differing_keys_in_order_then_counts_the_others(tmp_path):
    settings = {"entry": "search", **{f"k{i}": i for i in range(8)}}
    check_run_settings(tmp_path, settings)
    _with_results(tmp_path)
    with pytest.raises(AutoAttendError) as err:
        check_run_settings(tmp_path, {"entry": "search", **{f"k{i}": i + 10 for i in range(8)}})
    assert str(err.value) == (
        f"run dir {tmp_path} was started with other settings, and resuming would mix their results with these: "
        "k0: 0 -> 10; k1: 1 -> 11; k2: 2 -> 12; k3: 3 -> 13; k4: 4 -> 14; k5: 5 -> 15 (and 2 more). Re-run with the "
        f"recorded settings ({tmp_path / SETTINGS_FILE}) to resume, or give a new hydra.run.dir")
    with pytest.raises(AutoAttendError) as err:  # six: every one named, no count
        check_run_settings(tmp_path, {**settings, **{f"k{i}": "new" for i in range(6)}})
    assert "k5: 5 -> new. Re-run" in str(err.value) and "more)" not in str(err.value)


def test_a_refusal_shows_a_records_control_characters_escaped(tmp_path):
    """A run folder's record from elsewhere whose key and value hold a terminal's escape sequence and a line break:
    the refusal is one line without them, the characters written as JSON escapes."""
    check_run_settings(tmp_path, {"entry": "search", "seed": 0})
    _with_results(tmp_path)
    record = json.loads((tmp_path / SETTINGS_FILE).read_text())
    record.update({"seed": "\x1b[2J\nrm", "k\x1b]0;title\x07": 1})
    (tmp_path / SETTINGS_FILE).write_text(json.dumps(record))
    with pytest.raises(AutoAttendError) as err:
        check_run_settings(tmp_path, {"entry": "search", "seed": 0})
    assert str(err.value).isprintable(), repr(str(err.value))
    assert "k\\u001b]0;title\\u0007: 1 -> (unset); seed: \\u001b[2J\\nrm -> 0." in str(err.value)
    assert _show("caf\u00e9 \u4e2d") == "caf\u00e9 \u4e2d"  # printable text stays as it is


def test_two_mappings_are_compared_key_by_key(tmp_path):
    """A changed key inside a mapping (an architecture file's hparams) is named with its path: the
    whole mappings, cut to 60 characters, showed the same first characters on both sides
    (``arch_hparams: {"hidden": 16, "dropout": 0.5, ... -> {"hidden": 16, "dropout": 0.5, ...``)."""
    hparams = {"hidden": 16, "dropout": 0.5, "attn_dropout": 0.0, "act": "relu", "readout": "last", "lr": 0.01}
    check_run_settings(tmp_path, {"entry": "retrain", "arch_hparams": hparams})
    _with_results(tmp_path)
    # a child setting the record lacks reads as what children did before it existed (all)
    with pytest.raises(AutoAttendError, match=r"with these: arch_hparams.lr: 0.01 -> 0.02; arch_hparams.weight_decay_on: "
                                              r"all -> first_layer\. Re-run"):
        check_run_settings(tmp_path, {"entry": "retrain",
                                      "arch_hparams": {**hparams, "lr": 0.02, "weight_decay_on": "first_layer"}})
    with pytest.raises(AutoAttendError, match=r"with these: arch_hparams: \{\"hidden\": 16, .*\.\.\. -> null\. Re-run"):
        check_run_settings(tmp_path, {"entry": "retrain", "arch_hparams": None})


def test_a_removed_option_is_a_difference_even_where_its_recorded_value_was_null(tmp_path):
    check_run_settings(tmp_path, {"entry": "search", "seed": 0, "data.window": None})
    _with_results(tmp_path)
    with pytest.raises(AutoAttendError, match=r"with these: data.window: null -> \(unset\)\. Re-run"):
        check_run_settings(tmp_path, {"entry": "search", "seed": 0})


def test_results_without_a_record_are_adopted_and_a_record_without_an_entry_resumes(tmp_path, caplog):
    """A run folder from before the records existed (results, no run_settings.json) gets the
    settings of the re-run; a record from before it named the entry point gains the entry."""
    _with_results(tmp_path)
    settings = {"entry": "search", "seed": 0}
    assert check_run_settings(tmp_path, settings) == []
    assert json.loads((tmp_path / SETTINGS_FILE).read_text()) == settings
    (tmp_path / SETTINGS_FILE).write_text(json.dumps({"seed": 0}))
    with caplog.at_level(logging.WARNING):
        assert check_run_settings(tmp_path, settings) == ["entry"]
    assert "entry=search" in caplog.text
    assert json.loads((tmp_path / SETTINGS_FILE).read_text()) == settings


def test_settings_are_compared_as_json_holds_them(tmp_path):
    """A tuple (an architecture's content, say) is recorded as a list: the same settings resume."""
    settings = {"entry": "retrain", "architecture": {"layers": ({"op": "conv1", "inputs": (0,)},)}}
    check_run_settings(tmp_path, settings)
    _with_results(tmp_path)
    assert check_run_settings(tmp_path, settings) == []


def test_a_run_of_a_csv_corpus_rerun_as_another_task_is_refused_naming_the_task(tmp_path):
    """The data's place (task.path) is a setting the other task lacks: the refusal names the
    differences (task.path among them, unset now), not a KeyError."""
    csv = ["+task=csv", "task.num_classes=2", "task.path=/a/mine", "budget=smoke"]
    check_run_settings(tmp_path, run_settings(compose_config("search", csv), "search"))
    _with_results(tmp_path)
    with pytest.raises(AutoAttendError) as err:
        check_run_settings(tmp_path, run_settings(compose_config("search", ["+task=sst2", "budget=smoke"]), "search"))
    assert str(err.value).startswith(f"run dir {tmp_path} was started with other settings, and resuming would mix")
    assert "task.path: " not in str(err.value) or "task.path: /a/mine -> (unset)" in str(err.value)


def test_a_moved_corpus_is_said_once_and_the_record_keeps_its_first_place_when_it_gains_an_option(tmp_path, caplog):
    """``+task=csv`` with its folder moved: one warning naming task.path (its DataModule's path
    follows it), and an option added since is recorded beside the place the run started from."""
    task = ["+task=csv", "task.num_classes=3", "budget=smoke"]
    started = run_settings(compose_config("search", [*task, "task.path=/a/mine"]), "search")
    check_run_settings(tmp_path, {k: v for k, v in started.items() if k != "supernet.lr"})
    _with_results(tmp_path)
    moved = run_settings(compose_config("search", [*task, "task.path=/b/mine"]), "search")
    with caplog.at_level(logging.WARNING):
        assert check_run_settings(tmp_path, moved) == ["supernet.lr"]
    (line,) = [r.getMessage() for r in caplog.records if "another place" in r.getMessage()]
    assert line == (f"run dir {tmp_path}: its data are read from another place than where the run started "
                    "(task.path: /a/mine -> /b/mine); data.json checks they are the same data")
    recorded = json.loads((tmp_path / SETTINGS_FILE).read_text())
    assert recorded == json.loads(json.dumps(started))  # the first place, and the option's value


def test_a_resume_with_an_hpo_space_key_added_or_removed_is_refused(tmp_path, caplog):
    """A graph run stopped in its HPO (retrain/hpo.json kept) re-run with ``+graph.hpo.space.hidden=[64,32]``
    resumed the HPO over another space (its trials drawn anew, the finished ones kept) and recorded the
    new space as the run's, with a warning that the option did not exist when the run started. The HPO
    space's keys are the user's (``ADDABLE``): one added is a changed setting, as one removed is."""
    base = ["+task=cora", "budget=smoke"]
    check_run_settings(tmp_path, run_settings(compose_config("search", base), "search"))
    started = (tmp_path / SETTINGS_FILE).read_text()
    (tmp_path / "retrain").mkdir()
    (tmp_path / "retrain" / "hpo.json").write_text('{"trials": []}')
    wider = run_settings(compose_config("search", [*base, "+graph.hpo.space.hidden=[64,32]"]), "search")
    with pytest.raises(AutoAttendError,
                       match=r"other settings, .*: graph\.hpo\.space\.hidden: \(unset\) -> \[64, 32\]\. "):
        check_run_settings(tmp_path, wider)
    assert (tmp_path / SETTINGS_FILE).read_text() == started and "before these options existed" not in caplog.text
    (tmp_path / SETTINGS_FILE).write_text(json.dumps(wider))
    with pytest.raises(AutoAttendError, match=r": graph\.hpo\.space\.hidden: \[64, 32\] -> \(unset\)\. "):
        check_run_settings(tmp_path, run_settings(compose_config("search", base), "search"))


def test_a_data_record_is_written_for_results_without_one_and_kept_on_a_resume(tmp_path):
    """Results from before runs recorded their data: the data now are recorded. A resume on the
    same data leaves the record as it was (a fact the record lacks is not added to it)."""
    _with_results(tmp_path)
    facts = {"classes": 2, "vocabulary": 30, "examples": {"train": 5}}
    check_run_data(tmp_path, facts)
    assert json.loads((tmp_path / DATA_FILE).read_text()) == facts
    check_run_data(tmp_path, {**facts, "labels_sha256": "ab"})
    assert json.loads((tmp_path / DATA_FILE).read_text()) == facts
    # facts compare as JSON holds them (a tuple is the list recorded)
    check_run_data(tmp_path, {**facts, "nodes": (3, 4)})  # no nodes in the record: not compared
    (tmp_path / DATA_FILE).write_text(json.dumps({**facts, "nodes": [3, 4]}))
    check_run_data(tmp_path, {**facts, "nodes": (3, 4)})
    assert describe_data_difference({"nodes": [3, 4]}, {"nodes": (3, 4)}) == ""


def test_a_data_difference_names_each_fact_and_one_the_data_lack():
    assert describe_data_difference(None, {"classes": 2}) == ""
    assert describe_data_difference({"classes": 2, "vocabulary": 30, "features": 5}, {"classes": 3, "vocabulary": 31}) \
        == "classes: 2 -> 3; features: 5 -> (none); vocabulary: 30 -> 31"


@pytest.mark.parametrize("key, value, kind", [("classes", True, "int"), ("vocabulary", "30", "int"),
                                              ("labels_sha256", 12, "str"), ("examples", [1, 2], "{str: int}"),
                                              ("examples", {"train": 1.5}, "{str: int}"), ("nodes", ["a", 1], "[int]"),
                                              ("edges", 7, "[int]")])
def test_a_data_record_of_another_shape_is_named_as_such(key, value, kind, tmp_path):
    good = {"classes": 2, "vocabulary": 30, "vocabulary_sha256": "ab", "labels_sha256": "cd",
            "examples": {"train": 5, "val": 2}, "features": 3, "train_graphs": 0, "nodes": [3, 4], "edges": [5, 6]}
    assert read_data_record(tmp_path) is None  # a run from before the records
    (tmp_path / DATA_FILE).write_text(json.dumps(good))
    assert read_data_record(tmp_path) == good
    (tmp_path / DATA_FILE).write_text(json.dumps({**good, key: value}))
    with pytest.raises(AutoAttendError) as err:
        read_data_record(tmp_path)
    assert str(err.value) == (f"{tmp_path / DATA_FILE}: {key} is {_show(value)}, not a record of the data ({kind}); "
                              "it records the data this run directory was started on: restore it")


@pytest.mark.parametrize("text, reason", [("[1, 2]", "not a JSON object"), ("not json", "Expecting value")])
def test_a_record_that_is_not_a_json_object_is_unreadable_in_one_line(text, reason, tmp_path):
    _with_results(tmp_path)
    for name, check in ((SETTINGS_FILE, lambda: check_run_settings(tmp_path, {"entry": "search"})),
                        (DATA_FILE, lambda: check_run_data(tmp_path, {"classes": 2}))):
        (tmp_path / name).write_text(text)
        with pytest.raises(AutoAttendError) as err:
            check()
        assert str(err.value).startswith(f"{tmp_path / name} is unreadable ({reason}") and str(err.value).endswith(
            ": restore it, or start a new run directory (hydra.run.dir=...)")


def test_the_hydra_record_holds_the_config_and_the_jobs_overrides(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from tests.conftest import CONF

    assert HydraRecord(compose_config("search", ["+task=sst2"])).files == {}  # no Hydra (a library call)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="search", overrides=["+task=sst2", "seed=3"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    try:
        record = HydraRecord(cfg)
    finally:
        HydraConfig.instance().cfg = None
        GlobalHydra.instance().clear()
    record.write(tmp_path)
    assert sorted(p.name for p in (tmp_path / ".hydra").iterdir()) == ["config.yaml", "hydra.yaml", "overrides.yaml"]
    assert OmegaConf.load(tmp_path / ".hydra" / "overrides.yaml") == ["+task=sst2", "seed=3"]
    assert OmegaConf.load(tmp_path / ".hydra" / "config.yaml").seed == 3
    assert OmegaConf.load(tmp_path / ".hydra" / "hydra.yaml").hydra.overrides.task == ["+task=sst2", "seed=3"]


def test_a_place_or_machine_key_may_change_flatten_keeps_lists_and_a_mean_alone_is_one_seeds():
    from src.pipeline.run_settings import may_change

    assert may_change("ranking") and may_change("paths.data_dir") and may_change("hardware.progress_every_s")
    assert not may_change("rankings") and not may_change("hardware.threads_per_core") and not may_change("seed")
    assert flatten({"a": {"b": 1, "c": {"d": [2, 3]}}, "e": None}) == {"a.b": 1, "a.c.d": [2, 3], "e": None}
    block = {"test_acc_mean": 0.8043, "test_acc_std": 0.0141}
    assert format_mean_std({**block, "seeds": [0]}) == "80.43"
    assert format_mean_std({**block, "seeds": [0, 1]}) == format_mean_std(block) == "80.43 +- 1.41"

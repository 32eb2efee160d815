"""Tests a mutation round over session 51's mends found missing (2026-12-07): each kills a mutant that survived the
walks' tests (29 mutations, 23 killed by them; the one left, the old sweep folder's ``hardware.`` prefix, is
equivalent: every such key is among Hydra's excluded keys already)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml

from src.utils.errors import AutoAttendError


@pytest.mark.parametrize("config, where", [
    ({"task": {"datamodule": {"_target_": "src.data.sst.SSTDataModule",
                              "name": {"_target_": "src.data.sst.SSTDataModule"}}}}, "task.datamodule.name._target_"),
    ({"task": {"datamodule": {"_target_": "src.data.sst.SSTDataModule"}},
      "data": {"files": [1, {"_target_": "builtins.print"}]}}, "data.files[1]._target_"),
])
def test_a_run_config_naming_a_target_anywhere_but_the_datamodule_is_refused(config, where):
    """check_targets: an allowed DataModule class named under another key, and a ``_target_`` inside a list, are
    refused naming their place; the DataModule's own one passes."""
    from src.evaluate import check_targets

    with pytest.raises(AutoAttendError, match=re.escape(f"config.yaml: {where}: ")):
        check_targets(config, Path("config.yaml"))
    check_targets({"task": {"datamodule": {"_target_": "src.data.sst.SSTDataModule", "name": "sst2"}}},
                  Path("config.yaml"))


def test_mapping_keys_count_toward_the_yaml_size_limit():
    """check_yaml_size counts keys and values: a flat mapping of 60,000 entries (120,001 values) is over 100,000."""
    from src.utils.io import MAX_YAML_VALUES, check_yaml_size

    entries = MAX_YAML_VALUES * 6 // 10
    with pytest.raises(yaml.YAMLError, match="expand to over 100,000 values"):
        check_yaml_size("".join(f"k{i}: {i}\n" for i in range(entries)))
    check_yaml_size("".join(f"k{i}: {i}\n" for i in range(entries // 2)))


def test_a_class_id_making_one_class_more_than_the_labelled_nodes_is_refused():
    """Four labelled nodes hold at most four classes: ids 0, 1, 2, 4 (five classes) are refused; 0, 1, 2, 3 pass."""
    from src.data.graph_file import _check_class_count

    with pytest.raises(AutoAttendError, match="'y' holds class id 4, which makes more classes than the 4 labelled"):
        _check_class_count(torch.tensor([0, 1, 2, 4, -1]), Path("g.npz"))
    _check_class_count(torch.tensor([0, 1, 2, 3, -1]), Path("g.npz"))


def test_seeds_recorded_with_different_settings_are_refused(tmp_path):
    """_as_the_seeds_trained: a folder whose finished seeds recorded different hparams cannot take one setting for
    its other seeds: refused naming the folder."""
    from src.pipeline.graph_stages import _as_the_seeds_trained

    hp = {"lr": 0.01, "weight_decay_on": "first_layer"}
    finished = {0: {"hparams": {**hp, "weight_decay_on": "all"}}, 1: {"hparams": hp}}
    with pytest.raises(AutoAttendError, match="baselines/gcn: its seeds trained with different settings"):
        _as_the_seeds_trained(tmp_path / "baselines" / "gcn", hp, finished, ())
    assert _as_the_seeds_trained(tmp_path / "baselines" / "gcn", hp, {1: {"hparams": hp}}, ()) == hp

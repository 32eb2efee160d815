"""The bugs a review of session 45's changes (d438ac1..2e77998) found, each a test that failed on the code
as reviewed and passes since its mend."""

from __future__ import annotations

import pytest

from tests.helpers import cli, write_tiny_planetoid


@pytest.mark.parametrize("name", ["a/b", ".."])
def test_a_task_name_that_cannot_name_a_folder_makes_no_folder_before_it_is_refused(tmp_path, name):
    out = tmp_path / "work" / "out"
    out.mkdir(parents=True)
    """``task.name`` is part of the run folder's path, which Hydra makes before the config is checked: one that
    cannot name a folder is refused before (``a/b`` left nested folders, ``..`` one beside the output folder)."""
    proc = cli("src.search", "+task=sst2", "budget=smoke", "hardware=cpu", f"task.name={name}",
               data_dir=tmp_path / "data", tmp=tmp_path / "work")
    assert (proc.returncode, proc.stderr) == (2, "error: task.name: expected a name for the task's folders, not empty "
                                                 f"and without / (e.g. task.name=reviews), got {name!r}\n")
    made = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_dir())
    assert made == ["work", "work/out"], made  # nothing under out/, nothing beside it


def test_an_empty_output_variable_is_refused_only_where_the_command_names_no_output_folder():
    """An empty ``AUTOATTEND_OUTPUT_DIR=`` is refused only where the command does not name the output folder;
    ``hydra.sweep.subdir=`` (every job in one folder) and a ``task.name`` read as a number are refused too."""
    from src.pipeline.checks import check_config
    from src.pipeline.run import unfit_folder_setting
    from src.utils.errors import AutoAttendError
    from tests.conftest import compose_config

    assert unfit_folder_setting(["+task=sst2", "paths.output_dir=/tmp/out"], {"AUTOATTEND_OUTPUT_DIR": ""}) is None
    assert unfit_folder_setting(["+task=sst2"], {"AUTOATTEND_OUTPUT_DIR": " "}).startswith("AUTOATTEND_OUTPUT_DIR is")
    assert unfit_folder_setting(["-m", "seed=1,2", "hydra.sweep.subdir="], {}) == (
        "hydra.sweep.subdir: expected a folder, got an empty value (an unset shell variable?)")
    with pytest.raises(AutoAttendError, match=r"^task.name=2024: read as a number; quote it to name the task: "
                                              r"task.name='2024'$"):
        check_config(compose_config("search", ["+task=csv", "task.path=/x", "task.num_classes=2", "task.name=2024"]),
                     "search")


def test_src_retrain_with_an_hpo_over_the_last_readout_is_refused_before_training(tmp_path):
    data = write_tiny_planetoid(tmp_path / "data")
    arch = tmp_path / "identity_last.yaml"
    arch.write_text("arch:\n  layers:\n"
                    "    - {kind: add, q_src: 0, q_op: gcn, k_src: 0, k_op: zero}\n"
                    "    - {kind: add, q_src: 1, q_op: identity, k_src: 1, k_op: zero}\n")
    run_dir = tmp_path / "run"
    proc = cli("src.retrain", "+task=cora", "budget=smoke", "hardware=cpu", f"arch={arch}", "graph.hpo.trials=2",
               "+graph.hpo.space.readout=[last]", "graph.retrain.seeds=1", data_dir=data, tmp=tmp_path,
               run_dir=run_dir)
    assert (proc.returncode, proc.stderr.strip().splitlines()[-1]) == (2, (
        f"error: arch={arch}: layer 1 q is identity, which cannot map to the classes under readout 'last' (the last "
        "layer maps to them), which graph.hpo.space.readout tries; leave last out of it")), proc.stderr[-2000:]
    assert not (run_dir / "retrain").exists()  # refused before any trial (hpo.json was written, then the stop)


def test_a_search_group_given_to_src_bench_is_not_said_to_be_src_retrains(tmp_path):
    proc = cli("src.bench", "strategy=random", data_dir=tmp_path / "data", tmp=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == ("error: strategy=random: a setting of the search (src.search), "
                                                    "which src.bench does not read (its settings: python -m src.bench "
                                                    "--help)"), proc.stderr[-2000:]

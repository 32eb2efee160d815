"""Review of the changes d438ac1..2e77998 (session 45): its findings as strict xfails, each failing on
the code as reviewed and passing once the finding is fixed (/tmp/rev45_report.md has the details)."""

from __future__ import annotations

import pytest

from tests.helpers import cli, write_tiny_planetoid


@pytest.mark.xfail(strict=True, reason="task.name is checked after Hydra made the run folder from it: task.name=a/b "
                                       "leaves nested folders under the output folder, task.name=.. a folder beside it")
@pytest.mark.parametrize("name", ["a/b", ".."])
def test_a_task_name_that_cannot_name_a_folder_makes_no_folder_before_it_is_refused(tmp_path, name):
    out = tmp_path / "work" / "out"
    out.mkdir(parents=True)
    proc = cli("src.search", "+task=sst2", "budget=smoke", "hardware=cpu", f"task.name={name}",
               data_dir=tmp_path / "data", tmp=tmp_path / "work")
    assert proc.returncode == 2 and "task.name" in proc.stderr, proc.stderr[-2000:]
    made = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_dir())
    assert made == ["work", "work/out"], made  # nothing under out/, nothing beside it


@pytest.mark.xfail(strict=True, reason="AUTOATTEND_OUTPUT_DIR= is refused ('the runs would go under /') even where "
                                       "the command names the output folder itself, paths.output_dir=<folder>")
def test_an_empty_output_variable_is_no_matter_where_the_command_names_the_output_folder():
    from src.pipeline.run import empty_folder_setting

    assert empty_folder_setting(["+task=sst2", "paths.output_dir=/tmp/somewhere"], {"AUTOATTEND_OUTPUT_DIR": ""}) is None


@pytest.mark.xfail(strict=True, reason="src.retrain of a graph architecture whose last layer is identity, with the HPO "
                                       "trying readout last, trains HPO trial 0 and then stops in the HPO stage "
                                       "(a37fa5e mended only the search's space)")
def test_src_retrain_with_an_hpo_over_the_last_readout_is_refused_before_training_or_trains(tmp_path):
    data = write_tiny_planetoid(tmp_path / "data")
    arch = tmp_path / "identity_last.yaml"
    arch.write_text("arch:\n  layers:\n"
                    "    - {kind: add, q_src: 0, q_op: gcn, k_src: 0, k_op: zero}\n"
                    "    - {kind: add, q_src: 1, q_op: identity, k_src: 1, k_op: zero}\n")
    run_dir = tmp_path / "run"
    proc = cli("src.retrain", "+task=cora", "budget=smoke", "hardware=cpu", f"arch={arch}", "graph.hpo.trials=2",
               "+graph.hpo.space.readout=[last]", "graph.retrain.seeds=1", data_dir=data, tmp=tmp_path,
               run_dir=run_dir)
    trained_then_stopped = proc.returncode != 0 and (run_dir / "retrain" / "hpo.json").exists()
    assert not trained_then_stopped, proc.stderr[-2000:]


@pytest.mark.xfail(strict=True, reason="src.bench strategy=random is told it is a setting 'which src.retrain does not "
                                       "read' (the line of 3d556f3 names src.retrain for every entry point)")
def test_a_search_group_given_to_src_bench_is_not_said_to_be_src_retrains(tmp_path):
    proc = cli("src.bench", "strategy=random", data_dir=tmp_path / "data", tmp=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "src.retrain" not in proc.stderr.strip().splitlines()[-1], proc.stderr[-2000:]

"""The bugs a newcomer walk of the features since a87a214 found (2026-12-06, at d438ac1), and those of the
mutation round over their mends, each a test that failed on the code before its mend. Fast: in-process or a
command refused before torch loads, on data the tests write in tmp_path."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from src.pipeline.checks import check_bench_config, check_config
from src.pipeline.run_settings import check_run_settings, run_settings
from src.utils import lock
from src.utils.errors import AutoAttendError
from tests.conftest import compose_config
from tests.helpers import cli


NODES = 12


def _small_graph_file(path, x: np.ndarray, edge_index: np.ndarray):
    """A graph file of :data:`NODES` nodes, two classes, four nodes in each split: ``path``."""
    masks = {name: np.zeros(NODES, bool) for name in ("train_mask", "val_mask", "test_mask")}
    for i, name in enumerate(masks):
        masks[name][4 * i:4 * (i + 1)] = True
    np.savez(path, x=x, edge_index=edge_index, y=np.arange(NODES) % 2, **masks)
    return path


def test_an_hpo_over_the_last_readout_keeps_identity_out_of_the_searched_last_layer():
    """``+graph.hpo.space.readout=[linear,last] graph.hpo.trials=3``: some trials train the winner
    reading out with its last layer, which an identity op there cannot do, so the search leaves identity
    out of the last layer as for ``graph.retrain.readout=last`` (the run stopped in the HPO stage, after
    the supernet and the search); only where the HPO runs; refused where no other op is left."""
    from src.pipeline.config import search_space

    cfg = compose_config("search", ["+task=cora", "graph.hpo.trials=3", "+graph.hpo.space.readout=[linear,last]"])
    check_config(cfg, "search")
    assert "identity" in search_space(cfg).ops and "identity" not in search_space(cfg).last_layer_ops
    for no_hpo in ("graph.hpo.trials=1", "graph.retrain.seeds=0", "+graph.hpo.space.readout=[linear]"):
        cfg = compose_config("search", ["+task=cora", "graph.hpo.trials=3", "+graph.hpo.space.readout=[linear,last]",
                                        no_hpo])
        assert "identity" in search_space(cfg).last_layer_ops, no_hpo
    alone = compose_config("search", ["+task=cora", "graph.hpo.trials=3", "+graph.hpo.space.readout=[last]",
                                      "graph.space.ops=[identity]"])
    with pytest.raises(AutoAttendError, match=r"^graph.hpo.space.readout holding last: .*leave last out of "
                                              r"graph.hpo.space.readout$"):
        check_config(alone, "search")


def test_a_csv_run_resumes_with_hardware_progress_changed(tmp_path):
    base = ["+task=csv", "task.path=/data/corpus", "task.num_classes=3", "budget=smoke"]  # smoke: progress false
    check_run_settings(tmp_path, run_settings(compose_config("search", base), "search"))
    (tmp_path / "supernet").mkdir()
    (tmp_path / "supernet" / "last.ckpt").write_bytes(b"")  # a resume would reuse it
    # as `+task=sst2` accepts: hardware.progress is in MAY_CHANGE
    check_run_settings(tmp_path, run_settings(compose_config("search", base + ["hardware.progress=true"]), "search"))
    # a record written before (it holds task.datamodule.progress) resumes too, and other settings still stop it
    record = tmp_path / "run_settings.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), "task.datamodule.progress": False}))
    check_run_settings(tmp_path, run_settings(compose_config("search", base + ["hardware.progress=true"]), "search"))
    with pytest.raises(AutoAttendError, match="task.num_classes: 3 -> 4"):
        check_run_settings(tmp_path, run_settings(compose_config("search", base[:2] + ["task.num_classes=4",
                                                                                        "budget=smoke"]), "search"))


def test_ppi_with_planetoids_protocol_is_one_error_line_or_runs(tmp_path):
    """``+task=ppi task/protocol=planetoid`` is refused in one line (exit status 2) before any work: PPI's
    DataModule reads the protocol's batch size, which only PPI's protocol has (it ended in an
    InterpolationKeyError traceback from ``run_settings``, after ``check_config`` had passed it)."""
    proc = cli("src.search", "+task=ppi", "task/protocol=planetoid", "budget=smoke", "hardware=cpu",
               data_dir=tmp_path / "data", tmp=tmp_path, run_dir=tmp_path / "run", timeout=240)
    assert "Traceback" not in proc.stderr, proc.stderr[-1500:]
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
        "error: task/protocol: +task=ppi takes PPI's protocol (conf/task/protocol/ppi.yaml); choosing another is "
        "for +task=graph_file, whose default is planetoid"), proc.stderr[-1500:]
    check_config(compose_config("search", ["+task=ppi", "task/protocol=ppi"]), "search")
    check_config(compose_config("search", ["+task=graph_file", "task.path=/x.pt", "task/protocol=planetoid"]), "search")


def test_a_graph_file_with_no_feature_columns_is_refused_naming_x(tmp_path):
    """A graph file whose ``x`` has no column (N, 0) is refused naming ``x`` when read (it passed the reader,
    and the run ended in a traceback from the dropout kernel, leaving a ``supernet/`` folder)."""
    from src.data.graph_file import GraphFileDataModule

    path = _small_graph_file(tmp_path / "g.npz", np.zeros((NODES, 0), np.float32), np.array([[0, 1], [1, 2]]))
    with pytest.raises(AutoAttendError, match=r"g.npz: 'x' must be \(N, F\) real features, F >= 1, got "
                                              r"torch.float32 of shape \(12, 0\)$"):
        GraphFileDataModule(path=str(path)).setup()


@pytest.mark.parametrize("override, said", [
    ("space.num_layers=12", "space.num_layers=12: src.bench measures the paper's space"),
    ("space.ops=[conv1,gru]", "space.ops=[conv1,gru]: src.bench measures the paper's space"),
    ("space.priors=false", "space.priors=false: src.bench measures the paper's space"),
    ("space.kinds=[add]", "space.kinds=[add]: src.bench measures the paper's space"),
    ("hardware.precision=bf16-mixed", "hardware.precision=bf16-mixed: src.bench measures in float32")])
def test_src_bench_refuses_settings_it_never_reads(override, said):
    """The bench composes the text space and the hardware group, but measures the paper's space at
    ``bench.num_layers`` layers in float32: other values were accepted, not applied and not recorded
    (it measured 24 layers with ``space.num_layers=0``); now refused in one line. What it reads is taken."""
    with pytest.raises(AutoAttendError, match=f"^{re.escape(said)}"):
        check_bench_config(compose_config("bench", [override]))
    for taken in ("space.sharing=none", "hardware.precision=32-true", "hardware.precision=32",
                  "hardware.matmul_precision=high", "space=text", "~space.kinds", "~hardware.precision"):
        check_bench_config(compose_config("bench", [taken]))


def test_a_pin_equal_under_pep_440_is_not_a_difference(tmp_path, monkeypatch):
    """A pin equal to the installed version under PEP 440 (``2.1.0.0`` for ``2.1.0``), which ``read_lock``
    accepts as an exact version and pip installs, is no difference (compared as text, it was one)."""
    monkeypatch.setattr(lock, "installed_metadata", lambda name: (name, "2.1.0", []))
    path = tmp_path / "lock.txt"
    path.write_text("numpy==2.1.0.0\n")
    assert lock.differences(path) == {}
    other = tmp_path / "other.txt"
    other.write_text("numpy==2.1.1\n")
    assert lock.differences(other) == {"numpy": {"installed": "2.1.0", "locked": "2.1.1"}}


def test_lock_out_given_a_folder_says_so_without_naming_a_temporary_file(tmp_path, monkeypatch, capsys):
    """``--out <a folder>`` is refused naming the folder (the error was the rename of a hidden temporary
    file the user never gave)."""
    req = tmp_path / "req.txt"
    req.write_text("app\n")
    monkeypatch.setattr(lock, "installed_metadata", lambda name: (name, "1.0", []))
    folder = tmp_path / "locks"
    folder.mkdir()
    assert lock.main(["--requirements", str(req), "--out", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: --out {folder}: a folder; give the lock file's path (e.g. {folder / 'cpu-lock.txt'})\n"
    assert list(folder.iterdir()) == []


def test_predict_graph_missing_file_names_the_option_not_task_path(tmp_path):
    from src.data.graph_file import read_graph_to_classify

    """``src.predict --graph`` (or ``predict_nodes(graph=...)``) with a missing file names that option, not
    ``task.path``, which the user did not give."""
    with pytest.raises(AutoAttendError) as err:
        read_graph_to_classify(tmp_path / "new.npz")
    assert str(err.value) == f"{tmp_path / 'new.npz'}: no such file (the graph to classify, --graph: the graph's " \
                             ".npz or .pt file)"


def test_evaluate_of_a_moved_graph_file_hints_task_path_not_paths_data_dir(tmp_path):
    """``src.evaluate`` on a ``graph_file`` run whose file has moved names ``task.path`` only (it added
    "paths.data_dir=<the run's data folder> if it is still there", a setting such a task never reads)."""
    from omegaconf import OmegaConf, open_dict

    from src.evaluate import evaluate

    data_dir, run_dir, gone = tmp_path / "data", tmp_path / "run", tmp_path / "gone.npz"
    data_dir.mkdir()
    cfg = compose_config("search", ["+task=graph_file", f"task.path={gone}", "budget=smoke", "hardware=cpu"])
    with open_dict(cfg):
        cfg.paths.data_dir, cfg.paths.cache_dir = str(data_dir), str(tmp_path / "cache")
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    (run_dir / "invocations.json").write_text(json.dumps({"invocations": [
        {"argv": ["+task=graph_file", f"task.path={gone}"], "device": "cpu", "threads": 1, "kernels": "fused",
         "data_dir": str(data_dir), "task_path": str(gone)}]}))
    (run_dir / "retrain" / "seed_0").mkdir(parents=True)
    (run_dir / "retrain" / "seed_0" / "model.pt").write_bytes(b"")  # never read: the data come first
    with pytest.raises(AutoAttendError) as err:
        evaluate(run_dir)
    assert str(err.value) == f"{gone}: no such file (task.path: the graph's .npz or .pt file)"


def test_a_graph_file_resume_on_other_data_is_told_task_path(tmp_path):
    """A ``graph_file`` run resumed on another file is told to point ``task.path`` at the run's graph file
    (it was told ``paths.data_dir``, which such a task never reads)."""
    from src.pipeline.run_settings import DATA_FILE, SETTINGS_FILE

    n = NODES
    graph = _small_graph_file(tmp_path / "g.npz", np.random.default_rng(0).random((n, 5), dtype=np.float32),
                              np.array([[0, 1, 2], [1, 2, 3]]))
    args = ["+task=graph_file", f"task.path={graph}", "budget=smoke", "hardware=cpu"]
    run_dir = tmp_path / "run"
    (run_dir / "supernet").mkdir(parents=True)
    (run_dir / "supernet" / "last.ckpt").write_bytes(b"")  # a result: the data record is checked
    (run_dir / SETTINGS_FILE).write_text(json.dumps(run_settings(compose_config("search", args), "search")))
    (run_dir / DATA_FILE).write_text(json.dumps({"classes": 2, "features": 5, "train_graphs": 0, "nodes": [n, n],
                                                  "edges": [3, 3], "labels_sha256": "0" * 16}))
    proc = cli("src.search", *args, data_dir=tmp_path / "data", tmp=tmp_path, run_dir=run_dir, timeout=240)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and last.startswith(f"error: run dir {run_dir} was started on other data"), \
        proc.stderr[-2000:]
    assert last.endswith("resuming would mix results of the two: point task.path at the run's graph file, or give a "
                         "new hydra.run.dir"), last


def test_a_graph_file_retrain_resumed_on_other_data_is_told_task_path(tmp_path):
    """As for src.search: ``src.retrain`` of a ``graph_file`` run resumed on another file is told to point
    ``task.path`` at the run's graph file, not ``paths.data_dir``."""
    from src.pipeline.run_settings import DATA_FILE

    n = NODES
    graph = _small_graph_file(tmp_path / "g.npz", np.random.default_rng(0).random((n, 5), dtype=np.float32),
                              np.array([[0, 1, 2], [1, 2, 3]]))
    run_dir = tmp_path / "run"
    (run_dir / "retrain").mkdir(parents=True)
    (run_dir / "retrain" / "seed_0.json").write_text("{}")  # a result, no settings record: adopted, data checked
    (run_dir / DATA_FILE).write_text(json.dumps({"classes": 2, "features": 5, "train_graphs": 0, "nodes": [n, n],
                                                  "edges": [3, 3], "labels_sha256": "0" * 16}))
    proc = cli("src.retrain", "+task=graph_file", f"task.path={graph}", "arch=gcn", "budget=smoke", "hardware=cpu",
               data_dir=tmp_path / "data", tmp=tmp_path, run_dir=run_dir, timeout=240)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and last.startswith(f"error: run dir {run_dir} was started on other data"), \
        proc.stderr[-2000:]
    assert last.endswith("resuming would mix results of the two: point task.path at the run's graph file, or give a "
                         "new hydra.run.dir"), last


def _graph_file_run(tmp_path) -> tuple:
    """A graph_file run (relative ``task.path``, started in another folder) keeping one GCN of 3 classes
    over 5 features: -> (its model.pt, a numpy generator)."""
    from src.models.graph import GraphNet
    from src.models.saved import graph_child_spec, save_child, weights_of
    from src.pipeline.config import ARCH_DIR
    from src.space import Architecture

    arch = Architecture.load(ARCH_DIR / "gcn.yaml")
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text(
        "task: {name: graph_file, family: graph, path: g.npz, datamodule: {_target_: "
        "src.data.graph_file.GraphFileDataModule, path: g.npz}}\npaths: {data_dir: d, cache_dir: c}\nseed: 0\n")
    started_in = tmp_path / "started_in"
    started_in.mkdir()
    rng = np.random.default_rng(0)
    np.savez(started_in / "g.npz", x=rng.random((7, 5)).astype(np.float32), edge_index=np.array([[0, 1], [1, 2]]))
    (run / "invocations.json").write_text(json.dumps({"invocations": [
        {"argv": ["+task=graph_file", "task.path=g.npz"], "task_path": str(started_in / "g.npz")}]}))
    path = run / "retrain" / "seed_0" / "model.pt"
    save_child(path, weights_of(GraphNet.child(5, 3, arch, hidden=4, heads=1)),
               graph_child_spec(arch, 5, 3, hidden=4, heads=1), {"step": 1, "val_acc": 0.5, "test_acc": 0.5})
    return path, rng


def test_predict_graph_says_nothing_of_reading_the_runs_own_file(tmp_path, capsys):
    """``--graph FILE`` on a run whose ``task.path`` is relative prints no "note: reading the graph file from
    <the run's file>": with ``--graph`` the run's data are not read (README)."""
    import torch

    from src.predict import predict_nodes

    path, rng = _graph_file_run(tmp_path)
    np.savez(tmp_path / "new.npz", x=rng.random((4, 5)).astype(np.float32), edge_index=np.array([[0], [1]]))
    with torch.inference_mode():
        _, rows = predict_nodes(path, graph=tmp_path / "new.npz")
    assert len(rows) == 4
    assert "reading the graph file" not in capsys.readouterr().err


@pytest.mark.parametrize("y, said", [
    (np.array([0, 2, 7, -1]), "'y' holds class 7; the run's models have 3 classes (0 to 2; -1 for an unlabelled node)"),
    (np.ones((4, 3), np.float32), "'y' holds (N, C) label sets; the run's models give class ids, (N,)"),
    (None, None), (np.array([0, 2, -1, 1]), None)])
def test_predict_graph_refuses_true_labels_of_another_kind_than_the_runs(tmp_path, y, said):
    """The ``y`` of a ``--graph`` file is shown beside the predictions: class ids beyond the run's classes,
    or label sets given to a single-label run, were printed without a word; refused naming the file."""
    import torch

    from src.predict import predict_nodes

    path, rng = _graph_file_run(tmp_path)
    new = tmp_path / "new.npz"
    np.savez(new, x=rng.random((4, 5)).astype(np.float32), edge_index=np.array([[0], [1]]),
             **({} if y is None else {"y": y}))
    with torch.inference_mode():
        if said is None:
            assert len(predict_nodes(path, graph=new)[1]) == 4
            return
        with pytest.raises(AutoAttendError) as err:
            predict_nodes(path, graph=new)
    assert str(err.value) == f"{new}: {said}"


def test_a_pyg_data_saved_whole_is_told_to_save_its_dict(tmp_path):
    """A PyG ``Data`` saved whole (``torch.save(data, path)``) is told the README's fix, ``data.to_dict()``
    (it was torch's advice on trusting pickles, cut mid-way, with terminal escape codes)."""
    import torch
    from torch_geometric.data import Data

    from src.data.graph_file import GraphFileDataModule

    path = tmp_path / "g.pt"
    torch.save(Data(x=torch.rand(4, 3), edge_index=torch.tensor([[0, 1], [1, 2]]), y=torch.tensor([0, 1, 0, 1])), path)
    with pytest.raises(AutoAttendError) as err:
        GraphFileDataModule(path=str(path)).setup()
    assert str(err.value) == (f"{path}: holds objects other than tensors, which are not read (a PyG Data saved "
                              "whole?); save a dict of tensors: torch.save(data.to_dict(), path)")


@pytest.mark.parametrize("name, shown", [("''", "''"), ("my/corpus", "'my/corpus'"), ("..", "'..'"), ("' '", "' '")])
def test_a_task_name_that_cannot_name_a_folder_is_refused(name, shown):
    """``task.name`` names the output folder and the data cache: an empty one left the task out of both
    (``outputs/search/<time>/``), one with ``/`` nested folders. Refused in one line; a plain name is taken."""
    base = ["+task=csv", "task.path=/data/corpus", "task.num_classes=3"]
    with pytest.raises(AutoAttendError, match=rf"^task.name: expected a name for the task's folders, not empty and "
                                              rf"without / \(e.g. task.name=reviews\), got {re.escape(shown)}$"):
        check_config(compose_config("search", [*base, f"task.name={name}"]), "search")
    check_config(compose_config("search", [*base, "task.name=reviews-2026_v1"]), "search")


"""Config value checks and the run-settings record: bad values fail at once, naming the key."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from src.choices import GRAPH_ACTIVATIONS, PRECISIONS
from src.pipeline.checks import check_config
from src.pipeline.config import read_arch
from src.pipeline.run_settings import SETTINGS_FILE, check_run_settings, run_settings
from src.space import Architecture
from src.utils.errors import AutoAttendError
from tests.conftest import compose_config
from tests.helpers import ROOT, cli


@pytest.mark.parametrize("name", ["search", "retrain"])
@pytest.mark.parametrize("task, budget", [("sst2", "paper"), ("sst5", "smoke"), ("cora", "paper"), ("ppi", "quick"),
                                          ("agnews", "quick")])
def test_the_shipped_configs_pass(name, task, budget):
    check_config(compose_config(name, [f"+task={task}", f"budget={budget}"]), name)


@pytest.mark.parametrize("override, needle", [
    ("space.sharing=bogus", "space.sharing: expected one of full, source, target, none, got 'bogus'"),
    ("space.num_layers=0", "space.num_layers: expected an integer >= 1, got 0"),
    ("space.ops=[conv1,bogus]", "space.ops: expected a non-empty list of distinct values from zero, identity"),
    ("graph.space.kinds=[add,mul]", "graph.space.kinds: expected a non-empty list of distinct values from add, "
                                    "attn (unknown: mul)"),
    ("graph.space.ops=[gcn,gcn]", "graph.space.ops: expected a non-empty list of distinct"),
    ("retrain.seeds=-1", "retrain.seeds: expected an integer >= 0, got -1"),
    ("graph.retrain.seeds=-1", "graph.retrain.seeds: expected an integer >= 0, got -1"),
    ("supernet.lr=-0.001", "supernet.lr: expected a number in (0, inf), got -0.001"),
    ("graph.supernet.lr=0", "graph.supernet.lr: expected a number in (0, inf), got 0"),
    ("supernet.dim=15", "supernet.dim=15 is not divisible by supernet.heads=8"),
    ("supernet.archs_per_step=0", "supernet.archs_per_step: expected an integer >= 1, got 0"),
    ("space.priors=maybe", "space.priors: expected true or false, got 'maybe'"),
    # an IndexError traceback (later a ValueError from the space) instead
    ("space.ops=[zero]", "space.ops=['zero']: under the design priors (space.priors=true) Q, K and V take an op "
                         "other than zero"),
    ("data.freeze_embeddings=no", "data.freeze_embeddings: expected true or false, got 'no'"),
    ("hardware.progress=nope", "hardware.progress: expected true or false, got 'nope'"),
    ("hardware.kernels=fast", "hardware.kernels: expected one of auto, fused, torch, got 'fast'"),
    ("supernet.max_steps=0", "supernet.max_steps: expected an integer >= 1 or -1, got 0"),
    ("supernet.checkpoint_every_min=-1", "supernet.checkpoint_every_min: expected a number in [0, inf) or null, got -1"),
    ("retrain.checkpoint_every_min=soon", "retrain.checkpoint_every_min: expected a number in [0, inf) or null, got 'soon'"),
    ("strategy.population=0", "strategy.population: expected an integer >= 1, got 0"),
    ("strategy.topk=0", "strategy.topk: expected an integer >= 1, got 0"),
    ("strategy.score_bucket_size=0", "strategy.score_bucket_size: expected an integer >= 1 or null, got 0"),
    ("strategy.score_workers=two", "strategy.score_workers: expected auto or an integer >= 1, got 'two'"),
    ("supernet.arch_workers=0", "supernet.arch_workers: expected auto or an integer >= 1, got 0"),
    ("strategy.mutation_rate=1.5", "strategy.mutation_rate: expected a number in (0, 1], got 1.5"),
    ("strategy.mutation_rate=0", "strategy.mutation_rate: expected a number in (0, 1], got 0"),
    ("graph.supernet.steps=0", "graph.supernet.steps: expected an integer >= 1, got 0"),
    ("hardware.threads=-2", "hardware.threads: expected an integer >= 1 or 0 or null, got -2"),
    # the OpenMP runtime crashed (SIGSEGV, exit 139) at the supernet's first step
    ("hardware.threads=9999", "hardware.threads: expected an integer from 1 to 1024 or 0 or null, got 9999"),
    ("graph.threads=5000", "graph.threads: expected an integer from 1 to 1024 or null, got 5000"),
    ("hardware.precision=bogus", "hardware.precision: expected one of 32-true, 32, 64-true"),
    ("seed=abc", "seed: expected an integer >= 0, got 'abc'"),
    ("data.max_len=0", "data.max_len: expected an integer >= 1, got 0"),
    ("data.train_level=bogus", "data.train_level: expected one of phrase, sentence, got 'bogus'"),
    ("data.embedding_source=bogus", "data.embedding_source: expected one of auto, kumo, random, got 'bogus'"),
    ("retrain.dropout=1.0", "retrain.dropout: expected a number in [0, 1), got 1.0"),
    ("supernet.epochs=2.5", "supernet.epochs: expected an integer >= 1, got 2.5"),
    ("supernet.optimizer_state=fp16", "supernet.optimizer_state: expected one of float32, bfloat16, got 'fp16'"),
    ("supernet.optimizer_offload=1", "supernet.optimizer_offload: expected true or false, got 1"),
    ("supernet.recompute=yes", "supernet.recompute: expected true or false, got 'yes'"),
    ("retrain.recompute=0", "retrain.recompute: expected true or false, got 0"),
    ("graph.supernet.act_at=sum", "graph.supernet.act_at: expected one of layer, op, got 'sum'"),
    ("graph.retrain.act_at=sum", "graph.retrain.act_at: expected one of layer, op, got 'sum'"),
    ("graph.supernet.attn_self_loops=no", "graph.supernet.attn_self_loops: expected true or false, got 'no'"),
    ("retrain.seeds=true", "retrain.seeds: expected an integer >= 0, got True"),
    ("retrain.max_steps=0", "retrain.max_steps: expected an integer >= 1 or -1, got 0"),
    ("graph.retrain.workers=0", "graph.retrain.workers: expected auto or an integer >= 1, got 0"),
    ("graph.retrain.workers=1.5", "graph.retrain.workers: expected auto or an integer >= 1, got 1.5"),
    ("graph.hpo.space.lr=[0.01,-1]", "graph.hpo.space.lr[1]: expected a number in (0, inf), got -1"),
    ("graph.hpo.space.dropout=[1.0]", "graph.hpo.space.dropout[0]: expected a number in [0, 1), got 1.0"),
    ("graph.hpo.space.epochs=[]", "graph.hpo.space.epochs: expected a non-empty list of values, got []"),
    ("graph.hpo.space.epochs=300", "graph.hpo.space.epochs: expected a non-empty list of values, got 300"),
    ("+graph.hpo.space.lrate=[0.1]", "graph.hpo.space.lrate: not a setting of a graph child; expected some of hidden"),
    ("graph.baselines=gcn", "graph.baselines: expected a list of architecture names or files (e.g. [gcn, gat]) or "
                            "[], got 'gcn'"),
    ("hardware.devices=2", "hardware.devices: expected 1 (runs use one device; choose a GPU with "
                           "CUDA_VISIBLE_DEVICES), got 2"),
    ("hardware.devices=[0]", "hardware.devices: expected 1 (runs use one device"),
    ("hardware.devices=true", "hardware.devices: expected 1 (runs use one device"),
    ("supernet.limit_val_batches=-3", "supernet.limit_val_batches: expected a fraction in [0.0, 1.0] or a number "
                                      "of batches >= 0, got -3"),
    ("supernet.limit_val_batches=1.5", "supernet.limit_val_batches: expected a fraction in [0.0, 1.0]"),
    ("hardware.accelerator=mps", "hardware.accelerator: expected one of auto, cpu, gpu, cuda, got 'mps'"),
    ("hardware.precision=16-true", "hardware.precision: expected one of 32-true, 32, 64-true, 64, bf16-mixed, bf16, "
                                   "16-mixed, 16 (float32, float64 or a mixed precision), got '16-true'"),
    ("hardware.precision=transformer-engine", "hardware.precision: expected one of 32-true"),
    ("data.window=10 data.stride=20", "data.stride=20 is larger than data.window=10: sliding windows would skip tokens"),
    ("data.window=64", "data.window=64 is not below data.max_len=64: no text is longer than a window once cut to "
                       "max_len, so no window would slide"),
    ("data.window=100 data.max_len=40", "data.window=100 is not below data.max_len=40"),
    ("supernet.lr=inf", "supernet.lr: expected a number in (0, inf), got inf"),
    ("graph.retrain.weight_decay=nan", "graph.retrain.weight_decay: expected a number in [0, inf), got nan"),
    ("graph.supernet.heads=3", "graph.supernet.hidden=64 is not divisible by graph.supernet.heads=3"),
    ("graph.retrain.hidden=20", "graph.retrain.hidden=20 is not divisible by graph.retrain.heads=8"),
    ("paths.data_dir=", "paths.data_dir: expected a folder (an empty AUTOATTEND_DATA_DIR= gives this: unset it or "
                        "name a folder), got ''"),
    # the empty value is refused for the cache too, without the data folder's hint
    ("paths.cache_dir=", "paths.cache_dir: expected a folder, got ''"),
    # a boolean is no number, nor a batch count (True == 1)
    ("supernet.lr=true", "supernet.lr: expected a number in (0, inf), got True"),
    ("supernet.limit_val_batches=true", "supernet.limit_val_batches: expected a fraction in [0.0, 1.0] or a number of "
                                        "batches >= 0, got True"),
    ("graph.space.kinds=[]", "graph.space.kinds: expected a non-empty list of distinct values from add, attn, got []"),
    ("hardware.progress_every_s=0", "hardware.progress_every_s: expected a number in (0.0, inf) or null, got 0"),
    ("hardware.num_workers=-1", "hardware.num_workers: expected an integer >= 0, got -1"),
    ("graph.rerank.seeds=0", "graph.rerank.seeds: expected an integer >= 1, got 0"),
    ("data.seed=-1", "data.seed: expected an integer >= 0 or null, got -1"),
    ("data.seed=4294967296", "data.seed: expected an integer from 0 to 2147483647 or null, got 4294967296"),
    ("graph.baselines=[gcn,'']", "graph.baselines: expected a list of architecture names or files (e.g. [gcn, gat]) "
                                 "or [], got ['gcn', '']"),
])
def test_a_bad_value_names_its_key_and_what_was_expected(override, needle):
    cfg = compose_config("search", ["+task=sst2", *override.split()])
    with pytest.raises(AutoAttendError) as err:
        check_config(cfg, "search")
    assert needle in str(err.value)


@pytest.mark.parametrize("value", ["auto", None, 1, 3, "2", " 2", 0, -1, 1.5, True, "many", "2.0", "", "²"])
def test_the_config_check_and_the_runtime_agree_on_worker_counts(value):
    """A worker count the config check passes is one the run accepts, and the reverse: the check
    runs before torch is imported, the run's rule where the count is used (src.utils.parallel)."""
    from omegaconf import OmegaConf

    from src.pipeline.checks import check_workers
    from src.utils.parallel import resolve_process_workers, resolve_workers

    valid = not isinstance(value, bool) and value in ("auto", None, 1, 3, "2", " 2")  # True == 1
    try:
        check_workers(OmegaConf.create({"strategy": {"score_workers": value}}), "strategy.score_workers")
        checked = True
    except AutoAttendError as err:
        assert "strategy.score_workers: expected auto or an integer >= 1" in str(err)
        checked = False
    for resolve in (resolve_workers, resolve_process_workers):
        for device in ("cpu", "cuda"):
            try:
                count = resolve(value, device, "strategy.score_workers")
            except ValueError as err:
                assert "strategy.score_workers must be 'auto' or an integer >= 1" in str(err)
                count = None
            assert (count is not None) == checked == valid, (resolve.__name__, device)
            if valid and device == "cpu" and value not in ("auto", None):
                assert count == int(value)


@pytest.mark.parametrize("setting, cause", [("hardware=gpu", "not with hardware.accelerator=gpu (use"),
                                            ("hardware.accelerator=cuda", "not with hardware.accelerator=cuda (use"),
                                            ("hardware.precision=bf16-mixed", "not with hardware.precision=bf16-mixed (use"),
                                            ("hardware.precision=16-mixed", "not with hardware.precision=16-mixed (use")])
def test_fused_kernels_are_refused_off_the_cpu_and_below_float32(setting, cause):
    cfg = compose_config("search", ["+task=sst2", setting, "hardware.kernels=fused"])
    with pytest.raises(AutoAttendError) as err:
        check_config(cfg, "search")
    assert str(err.value).startswith("hardware.kernels=fused: the fused kernels run float32/float64 on the CPU, ")
    assert cause in str(err.value)  # only what stands in the way is named
    check_config(compose_config("search", ["+task=sst2", setting, "hardware.kernels=auto"]), "search")
    check_config(compose_config("search", ["+task=sst2", "hardware.precision=64-true", "hardware.kernels=fused"]),
                 "search")


@pytest.mark.parametrize("overrides, needle", [
    (["+task=csv", "task.num_classes=1", "task.path=/x"], "task.num_classes: expected an integer >= 2, got 1"),
    (["+task=csv", "task.num_classes=3"], "task csv: no data given; add task.path=<folder holding train.csv"),
    (["+task=agnews", "task.val_fraction=1"], "task.val_fraction: expected a number in (0, 1), got 1"),
    (["+task=yahoo", "task.max_vocab=2"], "task.max_vocab: expected an integer >= 3 or null, got 2"),
    (["+task=dbpedia", "task.text_fields=0"], "task.text_fields: expected an integer >= 1 or null, got 0"),
    (["+task=yelp2", "task.header=maybe"], "task.header: expected true or false, got 'maybe'"),
    (["+task=sst5", "task.label_names=[bad,good]"], "task.label_names has 2 names and task.num_classes is 5: one "
                                                     "name per class, in label order (got ['bad', 'good'])"),
    (["+task=sst2", "task.num_classes=3"], "task.label_names has 2 names and task.num_classes is 3: one name per "
                                           "class, in label order (got ['negative', 'positive'])"),
    (["+task=csv", "task.num_classes=2", "task.path=/x", "task.label_names=[no,no]"], "task.label_names: expected "
                                                                                       "null or a list of 2 distinct"),
    (["+task=sst5", "task.label_names=[a,b,'',d,e]"], "task.label_names: expected null or a list of 5 distinct non-empty "
                                                      "names (one per class, in label order), got ['a', 'b', '', 'd', 'e']"),
    (["+task=agnews", "task.val_seed=-1"], "task.val_seed: expected an integer >= 0, got -1"),
])
def test_csv_tasks_are_checked_with_the_config(overrides, needle):
    """The CSV reader's settings fail with the other config values, before torch is imported
    (the presets pass: :func:`test_the_shipped_configs_pass`)."""
    with pytest.raises(AutoAttendError) as err:
        check_config(compose_config("search", overrides), "search")
    assert needle in str(err.value)


def test_a_planetoid_tasks_download_switch_is_true_or_false():
    """``task.datamodule.download`` is read with bool(): "maybe" would count as true."""
    with pytest.raises(AutoAttendError) as err:
        check_config(compose_config("search", ["+task=cora", "task.datamodule.download=maybe"]), "search")
    assert str(err.value) == "task.datamodule.download: expected true or false, got 'maybe'"
    check_config(compose_config("search", ["+task=cora", "task.datamodule.download=false"]), "search")


def test_arch_names_a_file_a_search_run_directory_or_a_built_in(tmp_path):
    from src.pipeline.config import ARCH_DIR, arch_file

    best = tmp_path / "run" / "search" / "best_arch.yaml"
    best.parent.mkdir(parents=True)
    best.write_text("layers: []\n")
    assert arch_file(str(best)) == best
    assert arch_file(str(tmp_path / "run")) == best and arch_file(str(tmp_path / "run" / "search")) == best
    assert arch_file("published_sst5") == ARCH_DIR / "published_sst5.yaml"
    (tmp_path / "unfinished" / "search").mkdir(parents=True)
    with pytest.raises(AutoAttendError, match=r"arch=.*unfinished: a directory without search/best_arch.yaml"):
        arch_file(str(tmp_path / "unfinished"))
    # a src.retrain run's directory: the message said only that it lacks search/best_arch.yaml
    results = tmp_path / "retrained" / "retrain" / "results.json"
    results.parent.mkdir(parents=True)
    results.write_text("{}")
    with pytest.raises(AutoAttendError) as err:
        arch_file(str(tmp_path / "retrained"))
    assert str(err.value) == (f"arch={tmp_path / 'retrained'}: a src.retrain run directory, without "
                              f"search/best_arch.yaml; the architecture it retrained, with its settings: "
                              f"arch={results}")
    with pytest.raises(AutoAttendError, match="no architecture given: add arch=<name or path> .built-ins: .*published_sst5"):
        arch_file(None)
    with pytest.raises(AutoAttendError, match="no architecture given: add arch=<name or path>"):
        arch_file("  ")  # blanks only (make retrain ARCH=" "): no name, not a file called "  "


def test_arch_may_name_a_file_under_the_home_folder(tmp_path, monkeypatch):
    """``arch=~/archs/mine.yaml``, as a shell leaves it inside a Hydra override, is the user's file."""
    from src.pipeline.config import arch_file

    monkeypatch.setenv("HOME", str(tmp_path))
    mine = tmp_path / "archs" / "mine.yaml"
    mine.parent.mkdir()
    mine.write_text("layers: []\n")
    assert arch_file("~/archs/mine.yaml") == mine


def test_retrain_needs_at_least_one_seed_and_search_may_skip_retraining():
    check_config(compose_config("search", ["+task=sst2", "retrain.seeds=0"]), "search")
    with pytest.raises(AutoAttendError, match="retrain.seeds: expected an integer >= 1, got 0"):
        check_config(compose_config("retrain", ["+task=sst2", "retrain.seeds=0"]), "retrain")
    check_config(compose_config("search", ["+task=cora", "graph.retrain.seeds=0"]), "search")
    with pytest.raises(AutoAttendError, match="graph.retrain.seeds: expected an integer >= 1, got 0"):
        check_config(compose_config("retrain", ["+task=cora", "arch=gcn", "graph.retrain.seeds=0"]), "retrain")


def test_run_settings_ignore_machine_keys_and_name_the_keys_that_differ(tmp_path):
    base = compose_config("search", ["+task=sst2", "budget=smoke"])
    # a run that stopped before any result (say, a missing package) may be re-run with other settings
    check_run_settings(tmp_path, run_settings(compose_config("search", ["+task=sst2", "seed=9"]), "search"))
    (tmp_path / "timing.json").write_text('{"seconds": {"data": 5.0}, "invocations": 1}')
    check_run_settings(tmp_path, run_settings(base, "search"))
    assert not (tmp_path / "timing.json").exists()  # the earlier invocation's time is not this run's
    recorded = json.loads((tmp_path / SETTINGS_FILE).read_text())
    (tmp_path / "supernet").mkdir()
    (tmp_path / "supernet" / "last.ckpt").write_bytes(b"")  # from here on, a resume would reuse it
    assert recorded["seed"] == 0 and recorded["entry"] == "search" and "paths.data_dir" not in recorded
    # where the data lives and how many threads run are not results
    other_machine = compose_config("search", ["+task=sst2", "budget=smoke", "hardware=cpu", "hardware.threads=3",
                                              "paths.data_dir=/elsewhere", "strategy.score_workers=1",
                                              "strategy.score_bucket_size=64"])
    (tmp_path / "timing.json").write_text('{"seconds": {"data": 5.0}, "invocations": 1}')
    check_run_settings(tmp_path, run_settings(other_machine, "search"))
    assert (tmp_path / "timing.json").exists()  # a resume keeps counting
    changed = compose_config("search", ["+task=sst2", "budget=smoke", "seed=3", "space.sharing=none"])
    with pytest.raises(AutoAttendError) as err:
        check_run_settings(tmp_path, run_settings(changed, "search"))
    message = str(err.value)
    assert "seed: 0 -> 3" in message and "space.sharing: full -> none" in message
    # the graph node follows space.sharing, but a text run never reads it: not named (it was, and a changed
    # default of a graph.* key stopped every text run's resume, the command line refusing to set it back)
    assert "graph.space.sharing" not in message
    with pytest.raises(AutoAttendError) as err:  # the entry alone is named, not every key it does not share
        check_run_settings(tmp_path, run_settings(base, "retrain"))
    assert str(err.value) == (f"run dir {tmp_path} holds a `python -m src.search` run, which src.retrain cannot "
                              "resume or add to: give a new hydra.run.dir")
    assert json.loads((tmp_path / SETTINGS_FILE).read_text()) == recorded  # the record is never overwritten


def test_a_resume_may_read_a_csv_corpus_from_another_place(tmp_path, caplog):
    """``+task=agnews`` resumed with ``paths.data_dir`` moved (README: paths may differ on resume),
    or ``+task=csv`` with the corpus folder moved, was refused as other settings (task.path, a
    place; data.json checks the files). The record keeps where the run started; other settings
    beside a moved path are still refused."""
    for task, first, moved in ((["+task=agnews"], ["paths.data_dir=/a"], ["paths.data_dir=/b"]),
                               (["+task=csv", "task.num_classes=3"], ["task.path=/a/mine"], ["task.path=/b/mine"])):
        run_dir = tmp_path / task[0][6:]
        run_dir.mkdir()
        check_run_settings(run_dir, run_settings(compose_config("search", [*task, "budget=smoke", *first]), "search"))
        recorded = json.loads((run_dir / SETTINGS_FILE).read_text())
        (run_dir / "supernet").mkdir()
        (run_dir / "supernet" / "last.ckpt").write_bytes(b"")
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert check_run_settings(run_dir, run_settings(compose_config("search", [*task, "budget=smoke", *moved]),
                                                            "search")) == []
        assert any("read from another place" in r.getMessage() and "task.path: /a/" in r.getMessage()
                   and "data.json checks" in r.getMessage() for r in caplog.records), caplog.text
        assert json.loads((run_dir / SETTINGS_FILE).read_text()) == recorded
        with pytest.raises(AutoAttendError, match=r"other settings.*seed: 0 -> 1") as err:
            check_run_settings(run_dir, run_settings(compose_config("search", [*task, "budget=smoke", *moved, "seed=1"]),
                                                     "search"))
        assert "task.path" not in str(err.value)


@pytest.mark.parametrize("left", ["retrain/seed_0/last.ckpt", "ranking/rank_3/seed_3000.json",
                                  "ranking/rank_3/seed_3000/last.ckpt", "ranking/rank_3/result.json"])
def test_a_stop_inside_a_retrain_seed_or_the_ranking_keeps_the_settings(left, tmp_path):
    """A src.retrain stopped inside its first seed leaves only that seed's checkpoint: a re-run with
    retrain.lr=0.002 was accepted, resumed the seed from it under the new rate and reported the
    two settings' seeds as one run (and dropped the stopped invocation's time)."""
    base = compose_config("retrain", ["+task=sst2", "budget=smoke", "arch=published_sst5"])
    check_run_settings(tmp_path, run_settings(base, "retrain"))
    (tmp_path / left).parent.mkdir(parents=True)
    (tmp_path / left).write_text("")
    (tmp_path / "timing.json").write_text('{"seconds": {"retrain": 5.0}, "invocations": 1}')
    changed = compose_config("retrain", ["+task=sst2", "budget=smoke", "arch=published_sst5", "retrain.lr=0.002"])
    with pytest.raises(AutoAttendError, match=r"retrain.lr: 0.0005 -> 0.002"):
        check_run_settings(tmp_path, run_settings(changed, "retrain"))
    assert check_run_settings(tmp_path, run_settings(base, "retrain")) == []
    assert (tmp_path / "timing.json").exists()  # the stopped invocation's time is kept


def test_a_run_started_on_cpu_resumes_with_hardware_gpu_which_names_the_same_precision(tmp_path):
    """hardware=auto and cpu leave hardware.matmul_precision unset, which is torch's "highest";
    hardware=gpu names "highest": the README says the accelerator may change on resume, but the
    re-run was refused with "hardware.matmul_precision: null -> highest". TF32 ("high") is another
    result, still refused; a record written before the values were made one is read the same way."""
    started = run_settings(compose_config("search", ["+task=sst2", "budget=smoke"]), "search")
    (tmp_path / SETTINGS_FILE).write_text(json.dumps({**started, "hardware.matmul_precision": None}))
    (tmp_path / "supernet").mkdir()
    (tmp_path / "supernet" / "last.ckpt").write_bytes(b"")
    gpu = compose_config("search", ["+task=sst2", "budget=smoke", "hardware=gpu"])
    assert check_run_settings(tmp_path, run_settings(gpu, "search")) == []
    tf32 = compose_config("search", ["+task=sst2", "budget=smoke", "hardware=gpu", "hardware.matmul_precision=high"])
    with pytest.raises(AutoAttendError, match=r"hardware.matmul_precision: highest -> high"):
        check_run_settings(tmp_path, run_settings(tf32, "search"))
    assert run_settings(compose_config("search", ["+task=sst2", "hardware=cpu"]), "search")[
        "hardware.matmul_precision"] == "highest"


def test_a_run_started_before_an_option_existed_resumes_with_it_and_keeps_its_value(tmp_path, caplog):
    """An option added to the code since the run started (absent from the record) does not stop
    the resume; the record gains its value, so a later re-run with another value is refused. An
    option removed since (absent from the settings) still stops it."""
    settings = run_settings(compose_config("search", ["+task=sst2", "budget=smoke"]), "search")
    old = {k: v for k, v in settings.items() if k != "supernet.lr"}
    check_run_settings(tmp_path, old)
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "state.json").write_text("{}")
    with caplog.at_level(logging.WARNING):
        assert check_run_settings(tmp_path, settings) == ["supernet.lr"]
    assert "started before these options existed" in caplog.text and "supernet.lr=0.0005" in caplog.text
    assert json.loads((tmp_path / SETTINGS_FILE).read_text()) == json.loads(json.dumps(settings))
    assert check_run_settings(tmp_path, settings) == []
    with pytest.raises(AutoAttendError, match=r"supernet.lr: 0.0005 -> 0.001"):
        check_run_settings(tmp_path, {**settings, "supernet.lr": 0.001})
    with pytest.raises(AutoAttendError, match=r"seed: 0 -> \(unset\)"):
        check_run_settings(tmp_path, {k: v for k, v in settings.items() if k != "seed"})


def test_the_data_record_is_written_kept_and_checked_only_against_results(tmp_path):
    """``data.json``: written by the first invocation, rewritten while the directory holds nothing
    to resume (a first attempt on other files left nothing to mix), compared once it does."""
    import types

    import torch

    from src.pipeline.common import data_facts
    from src.pipeline.run_settings import DATA_FILE, check_run_data

    def graph(nodes, edges, y=None):
        return {"x": torch.zeros(nodes, 3), "edge_index": torch.zeros(2, edges, dtype=torch.long),
                "y": torch.arange(nodes) % 4 if y is None else y}

    dm = types.SimpleNamespace(num_classes=4, num_features=3, graph=graph(10, 30), eval_batches=[graph(10, 30)],
                               train_graphs=[])
    facts = data_facts(dm, graph=True)
    digest = facts.pop("labels_sha256")
    assert facts == {"classes": 4, "features": 3, "train_graphs": 0, "nodes": [10, 10], "edges": [30, 30]}
    facts["labels_sha256"] = digest
    # the same sizes with one label changed are other data (src.evaluate blamed the kept models)
    edited = torch.arange(10) % 4
    edited[3] = 0
    relabelled = data_facts(types.SimpleNamespace(**{**vars(dm), "graph": graph(10, 30, edited)}), graph=True)
    assert relabelled["labels_sha256"] != digest and {**relabelled, "labels_sha256": digest} == facts
    check_run_data(tmp_path, facts)
    assert json.loads((tmp_path / DATA_FILE).read_text()) == facts
    other = {**facts, "features": 5}
    check_run_data(tmp_path, other)  # nothing to resume yet: the new data are recorded
    assert json.loads((tmp_path / DATA_FILE).read_text()) == other
    (tmp_path / "retrain").mkdir()
    (tmp_path / "retrain" / "seed_0.json").write_text("{}")
    check_run_data(tmp_path, other)  # the same data: resumes
    with pytest.raises(AutoAttendError) as err:
        check_run_data(tmp_path, facts)
    assert str(err.value) == (f"run dir {tmp_path} was started on other data (features: 5 -> 3), and resuming would "
                              "mix results of the two: point paths.data_dir (AUTOATTEND_DATA_DIR) at the run's data, "
                              "or give a new hydra.run.dir")
    assert json.loads((tmp_path / DATA_FILE).read_text()) == other
    with pytest.raises(AutoAttendError, match="point task.path at the run's corpus, or give"):  # a corpus of one's own
        check_run_data(tmp_path, facts, "csv")
    # a record from before a fact existed is not compared on it
    (tmp_path / DATA_FILE).write_text(json.dumps({k: v for k, v in facts.items() if k != "labels_sha256"}))
    check_run_data(tmp_path, relabelled)
    (tmp_path / DATA_FILE).write_text(json.dumps(facts))
    with pytest.raises(AutoAttendError, match=f"labels_sha256: {digest} -> {relabelled['labels_sha256']}"):
        check_run_data(tmp_path, relabelled)
    # src.evaluate on other data names where it read them: a +task=csv corpus is at task.path, not
    # under paths.data_dir (the line named paths.data_dir, which that task never read)
    from src.pipeline.common import check_data_of_run

    other_dm = types.SimpleNamespace(**{**vars(dm), "graph": graph(10, 30, edited)})
    for overrides, where in ((["+task=csv", "task.num_classes=4", "task.path=/b/mine"], "task.path=/b/mine"),
                             (["+task=agnews", "paths.data_dir=/b"], "paths.data_dir=/b")):
        with pytest.raises(AutoAttendError) as err:
            check_data_of_run(tmp_path, compose_config("search", overrides), other_dm, graph=True)
        assert str(err.value).startswith(f"{tmp_path}: the data at {where} are not the run's (labels_sha256: ")
        assert str(err.value).endswith(f"give the run's data folder ({where.split('=')[0]}=...)")


def test_an_unreadable_settings_record_is_named(tmp_path):
    (tmp_path / SETTINGS_FILE).write_bytes(b"\x00\xff not json")
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "state.json").write_text("{}")
    with pytest.raises(AutoAttendError, match=f"{SETTINGS_FILE} is unreadable"):
        check_run_settings(tmp_path, run_settings(compose_config("search", ["+task=sst2"]), "search"))


def test_architecture_file_errors_name_the_file(tmp_path):
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    with pytest.raises(AutoAttendError, match="binary.yaml: not a text file"):
        Architecture.load(binary)
    authors = tmp_path / "authors.yaml"
    authors.write_text("- [9, 0, 1, -1, 0]\n")  # the authors' rows: op index 9 does not exist
    with pytest.raises(AutoAttendError) as err:
        Architecture.load(authors)
    assert str(err.value).startswith(f"{authors}: invalid architecture (layer 0")


@pytest.mark.parametrize("hparams, needle", [
    ("{hidden: sixteen}", "hparams.hidden: expected an integer >= 1, got 'sixteen'"),
    ("{lr: -0.01}", "hparams.lr: expected a number in (0, inf), got -0.01"),
    ("{epochs: 0}", "hparams.epochs: expected an integer >= 1, got 0"),
    ("{dropout: 1.5}", "hparams.dropout: expected a number in [0, 1), got 1.5"),
    ("{act: swish}", "hparams.act: expected one of elu, identity, relu, tanh, got 'swish'"),
    ("[1, 2]", "hparams and task_hparams.<task> must be mappings"),
])
def test_graph_architecture_hparams_are_checked_naming_file_and_key(tmp_path, hparams, needle):
    path = tmp_path / "arch.yaml"
    path.write_text("arch:\n  layers:\n    - {kind: add, q_src: 0, q_op: gcn, k_src: 0, k_op: zero}\n"
                    f"hparams: {hparams}\n")
    with pytest.raises(AutoAttendError) as err:
        read_arch(str(path), "cora").hparams
    assert str(err.value).startswith(f"{path}: ") and needle in str(err.value)


@pytest.mark.parametrize("edit, line", [
    (("\nhparams:", "\nhparam:"), "unknown top-level key 'hparam'; expected some of layers, arch, hparams, task_hparams"),
    (("\ntask_arch:\n  pubmed:", "\ntask_arch:\n  PubMed:"), "task_arch.PubMed: no such task (tasks: agnews"),
    (("\n  ppi: {hidden", "\n  PPI: {hidden"), "task_hparams.PPI: no such task"),
])
def test_an_architecture_file_key_no_reader_knows_is_refused(edit, line, tmp_path):
    """``hparam:`` for ``hparams:`` in a copy of gat.yaml ran the HPO instead of GAT's settings
    (9.70 % test, exit 0); a task name in the wrong case was ignored the same way."""
    path = tmp_path / "my_gat.yaml"
    path.write_text((ROOT / "src" / "space" / "archs" / "gat.yaml").read_text().replace(*edit))
    proc = cli("src.retrain", "+task=cora", "budget=smoke", f"arch={path}", data_dir=tmp_path, tmp=tmp_path,
               run_dir=tmp_path / "run")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith(f"error: {path}: {line}"), (
        proc.stderr[-2000:])



def test_an_architecture_file_for_a_named_task_or_a_results_record_is_accepted():
    """A ``task_arch`` entry for the run's own task name (``+task=csv task.name=reviews``), and a
    retrain's ``results.json`` given as ``arch=`` (its ``arch`` and the record's other keys), are
    read as before the key check existed."""
    import json
    import tempfile

    from src.pipeline.config import resolve_arch

    with tempfile.TemporaryDirectory() as folder:
        own = Path(folder) / "own.yaml"
        own.write_text("arch:\n  layers:\n    - {kind: add, q_src: 0, q_op: conv1, k_src: 0, k_op: zero}\n"
                       "task_arch:\n  reviews:\n    layers:\n      - {kind: add, q_src: 0, q_op: gru, k_src: 0, k_op: zero}\n")
        assert resolve_arch(str(own), "reviews")[0].q_op == "gru"
        with pytest.raises(AutoAttendError, match="task_arch.reviews: no such task"):
            resolve_arch(str(own), "sst2")
        arch = resolve_arch(str(own))
        results = Path(folder) / "results.json"
        results.write_text(json.dumps({"arch": arch.to_dict(), "test_acc_mean": 0.8, "per_seed": [], "seeds": [0]}))
        assert resolve_arch(str(results), "sst2") == arch


def test_the_builtin_graph_architectures_pass():
    for name in ("gat", "gcn"):
        for task in ("cora", "citeseer", "pubmed", "ppi"):
            hp = read_arch(name, task).hparams
            assert hp["lr"] > 0 and hp["epochs"] >= 1


def test_the_config_choices_are_those_the_code_implements():
    """:mod:`src.choices` spells out, without importing torch, names that Lightning and the graph
    model define: the two must not drift apart (the precisions: those runs support, all Lightning's)."""
    from lightning.fabric.connector import _PRECISION_INPUT

    from src.models.graph import ACTIVATIONS

    lightning = {str(v) for literal in typing.get_args(_PRECISION_INPUT) for v in typing.get_args(literal)
                 if isinstance(v, str)}
    assert set(PRECISIONS) <= lightning and {"32-true", "bf16-mixed", "16-mixed"} <= set(PRECISIONS)
    assert set(GRAPH_ACTIVATIONS) == set(ACTIVATIONS)


def test_the_entry_points_and_the_config_checks_import_no_torch():
    """What runs before a config has passed its checks imports neither torch, Lightning nor PyG, so
    a bad value or a Hydra error is reported in about a second instead of after ~10 s of imports."""
    code = ("import sys, src.search, src.retrain, src.pipeline.checks, src.pipeline.config, src.pipeline.run_settings; "
            "print(sorted(m for m in ('torch', 'lightning', 'torch_geometric', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("module, args, needle", [
    ("src.search", ("+task=sst2", "supernet.recompute=yes"), "error: supernet.recompute: expected true or false"),
    ("src.retrain", ("+task=sst2", "arch=nope"), "error: arch=nope: no such file and no built-in architecture"),
    # an empty value named the current directory ("a directory without search/best_arch.yaml")
    ("src.retrain", ("+task=sst2", "arch="), "error: no architecture given: add arch=<name or path>"),
    ("src.search", (), "error: no task selected"),
    # a sweep's experiment without -m: Hydra ran one job of the default values, in silence
    ("src.search", ("+experiment=sst2_ranking_sharing", "budget=smoke"),
     "error: experiment sst2_ranking_sharing is a sweep (experiment.multirun): run it with -m, `python -m src.search "
     "-m +experiment=sst2_ranking_sharing` or `make reproduce EXP=sst2_ranking_sharing`"),
    # the smoke budget fills supernet.* for both entry points: accepted before, and without effect
    ("src.retrain", ("+task=sst2", "arch=published_sst5", "budget=smoke", "supernet.dim=16"),
     "error: supernet.dim: a setting of the search (src.search), which src.retrain does not read; the retrain's "
     "training is set by retrain.*"),
    # the paper budget leaves supernet.* out of src.retrain's config: Hydra's own message said "To append
    # to your config use +supernet.dim=32", a setting that would have had no effect
    ("src.retrain", ("+task=sst2", "arch=published_sst5", "strategy.population=3"),
     "error: strategy.population: a setting of the search (src.search), which src.retrain does not read"),
    ("src.search", ("+task=cora", "graph.baselines=[gcn,gcx]"), "error: graph.baselines: gcx: no such file and no "
                                                                "built-in architecture of that name"),
    ("src.search", ("+task=cora", "graph.baselines=[published_sst5]"), "error: graph.baselines: published_sst5: a "
                                                                       "text architecture (ops conv1, conv3, maxpool3)"),
    ("src.search", ("+task=csv",), "error: task csv: num_classes is not set and no data given; add "
                                   "task.num_classes=<number of classes> task.path="),
    ("src.search", ("+task=csv", "task.path=/x"), "error: task csv: num_classes is not set; add task.num_classes="),
    ("src.retrain", ("+task=csv", "task.num_classes=3", "arch=published_sst5"),
     "error: task csv: no data given; add task.path="),
    # a text setting for a graph task, or a graph one for a text task, ran with no effect (and
    # src.report showed it as the run's): refused, naming what the task reads
    ("src.search", ("+task=cora", "retrain.seeds=3"),
     "error: retrain.seeds: a setting of text tasks, which graph task cora does not read; it reads graph.retrain.seeds"),
    ("src.retrain", ("+task=cora", "arch=gcn", "retrain.lr=0.5"),
     "error: retrain.lr: a setting of text tasks, which graph task cora does not read; it reads graph.retrain.lr"),
    ("src.search", ("+task=cora", "supernet.epochs=5"), "error: supernet.epochs: a setting of text tasks, which graph "
                                                        "task cora does not read; its settings are graph.supernet.*"),
    ("src.search", ("+task=cora", "space.num_layers=4"), "error: space.num_layers: a setting of text tasks, which "
                                                         "graph task cora does not read; it reads graph.space.num_layers"),
    ("src.search", ("+task=sst2", "graph.retrain.seeds=2"), "error: graph.retrain.seeds: a setting of graph tasks, "
                                                            "which text task sst2 does not read; it reads retrain.seeds"),
    # Hydra's message for a misspelt key advised adding it with +, which then ran with nothing reading it
    ("src.search", ("+task=sst2", "supernet.dimm=32"), "error: supernet.dimm: no such setting (misspelt, or one of a task or option not chosen"),
    ("src.search", ("+task=sst2", "+supernet.dimm=32"), "error: +supernet.dimm=32: adds supernet.dimm, which the "
                                                        "config does not have, so nothing would read it"),
    ("src.search", ("+task=sst2", "+strategy.sample_size=10"), "error: +strategy.sample_size=10: adds "
                                                               "strategy.sample_size"),
    ("src.search", ("+task=sst2", "++supernet.dimm=32"), "error: ++supernet.dimm=32: ++ may add a key nothing reads; "
                                                         "set a setting the config has with supernet.dimm=... (without +)"),
    # the documented way to add an HPO setting is still said
    ("src.search", ("+task=cora", "graph.hpo.space.hidden=[16,32]"), "error: graph.hpo.space.hidden: not in the config "
                                                                     "yet; add it with +graph.hpo.space.hidden=[16,32]"),
    # settings of the search's space and graph stages, which src.retrain has and ignored
    ("src.retrain", ("+task=cora", "arch=gcn", "graph.baselines=[gat]"), "error: graph.baselines: a setting of the "
                                                                         "search (src.search)"),
    ("src.retrain", ("+task=cora", "arch=gcn", "graph.supernet.steps=5"), "error: graph.supernet.steps: a setting of "
                                                                          "the search"),
    ("src.retrain", ("+task=sst2", "arch=published_sst5", "space.priors=false"), "error: space.priors: a setting of "
                                                                                 "the search"),
    ("src.retrain", ("+task=cora", "arch=gcn", "graph.hpo.trials=4"), "error: graph.hpo.trials: arch=gcn carries its "
                                                                      "own settings (hparams), so no HPO runs"),
    # a strategy setting the chosen strategy never reads
    ("src.search", ("+task=sst2", "strategy=random", "strategy.mutation_rate=0.9"),
     "error: strategy.mutation_rate: a setting strategy=random does not read"),
    ("src.search", ("+task=cora", "strategy=aging", "strategy.budget=600", "strategy.rounds=3"),
     "error: strategy.rounds: a setting strategy=aging does not read (with strategy.budget set, it no longer sizes "
     "the budget)"),
    # a search experiment choosing its strategy, given to src.retrain: Hydra's "No match in the defaults list"
    ("src.retrain", ("+experiment=cora_autogl",), "error: experiment cora_autogl chooses a strategy option, which "
                                                  "this entry point does not have: run it with the entry point its "
                                                  "experiment.entry names, or `make reproduce EXP=cora_autogl`"),
    # numpy takes seeds below 2**32 and the stages add offsets: a traceback after the supernet
    ("src.search", ("+task=sst2", "seed=4294967295"), "error: seed: expected an integer from 0 to 2147483647, got "
                                                      "4294967295"),
])
def test_a_bad_command_line_fails_before_torch_is_imported(module, args, needle, tmp_path, monkeypatch):
    """Through the real command line (mimalloc restart included): one error line, exit status 2,
    and the interpreter's import log (PYTHONPROFILEIMPORTTIME) shows torch was never imported."""
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")
    proc = cli(module, *args, data_dir=tmp_path, tmp=tmp_path, run_dir=tmp_path / "r")
    assert proc.returncode == 2 and needle in proc.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "hydra" in imported and "torch" not in imported and "lightning" not in imported


@pytest.mark.parametrize("stage_file", ["retrain/hpo.json", "baselines/gcn/seed_0.json", "search/rerank.json"])
def test_a_graph_run_stopped_in_its_hpo_rerank_or_baselines_keeps_its_settings(tmp_path, stage_file):
    """The graph stages' resumable files count as results: a run directory holding only one of
    them refuses a re-run with other settings (it would resume from that file)."""
    check_run_settings(tmp_path, run_settings(compose_config("search", ["+task=cora", "budget=smoke"]), "search"))
    (tmp_path / stage_file).parent.mkdir(parents=True)
    (tmp_path / stage_file).write_text("{}")
    with pytest.raises(AutoAttendError, match="seed: 0 -> 1"):
        check_run_settings(tmp_path, run_settings(compose_config("search", ["+task=cora", "budget=smoke", "seed=1"]),
                                                  "search"))


def test_a_file_where_a_folder_goes_is_one_line(tmp_path):
    """A run folder, cache or output folder naming a file (or a path through one) gave a
    FileExistsError / NotADirectoryError traceback, from Hydra or from a DataModule."""
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    for run_dir in (a_file, a_file / "run"):
        proc = cli("src.search", "+task=sst2", "budget=smoke", data_dir=tmp_path, tmp=tmp_path, run_dir=run_dir)
        assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith(
            f"error: cannot create the folder {run_dir}: "), proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr
    proc = cli("src.search", "+task=sst2", "budget=smoke", f"paths.cache_dir={a_file / 'cache'}", data_dir=tmp_path,
               tmp=tmp_path, run_dir=tmp_path / "r")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
        f"error: paths.cache_dir={a_file / 'cache'}: {a_file} is a file, where a folder is needed"), proc.stderr


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs Linux's /sys, where no one may create a folder")
def test_a_folder_the_machine_refuses_is_one_line(tmp_path):
    """A run folder or cache the user may not write (or on a read-only disk) gave a PermissionError
    traceback, from Hydra's mkdir or from the DataModule's cache, after the run's records were written.
    /sys refuses a new folder even to root (EPERM; EACCES or EROFS elsewhere, all said the same way)."""
    from tests.helpers import write_tiny_sst

    refused = Path("/sys") / "autoattend_test"
    proc = cli("src.search", "+task=sst2", "budget=smoke", data_dir=tmp_path, tmp=tmp_path, run_dir=refused / "run")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert re.fullmatch(rf"error: {refused}(/run)?: .*; (check its permissions|a read-only file system).*",
                        proc.stderr.strip().splitlines()[-1]), proc.stderr
    data = write_tiny_sst(tmp_path / "data")
    proc = cli("src.search", "+task=sst2", "budget=smoke", f"paths.cache_dir={refused / 'cache'}", data_dir=data,
               tmp=tmp_path, run_dir=tmp_path / "r")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert re.fullmatch(rf"error: {refused}(/cache\S*)?: .*; (check its permissions|a read-only file system).*",
                        proc.stderr.strip().splitlines()[-1]), proc.stderr
    assert not (tmp_path / "r" / "data.json").exists()


def test_the_table_commands_say_a_refused_file_in_one_line(capsys):
    """src.evaluate / predict / report / show (``exit_status_of``): a permission, read-only or
    full-disk error is one line and status 2, also where a library wrapped it; other errors are
    still raised (a bug must show its traceback)."""
    import errno

    from src.utils.errors import exit_status_of, user_error_behind

    def refused(code):
        def main():
            raise OSError(code, "refused", "/data/x")
        return main

    for code, hint in ((errno.EACCES, "check its permissions"), (errno.EROFS, "a read-only file system"),
                       (errno.ENOSPC, "the disk is full")):
        assert exit_status_of(refused(code)) == 2
        assert capsys.readouterr().err.startswith(f"error: /data/x: refused; {hint}")
    with pytest.raises(FileNotFoundError):
        exit_status_of(refused(errno.ENOENT))

    def nameless():
        raise PermissionError(errno.EPERM, "Operation not permitted")  # madvise, say: no file to mend

    with pytest.raises(PermissionError):
        exit_status_of(nameless)

    def other_pipe():  # a pipe of the command's own broken (a worker gone), standard output still read
        import multiprocessing

        a, b = multiprocessing.Pipe()
        b.close()
        a.send(b"x")

    with pytest.raises(BrokenPipeError):  # a crash: it returned 141, the output sent to /dev/null, in silence
        exit_status_of(other_pipe)
    try:
        try:
            raise PermissionError(errno.EACCES, "Permission denied", "/cache/y")
        except PermissionError as inner:
            raise RuntimeError("a library's wrapper") from inner
    except RuntimeError as outer:
        assert str(user_error_behind(outer)).startswith("/cache/y: Permission denied; check its permissions")


def test_every_refusal_of_the_machine_is_one_line_naming_the_file_also_behind_an_implicit_chain():
    """Permission (EACCES, EPERM), read-only, full-disk and quota errors about a file are one line
    naming it, with the OS's words and what to do; one without a file name is not; an error raised
    while handling the refusal (``__context__``, no ``from``) is traced back to it too."""
    import errno

    from src.utils.errors import AutoAttendError, machine_error, user_error_behind

    hints = {errno.EACCES: "check its permissions for the user running this", errno.EPERM: "check its permissions",
             errno.EROFS: "a read-only file system: point paths.cache_dir",
             errno.ENOSPC: "the disk is full: free some space",
             errno.EDQUOT: "the disk quota is used up: free some space, or point the paths elsewhere"}
    for code, hint in hints.items():
        refused = machine_error(OSError(code, "refused", "/data/x"))
        assert isinstance(refused, AutoAttendError) and str(refused).startswith(f"/data/x: refused; {hint}"), code
    assert machine_error(OSError(errno.EACCES, "Permission denied")) is None
    assert machine_error(OSError(errno.ENOENT, "No such file", "/data/x")) is None
    assert machine_error(ValueError("no OSError")) is None
    try:
        try:
            raise PermissionError(errno.EACCES, "Permission denied", "/cache/z")
        except PermissionError:
            raise RuntimeError("a library's handler failing in turn")
    except RuntimeError as outer:
        assert str(user_error_behind(outer)).startswith("/cache/z: Permission denied; check its permissions")
    try:
        try:
            raise AutoAttendError("data/x.csv: bad row")
        except AutoAttendError:
            raise KeyError("wrapped")
    except KeyError as outer:
        assert str(user_error_behind(outer)) == "data/x.csv: bad row"


def test_a_setting_of_the_other_family_is_only_a_warning_in_a_multirun(monkeypatch, caplog):
    """In a sweep over tasks of both families (``-m +task=sst2,cora retrain.seeds=3``) a text
    setting is meant for the text jobs: the graph job warns instead of failing."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from src.pipeline import run

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="search", overrides=["+task=cora", "retrain.seeds=3"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    try:
        with pytest.raises(AutoAttendError, match="retrain.seeds: a setting of text tasks"):
            run._refuse_other_family_settings(cfg)
        monkeypatch.setattr(run, "_in_multirun", lambda: True)
        with caplog.at_level(logging.WARNING, logger="src"):
            run._refuse_other_family_settings(cfg)
        assert ("retrain.seeds: a setting of text tasks, which graph task cora does not read; it reads "
                "graph.retrain.seeds (other jobs of the sweep may read it)") in caplog.text
    finally:
        HydraConfig.instance().cfg = None
        GlobalHydra.instance().clear()


def test_a_text_run_recorded_with_the_retired_datamodule_batch_size_resumes(tmp_path):
    """``task.datamodule.batch_size`` sized only the text DataModules' own loaders, which the
    pipeline never uses (a user who changed it changed nothing); removed from the task configs, a
    run that recorded it still resumes. PPI's (its graphs per step) is a result setting still."""
    started = run_settings(compose_config("search", ["+task=sst2", "budget=smoke"]), "search")
    assert "task.datamodule.batch_size" not in started
    (tmp_path / SETTINGS_FILE).write_text(json.dumps({**started, "task.datamodule.batch_size": 128}))
    (tmp_path / "supernet").mkdir()
    (tmp_path / "supernet" / "last.ckpt").write_bytes(b"")
    assert check_run_settings(tmp_path, started) == []
    ppi = tmp_path / "ppi"
    check_run_settings(ppi, run_settings(compose_config("search", ["+task=ppi", "budget=smoke"]), "search"))
    (ppi / "supernet").mkdir()
    (ppi / "supernet" / "last.ckpt").write_bytes(b"")
    with pytest.raises(AutoAttendError, match=r"task.datamodule.batch_size: 2 -> 4"):
        check_run_settings(ppi, run_settings(compose_config(
            "search", ["+task=ppi", "budget=smoke", "task.datamodule.batch_size=4"]), "search"))


@pytest.mark.parametrize("overrides, line", [
    (["graph.supernet.hidden=24"], "graph.supernet.hidden=24 is not divisible by 16, the heads of op gat16"),
    (["graph.retrain.hidden=40"], "graph.retrain.hidden=40 is not divisible by 16"),
    (["graph.space.ops=[gcn,gat4]", "graph.retrain.hidden=42", "graph.retrain.heads=2"],
     "graph.retrain.hidden=42 is not divisible by 4, the heads of op gat4"),
    (["+graph.hpo.space.hidden=[64,48,20]", "graph.hpo.trials=4"], "graph.hpo.space.hidden=20 is not divisible by 16"),
    # the `last` readout averages the heads of the last layer only: a second layer's width still splits
    (["graph.space.num_layers=2", "graph.retrain.readout=last", "graph.retrain.hidden=24"],
     "graph.retrain.hidden=24 is not divisible by 16, the heads of op gat16"),
])
def test_a_search_whose_hidden_width_does_not_split_into_a_gat_ops_heads_is_refused(overrides, line):
    """``graph.supernet.hidden=24`` passed the checks (24 splits into graph.supernet.heads=8) and
    the model refused it after the data loaded: "op gat16: output width 24 is not divisible by
    its 16 heads", naming no setting."""
    with pytest.raises(AutoAttendError, match=line):
        check_config(compose_config("search", ["+task=cora"] + overrides), "search")


@pytest.mark.parametrize("overrides", [["graph.space.ops=[gcn,gat4]", "graph.supernet.hidden=20",
                                        "graph.supernet.heads=4", "graph.retrain.hidden=12", "graph.retrain.heads=4"],
                                       # one layer whose output is the classes: its heads are averaged
                                       ["graph.space.num_layers=1", "graph.retrain.readout=last",
                                        "graph.retrain.hidden=24", "graph.space.ops=[gcn,gat16]"],
                                       # settings nothing trains with: no HPO, no child
                                       ["+graph.hpo.space.hidden=[20]"],
                                       # the HPO runs before the retrain's seeds: none, no HPO
                                       ["graph.retrain.seeds=0", "graph.rerank.topk=2", "graph.hpo.trials=4",
                                        "+graph.hpo.space.hidden=[20]"],
                                       ["graph.retrain.seeds=0", "graph.retrain.hidden=40"],
                                       # one trial: no HPO (its only trial is the retrain's settings)
                                       ["graph.hpo.trials=1", "+graph.hpo.space.hidden=[20]"]])
def test_widths_that_fit_every_gat_op_are_accepted(overrides):
    check_config(compose_config("search", ["+task=cora"] + overrides), "search")


def test_a_search_reading_out_with_the_last_layer_leaves_identity_out_of_that_layer_only(tmp_path):
    """``graph.retrain.readout=last`` makes a child's last layer map to the classes, which an identity
    op cannot (a Cora search stopped at its ninth re-ranked candidate: "layer 1 q: identity cannot map
    node 1 (width 64) to width 7"). The search's space leaves identity out of its last layer; refused
    before the run only where that leaves the last layer no op."""
    from src.pipeline.config import search_space

    ops = ("zero", "identity", "gcn", "sage", "gat1", "gat2", "gat4", "gat8", "gat16", "linear", "arma", "cheb", "sgc")
    cfg = compose_config("search", ["+task=cora", "graph.retrain.readout=last"])
    check_config(cfg, "search")
    space = search_space(cfg)
    assert space.ops == ops and space.last_layer_ops == tuple(op for op in ops if op != "identity")
    assert search_space(compose_config("search", ["+task=cora"])).last_layer_ops == ops
    assert search_space(compose_config("search", ["+task=sst2"])).last_layer_ops == search_space(
        compose_config("search", ["+task=sst2"])).ops
    for bad, rest in ((["graph.space.ops=[zero,identity]"], " but zero"), (["graph.space.ops=[identity]"], "")):
        line = ("graph.retrain.readout=last: the searched model's last layer maps to the classes, which identity "
                f"cannot (it keeps its input's width), and graph.space.ops={bad[0].split('=')[1][1:-1].split(',')} "
                f"leave that layer no other op{rest}; add one (gcn, ...) or keep graph.retrain.readout=linear")
        with pytest.raises(AutoAttendError) as err:
            check_config(compose_config("search", ["+task=cora", "graph.retrain.readout=last", *bad]), "search")
        assert str(err.value) == line
    # without the priors zero is an op of Q too, but a last layer of zero alone outputs a constant (the retrain
    # failed with a traceback: tests/test_small_spaces_findings.py, finding 4)
    with pytest.raises(AutoAttendError, match="leave that layer no other op but zero"):
        check_config(compose_config("search", ["+task=cora", "graph.retrain.readout=last",
                                               "graph.space.ops=[zero,identity]", "space.priors=false"]), "search")
    check_config(compose_config("retrain", ["+task=cora", "arch=gcn", "graph.retrain.readout=last"]), "retrain")
    proc = cli("src.search", "+task=cora", "graph.retrain.readout=last", "graph.space.ops=[zero,identity]",
               "budget=smoke", data_dir=tmp_path, tmp=tmp_path, run_dir=tmp_path / "run")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith(
        "error: graph.retrain.readout=last: the searched model's last layer maps"), proc.stderr[-2000:]
    assert not (tmp_path / "run" / "supernet").exists()


def test_an_hpo_of_the_fewest_trials_that_run_it_counts_its_last_readout():
    """The HPO runs from ``graph.hpo.trials`` = HPO_MIN_TRIALS on: with ``last`` among its readouts the searched
    last layer leaves identity out from there, and keeps it one trial below (no HPO, the retrain's readout)."""
    from src.choices import HPO_MIN_TRIALS
    from src.pipeline.checks import children_readout
    from src.pipeline.config import search_space

    base = ["+task=cora", "+graph.hpo.space.readout=[linear,last]"]
    at = compose_config("search", [*base, f"graph.hpo.trials={HPO_MIN_TRIALS}"])
    below = compose_config("search", [*base, f"graph.hpo.trials={HPO_MIN_TRIALS - 1}"])
    assert (children_readout(at), children_readout(below)) == ("last", "linear")
    assert "identity" not in search_space(at).last_layer_ops and "identity" in search_space(below).last_layer_ops


def test_a_text_architecture_file_carrying_hparams_is_refused_and_retrain_reads_act_at(tmp_path):
    """``hparams: {lr: 0.5}`` in a text architecture's file was ignored in silence (only graph
    children read a file's settings). ``graph.supernet.act_at`` is not refused by src.retrain:
    graph.retrain.act_at follows it."""
    from unittest import mock

    from src.pipeline.config import ARCH_DIR
    from src.pipeline.run import _refuse_search_settings

    arch = tmp_path / "with_hparams.yaml"
    arch.write_text((ARCH_DIR / "published_sst5.yaml").read_text() + "hparams:\n  lr: 0.5\n")
    proc = cli("src.retrain", "+task=sst2", "budget=smoke", f"arch={arch}", data_dir=tmp_path, tmp=tmp_path,
               run_dir=tmp_path / "r")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
        f"error: arch={arch}: carries hparams, the settings of a graph architecture; a text architecture is retrained "
        "with retrain.* (e.g. retrain.lr=...): remove them from the file")
    with mock.patch("src.pipeline.run._override_keys", return_value=["graph.supernet.act_at",
                                                                     "graph.supernet.attn_self_loops"]):
        _refuse_search_settings()
    with mock.patch("src.pipeline.run._override_keys", return_value=["graph.supernet.act"]):
        with pytest.raises(AutoAttendError, match="graph.supernet.act: a setting of the search"):
            _refuse_search_settings()


def test_float16_on_the_cpu_and_a_graph_task_in_another_precision_are_refused():
    """``hardware=cpu hardware.precision=16-mixed`` ran: Lightning warned and trained bfloat16 while
    the run recorded float16. A Cora search in bf16-mixed or 64-true failed at its first supernet
    step with a traceback (no bfloat16 sparse product; float32 data in a float64 model), and its
    full-graph children never used the setting."""
    from src.pipeline.run import _setup_hardware

    for precision in ("16-mixed", "16"):
        with pytest.raises(AutoAttendError, match=f"hardware.precision={precision}: float16 mixed precision runs on "
                                                  "a GPU; on the CPU use hardware.precision=bf16-mixed"):
            _setup_hardware(compose_config("search", ["+task=sst2", "hardware=cpu", f"hardware.precision={precision}"]))
    for entry, extra in (("search", []), ("retrain", ["arch=gcn"])):
        for precision in ("bf16-mixed", "64-true", "16-mixed"):
            with pytest.raises(AutoAttendError, match=f"hardware.precision={precision}: graph tasks train in float32"):
                check_config(compose_config(entry, ["+task=cora", f"hardware.precision={precision}", *extra]), entry)
        check_config(compose_config(entry, ["+task=cora", "hardware.precision=32", *extra]), entry)
    check_config(compose_config("search", ["+task=sst2", "hardware.precision=bf16-mixed"]), "search")



def test_more_threads_than_cores_is_warned_about(monkeypatch, caplog):
    """``hardware.threads=64`` on 2 cores ran a smoke Cora search 15x slower (43 s against 3 s) with
    no word of why; threads within the cores, or unset, say nothing."""
    import torch

    import src.utils.parallel
    from src.pipeline.run import _setup_hardware

    monkeypatch.setattr(src.utils.parallel, "usable_cores", lambda: 2)
    before = torch.get_num_threads()
    try:
        for overrides, warned in ((["hardware.threads=3"], "hardware.threads=3 is more than the 2 core(s)"),
                                  (["hardware.threads=2"], None), ([], None)):
            caplog.clear()
            with caplog.at_level(logging.WARNING):
                _setup_hardware(compose_config("search", ["+task=sst2", "hardware=cpu", *overrides]))
            lines = [r.getMessage() for r in caplog.records if "core(s) this process may run on" in r.getMessage()]
            assert (lines[0].startswith(warned) and len(lines) == 1) if warned else not lines, (overrides, lines)
        caplog.clear()
        with caplog.at_level(logging.WARNING):  # a graph task's own default is named as such
            _setup_hardware(compose_config("search", ["+task=cora", "hardware=cpu", "graph.threads=4"]))
        assert any(r.getMessage().startswith("graph.threads=4 is more than the 2 core(s)") for r in caplog.records)
    finally:
        torch.set_num_threads(before)


def test_an_architecture_files_settings_are_read_for_its_task(tmp_path):
    """``hparams: null`` is no settings (the HPO runs), for graph and text files alike;
    ``task_hparams`` alone are the task's settings (they were ignored without ``hparams``); a text
    file's bad settings are refused as settings a text architecture does not take, not as unknown
    graph keys."""
    from src.pipeline.config import ARCH_DIR

    gcn = (ARCH_DIR / "gcn.yaml").read_text().split("hparams:")[0]
    cases = {"null.yaml": "hparams: null\n", "per_task.yaml": "task_hparams:\n  cora:\n    lr: 0.01\n"}
    for name, tail in cases.items():
        (tmp_path / name).write_text(gcn + tail)
    assert read_arch(str(tmp_path / "null.yaml"), "cora").hparams is None
    assert not read_arch(str(tmp_path / "null.yaml"), "cora").carries
    assert read_arch(str(tmp_path / "per_task.yaml"), "cora").hparams == {"lr": 0.01}
    assert read_arch(str(tmp_path / "per_task.yaml"), "sst2").carries  # a text run refuses them, for any task
    assert read_arch(str(tmp_path / "per_task.yaml"), "citeseer").hparams is None
    text = tmp_path / "text.yaml"
    text.write_text((ARCH_DIR / "published_sst5.yaml").read_text() + "hparams:\n  lrr: 0.1\n")
    proc = cli("src.retrain", "+task=sst2", "budget=smoke", f"arch={text}", data_dir=tmp_path, tmp=tmp_path,
               run_dir=tmp_path / "r")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith(
        f"error: arch={text}: carries hparams, the settings of a graph architecture"), proc.stderr[-2000:]


def test_auto_workers_follow_the_thread_count_and_the_cores(monkeypatch):
    from src.utils import parallel

    monkeypatch.setattr(parallel.torch, "get_num_threads", lambda: 2)
    assert parallel.resolve_workers("auto", "cpu") == 2
    monkeypatch.setattr(parallel.torch, "get_num_threads", lambda: 16)
    assert parallel.resolve_workers(None, "cpu") == 4
    monkeypatch.setattr(parallel, "usable_cores", lambda: 8)
    monkeypatch.setattr(parallel.torch, "get_num_threads", lambda: 2)
    assert parallel.resolve_process_workers("auto", "cpu") == 4
    monkeypatch.setattr(parallel.torch, "get_num_threads", lambda: 4)
    assert parallel.resolve_process_workers("auto", "cpu") == 2
    monkeypatch.setattr(parallel, "usable_cores", lambda: 3)
    assert parallel.resolve_process_workers("auto", "cpu") == 1
    assert parallel.resolve_process_workers(3, "cpu") == 3
    monkeypatch.setattr(parallel, "usable_cores", lambda: 8)
    monkeypatch.setattr(parallel.torch, "get_num_threads", lambda: 1)
    assert parallel.resolve_process_workers("auto", "cuda") == 1  # one process a GPU, whatever the cores


def test_parse_workers_refuses_booleans():
    from src.utils.workers import parse_workers

    for bad in (True, False, "-1", "1.0"):
        with pytest.raises(ValueError, match="must be 'auto' or an integer >= 1"):
            parse_workers(bad, "k")
    assert parse_workers(" 3 ") == 3 and parse_workers("auto") is None


def test_an_architecture_files_task_entries_override_and_are_checked_naming_file_and_key(tmp_path):
    """``task_hparams.<task>`` overrides ``hparams`` for that task only; an unknown settings key, a
    task entry that is no mapping, or a ``task_arch`` that is no mapping is one error naming the file
    and the key; an invalid ``task_arch.<task>`` architecture names that entry."""
    path = tmp_path / "arch.yaml"
    arch = "arch:\n  layers:\n    - {kind: add, q_src: 0, q_op: gcn, k_src: 0, k_op: zero}\n"
    path.write_text(arch + "hparams: {lr: 0.01, epochs: 5}\ntask_hparams:\n  cora: {lr: 0.005}\n")
    assert read_arch(str(path), "cora").hparams == {"lr": 0.005, "epochs": 5}
    assert read_arch(str(path), "citeseer").hparams == {"lr": 0.01, "epochs": 5}
    refusals = {
        "hparams: {lrr: 0.1}\n": "unknown hparams key 'lrr'; expected some of ('hidden',",
        "task_hparams:\n  cora: [1, 2]\n": "hparams and task_hparams.<task> must be mappings of settings",
        "task_arch: [1, 2]\n": "task_arch must map task names to architectures",
        "task_arch:\n  cora:\n    layers:\n      - {kind: add, q_src: x, q_op: gcn, k_src: 0, k_op: zero}\n":
            "task_arch.cora: invalid architecture (layer 0",
        "zz: 1\naa: 2\n": "unknown top-level key 'aa'; expected some of layers, arch",
    }
    for tail, needle in refusals.items():
        path.write_text(arch + tail)
        with pytest.raises(AutoAttendError) as err:
            read_arch(str(path), "cora").hparams
        assert str(err.value).startswith(f"{path}") and needle in str(err.value), (tail, str(err.value))


@pytest.mark.parametrize("entry, overrides", [
    # the bounds themselves: the largest seed (2**31 - 1) and thread count, 0 threads (torch's default)
    ("search", ["+task=sst2", "seed=2147483647", "hardware.threads=1024"]),
    ("search", ["+task=sst2", "hardware.threads=0"]),
    ("search", ["+task=sst2", "data.window=32", "data.stride=32"]),  # windows that meet skip no token
    ("search", ["+task=sst2", "supernet.limit_val_batches=0", "supernet.monitor_archs=0", "strategy.rounds=0",
                "strategy.mutation_rate=1", "ranking.candidates=0"]),
    ("search", ["+task=sst2", "strategy=aging", "strategy.budget=500"]),  # a budget of the population alone
    ("search", ["+task=agnews", "task.val_seed=0", "task.num_proc=0"]),
    ("search", ["+task=cora", "graph.retrain.patience=null", "graph.rerank.topk=0", "graph.hpo.trials=0"]),
    # src.retrain trains the given architecture: the search space's GAT ops do not constrain its width
    ("retrain", ["+task=cora", "arch=gcn", "graph.retrain.hidden=40"]),
])
def test_a_value_at_its_bound_is_accepted(entry, overrides):
    """The checks' bounds are inclusive where the README and the messages say so ("an integer from 0
    to 2147483647", ">= strategy.population", "data.stride <= data.window", "(0, 1]"): a value on
    the bound, or a documented null or 0, is not refused."""
    check_config(compose_config(entry, overrides), entry)


def test_a_baseline_is_checked_against_the_graph_space_and_the_task_family_in_one_exact_line():
    """``graph.baselines`` are refused before the supernet trains, by the line the retrain of that
    baseline would give, after ``graph.baselines: <name>:`` (an op the task's space lacks, a text
    architecture for a graph task, naming both families)."""
    from src.pipeline.run import _check_baselines

    cases = {
        ("graph.space.ops=[zero,identity,gat8]", "graph.baselines=[gcn]"):
            "graph.baselines: gcn: invalid architecture (layer 0, field 'q_op'): unknown op 'gcn'; expected one of "
            "('zero', 'identity', 'gat8'); baselines are retrained within the task's space (graph.space.ops, "
            "graph.space.kinds): add what they use there, or train none (graph.baselines=[])",
        ("graph.baselines=[published_sst5]",):
            "graph.baselines: published_sst5: a text architecture (ops conv1, conv3, maxpool3), while task cora is a "
            "graph task; its ops: zero, identity, gcn, sage, gat1, gat2, gat4, gat8, gat16, linear, arma, cheb, sgc",
    }
    for overrides, line in cases.items():
        with pytest.raises(AutoAttendError) as err:
            _check_baselines(compose_config("search", ["+task=cora", *overrides]))
        assert str(err.value) == line
    _check_baselines(compose_config("search", ["+task=cora"]))  # gcn and gat


def test_a_sweep_experiment_is_refused_only_outside_a_multirun(monkeypatch):
    """An experiment marked ``experiment.multirun`` run without ``-m`` is refused (Hydra would run
    one job of the defaults); each job of the ``-m`` sweep goes on to the config checks."""
    from src.pipeline import run

    def checked(cfg, entry):
        raise AutoAttendError(f"checked for {entry}")

    monkeypatch.setattr(run, "check_config", checked)
    monkeypatch.setattr(run, "_hydra_initialized", lambda: True)
    cfg = compose_config("search", ["+experiment=sst2_ranking_sharing", "budget=smoke"])
    monkeypatch.setattr(run, "_in_multirun", lambda: False)
    with pytest.raises(AutoAttendError, match=r"^experiment sst2_ranking_sharing is a sweep \(experiment.multirun\): "
                                              r"run it with -m"):
        run._start(cfg, "search")
    monkeypatch.setattr(run, "_in_multirun", lambda: True)
    with pytest.raises(AutoAttendError, match="^checked for search$"):
        run._start(cfg, "search")


def test_a_graph_task_reads_the_shared_space_switches_and_refuses_the_other_text_space_settings():
    """``space.sharing`` and ``space.priors`` are read by graph tasks too (``graph.space`` follows
    them): given with ``+task=cora`` they pass; another ``space.*`` setting is refused, naming the
    graph key."""
    from unittest import mock

    from src.pipeline.run import _refuse_other_family_settings

    cfg = compose_config("search", ["+task=cora", "space.sharing=none", "space.priors=false"])
    with mock.patch("src.pipeline.run._override_keys", return_value=["space.sharing", "space.priors"]):
        _refuse_other_family_settings(cfg)
    with mock.patch("src.pipeline.run._override_keys", return_value=["space.sharing", "space.ops"]):
        with pytest.raises(AutoAttendError) as err:
            _refuse_other_family_settings(cfg)
    assert str(err.value) == "space.ops: a setting of text tasks, which graph task cora does not read; it reads graph.space.ops"


def test_a_deleted_search_setting_is_named_without_its_tilde_and_refused_by_src_retrain():
    """``~graph.baselines`` (Hydra's delete) is an override of ``graph.baselines``: the override
    keys drop the ``~`` as they drop ``+``, so src.retrain refuses it as the search setting it is."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from src.pipeline import run

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="retrain", overrides=["+task=cora", "arch=gcn", "~graph.baselines"],
                      return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    try:
        assert run._override_keys() == ["task", "arch", "graph.baselines"]
        with pytest.raises(AutoAttendError, match="^graph.baselines: a setting of the search"):
            run._refuse_search_settings()
    finally:
        HydraConfig.instance().cfg = None
        GlobalHydra.instance().clear()


def test_strategy_settings_every_strategy_reads_are_never_refused():
    """Only the settings that size or steer a strategy (``STRATEGY_SETTINGS``) are refused when the
    chosen one does not read them; the stage's own ``strategy.topk``, ``eval_batch_size``,
    ``save_every``, ``score_workers`` and ``val_subset`` are read whatever the strategy."""
    from unittest import mock

    from src.pipeline.config import search_space, search_strategy
    from src.pipeline.run import _refuse_unread_strategy_settings

    cfg = compose_config("search", ["+task=sst2", "strategy=random"])
    strategy = search_strategy(cfg, search_space(cfg))
    common = ["strategy.topk", "strategy.eval_batch_size", "strategy.save_every", "strategy.score_workers",
              "strategy.val_subset", "strategy.score_bucket_size"]
    with mock.patch("src.pipeline.run._override_keys", return_value=common):
        _refuse_unread_strategy_settings(cfg, strategy)
    with mock.patch("src.pipeline.run._override_keys", return_value=[*common, "strategy.mutation_rate"]):
        with pytest.raises(AutoAttendError, match="^strategy.mutation_rate: a setting strategy=random does not read$"):
            _refuse_unread_strategy_settings(cfg, strategy)


@pytest.mark.parametrize("name", [".", "my\\corpus", 7])
def test_a_task_name_of_a_dot_a_backslash_or_not_text_is_refused(name):
    """``task.name`` names folders: ``.`` (the folder above's own), a Windows separator, or a value that is
    not text (``task.name: 7`` in a file) are refused in one line, as an empty one or one with ``/``."""
    cfg = compose_config("search", ["+task=csv", "task.path=/data/corpus", "task.num_classes=3"])
    cfg.task.name = name
    with pytest.raises(AutoAttendError) as err:
        check_config(cfg, "search")
    assert str(err.value) == ("task.name=7: read as a number; quote it to name the task: task.name='7'" if name == 7
                              else "task.name: expected a name for the task's folders, not empty and without / (e.g. "
                                   f"task.name=reviews), got {name!r}")


def test_a_deleted_task_name_is_refused_in_one_line():
    """``~task.name`` leaves the task without the name its folders and lines use: refused naming the key
    (``src.search`` ended in ConfigAttributeError's traceback where it logged the task)."""
    with pytest.raises(AutoAttendError) as err:
        check_config(compose_config("search", ["+task=cora", "~task.name"]), "search")
    assert str(err.value) == ("task.name: removed (~task.name), but the task's folders and log lines need a name; "
                              "give one with task.name=<name>")


@pytest.mark.parametrize("module, args", [
    ("src.search", ("+task=sst2", "supernet.dim=15")),  # refused by the config checks
    ("src.search", ()),  # no task
    ("src.retrain", ("+task=cora", "arch=gcn", "graph.retrain.seeds=0")),
    ("src.bench", ("bench.reps=0",)),  # Hydra writes its .hydra/ record and an empty bench.log first
])
def test_a_refused_command_leaves_no_run_folder(module, args, tmp_path):
    """Was: Hydra makes the run folder before the job starts, and the refusal's log line (conf/hydra/job_logging:
    the file opened at its first line) kept it: every mistyped command left ``outputs/<task>/search/<time>/`` holding
    one search.log (src.bench's ``outputs/bench/<time>/`` also ``.hydra/``). Now: a folder made for this command
    that holds only that is removed with the refusal."""
    proc = cli(module, *args, data_dir=tmp_path / "nowhere", tmp=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("error: "), proc.stderr[-2000:]
    left = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "out").rglob("*") if not p.is_dir())
    assert left == [], left


def test_a_refused_command_keeps_a_run_folder_it_did_not_make(tmp_path):
    """A folder that was there before the command (made by the user, empty) is kept, with the refusal's log;
    so is a folder holding anything besides that log."""
    import os
    import time

    mine = tmp_path / "mine"
    mine.mkdir()
    past = time.time() - 60
    os.utime(mine, (past, past))
    time.sleep(0.2)  # its change time before the command's start (utime sets it to now)
    proc = cli("src.search", "+task=sst2", "supernet.dim=15", data_dir=tmp_path, tmp=tmp_path, run_dir=mine)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert [p.name for p in mine.iterdir()] == ["search.log"]
    assert "error: supernet.dim=15" in (mine / "search.log").read_text()

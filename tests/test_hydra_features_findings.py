"""A walk through Hydra's standard command-line features (flags, hydra.* settings, the override grammar) with
src.search, src.retrain and src.bench (2026-12-07, session 48). The project's rule: a Hydra feature works as Hydra
documents it, or is refused with one ``error:`` line and exit status 2; never a traceback, a half-written run or a
setting silently ignored. The findings were strict xfails and are mended (their docstrings say "Was: ... Now: ...";
the last, a primary config of one's own extending conf/search.yaml, in session 49). The plain tests pin behaviours
the walk found right that nothing tested yet."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, cli, write_tiny_planetoid, write_tiny_sst

SMOKE = ("budget=smoke", "hardware.kernels=torch")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hydra_walk_data")
    write_tiny_sst(root)
    write_tiny_planetoid(root)
    return root


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _refused_in_one_line(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert len(_error_lines(proc.stderr)) == 1, proc.stderr[-2000:]


def _run_in(cwd: Path, module: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m <module> <args>`` started in ``cwd`` (not the repository root), offline; no
    AUTOATTEND_* variable set unless ``env`` gives it."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AUTOATTEND_")}
    base.update({"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=base, capture_output=True, text=True,
                          timeout=120)


# ---- findings ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("module,args", [
    ("src.search", ("+task=sst2", "~seed")),
    ("src.search", ("+task=sst2", "~supernet.dim")),
    ("src.retrain", ("+task=sst2", "arch=published_sst5", "~retrain.lr")),
], ids=["search-seed", "search-supernet.dim", "retrain-retrain.lr"])
def test_deleting_a_read_setting_is_one_error_line(module, args, data, tmp_path):
    """Was: a `~key` deletion of a setting the run reads is neither refused nor handled: ConfigAttributeError
    traceback, exit status 1 (src/pipeline/run.py has no check of Hydra's ~ overrides; check_config reads the keys
    with attribute access). Now: run.refuse_deleted_settings refuses a ~key deletion but of the settings every
    reader takes as optional (run.DELETABLE) and Hydra's own, before any work."""
    run_dir = tmp_path / "run"
    proc = cli(module, *args, *SMOKE, data_dir=data, tmp=tmp_path, run_dir=run_dir, timeout=60)
    _refused_in_one_line(proc)
    # nothing recorded for a run that never started (~supernet.dim wrote run_settings.json without the key)
    assert not (run_dir / "run_settings.json").exists()
    assert not (run_dir / ".hydra").exists()


def test_deleting_a_graph_setting_is_refused_before_any_work(data, tmp_path):
    """Was: `~graph.retrain.seeds` on a graph search: supernet and search run, then the retrain crashes with a
    ConfigAttributeError traceback (exit status 1), the run half done and its .hydra/ record written. Now: the same
    refusal (run.refuse_deleted_settings), before any work."""
    run_dir = tmp_path / "run"
    proc = cli("src.search", "+task=cora", "~graph.retrain.seeds", *SMOKE, data_dir=data, tmp=tmp_path,
               run_dir=run_dir, timeout=60)
    _refused_in_one_line(proc)
    assert not (run_dir / "supernet").exists()


def test_job_chdir_reads_the_default_data_folder_where_the_user_started(data, tmp_path):
    """Was: hydra.job.chdir=True is accepted, but relative paths (the default ./data) are then read inside the run
    folder: 'SST tree files not found (looked for <run dir>/data/...)'. Neither resolved against hydra.runtime.cwd
    (to_absolute_path) nor refused. Now: hydra.job.chdir is refused in one line before Hydra makes the folder
    (run.unfit_folder_setting): the runs read their relative paths from the starting folder."""
    start = tmp_path / "start"
    shutil.copytree(data / "sst", start / "data" / "sst")
    proc = _run_in(start, "src.search", "+task=sst2", *SMOKE, "hydra.job.chdir=True", "hydra.run.dir=runs/r1")
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "runs/r1/data" not in proc.stderr, proc.stderr[-2000:]
    if proc.returncode == 2:  # refused: one line that names the setting, before any record
        assert len(_error_lines(proc.stderr)) == 1 and "chdir" in proc.stderr, proc.stderr[-2000:]
        assert not (start / "runs" / "r1" / "run_settings.json").exists()
    else:
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert (start / "runs" / "r1" / "summary.json").exists()
        assert not (start / "runs" / "r1" / ".cache").exists()  # ./.cache is the starting folder's too


def test_job_chdir_finds_a_relative_arch_file(data, tmp_path):
    """Was: with hydra.job.chdir=True, src.retrain arch=<relative file> says 'no such file and no built-in
    architecture' for a file that exists in the folder the user started in. Now: the same refusal of hydra.job.chdir
    (run.unfit_folder_setting)."""
    start = tmp_path / "start"
    start.mkdir()
    arch = ROOT / "src" / "space" / "archs" / "published_sst5.yaml"
    shutil.copy(arch, start / "myarch.yaml")
    proc = _run_in(start, "src.retrain", "+task=sst2", *SMOKE, "arch=myarch.yaml", "hydra.job.chdir=True",
                   "hydra.run.dir=runs/r1", env={"AUTOATTEND_DATA_DIR": str(data),
                                                 "AUTOATTEND_CACHE_DIR": str(tmp_path / "cache")})
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    if proc.returncode == 2:
        assert "chdir" in proc.stderr, proc.stderr[-2000:]
    else:
        assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.slow  # the refusal: the test below; one refused before anything is written, through the command line:
# test_job_chdir_reads_the_default_data_folder_where_the_user_started
def test_output_subdir_does_not_let_a_refused_rerun_replace_the_record(data, tmp_path):
    """Was: hydra.output_subdir=.hydra (the project sets null so that a refused re-run keeps a finished run's record)
    is accepted: Hydra then writes .hydra/ before the checks, and a re-run refused for another seed replaces the
    finished run's .hydra/overrides.yaml and config.yaml. Now: hydra.output_subdir is refused in one line before
    Hydra writes anything (run.unfit_folder_setting)."""
    run_dir = tmp_path / "run"
    first = cli("src.search", "+task=sst2", *SMOKE, data_dir=data, tmp=tmp_path, run_dir=run_dir, timeout=60)
    assert first.returncode == 0, first.stderr[-2000:]
    recorded = (run_dir / ".hydra" / "overrides.yaml").read_text()
    config = (run_dir / ".hydra" / "config.yaml").read_text()
    again = cli("src.search", "+task=sst2", *SMOKE, "seed=3", "hydra.output_subdir=.hydra", data_dir=data,
                tmp=tmp_path, run_dir=run_dir, timeout=60)
    _refused_in_one_line(again)
    assert (run_dir / ".hydra" / "overrides.yaml").read_text() == recorded
    assert (run_dir / ".hydra" / "config.yaml").read_text() == config


def test_output_subdir_other_than_null_is_refused_before_hydra_writes_anything():
    """The refusal the test above sees through the command line (run.unfit_folder_setting, before Hydra writes
    .hydra/): a value other than null, the project's, names the setting."""
    from src.pipeline.run import unfit_folder_setting

    for value in (".hydra", "'my record'"):
        said = unfit_folder_setting(["+task=sst2", f"hydra.output_subdir={value}"], {})
        assert said is not None and said.startswith("hydra.output_subdir: the run writes its .hydra/ record itself")


@pytest.mark.parametrize("module,args", [
    ("src.search", ("+task=sst2", "--cfg", "hydra", "--resolve")),  # hydra.run.dir names ${paths.output_dir}
    ("src.bench", ("--cfg", "hydra", "--resolve")),
    ("src.search", ("-m", "+task=sst2", "seed=0,1", "--cfg", "job")),  # Only one of --run, --multirun, --cfg ...
    ("src.retrain", ("--shell-completion",)),  # Expecting one subcommand from ['install', 'uninstall', 'query']
], ids=["search-cfg-hydra-resolve", "bench-cfg-hydra-resolve", "multirun-with-cfg", "shell-completion-bare"])
def test_hydra_flag_errors_are_not_tracebacks(module, args, data, tmp_path):
    """Was: errors Hydra raises outside config composition (ValueError, omegaconf InterpolationKeyError) are printed as
    full tracebacks with exit status 1: hydra_entry sets HYDRA_FULL_ERROR=1 but only catches
    ConfigCompositionException, MissingConfigException and OverrideParseException. Now: hydra_entry says a
    ValueError or OmegaConf error raised before any job started in one error line, status 2 (a job's keeps its
    traceback)."""
    proc = cli(module, *args, data_dir=data, tmp=tmp_path, timeout=30)
    assert "Traceback" not in proc.stderr, proc.stderr[-1500:]
    if proc.returncode != 0:
        _refused_in_one_line(proc)


def test_a_user_primary_config_can_extend_search(data, tmp_path):
    """Was: a user's primary config extending conf/search.yaml (-cd DIR -cn mine, defaults: [search, _self_]; Hydra's
    documented way to keep one's own settings) is refused: "In 'search': Overriding hydra.searchpath is only
    supported from the primary config", since conf/search.yaml sets hydra.searchpath (experiments/conf). Now:
    conf/search.yaml and conf/retrain.yaml set no hydra.searchpath; the experiment configs are added by a Hydra
    search-path plugin (hydra_plugins/autoattend_experiments), so a primary config of one's own extending search
    composes."""
    own = tmp_path / "myconf"
    own.mkdir()
    (own / "mine.yaml").write_text("defaults:\n  - search\n  - override budget: smoke\n  - _self_\nseed: 5\n")
    proc = cli("src.search", "-cd", str(own), "-cn", "mine", "+task=sst2", "--cfg", "job", data_dir=data,
               tmp=tmp_path, timeout=30)
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert "seed: 5" in proc.stdout
    proc = cli("src.search", "-cd", str(own), "-cn", "mine", "+experiment=cora_rerank10", "--cfg", "job",
               data_dir=data, tmp=tmp_path, timeout=30)  # the experiment configs are still found
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert "seed: 5" in proc.stdout and "name: cora_rerank10" in proc.stdout


def test_env_set_without_plus_is_told_to_add_it(data, tmp_path):
    """Was: hydra.job.env_set.FOO=bar (no +) gets 'no such setting (misspelt, ...); the command with --cfg job ...
    lists the settings': the rewrite of Hydra's advice in hydra_entry also drops it for hydra.* keys, where adding
    with + is right (and +hydra.job.env_set.FOO=bar works). Now: hydra_entry keeps Hydra's advice to add with + for
    hydra.* keys."""
    proc = cli("src.search", "+task=sst2", *SMOKE, "hydra.job.env_set.FOO_X=bar", data_dir=data, tmp=tmp_path,
               run_dir=tmp_path / "run", timeout=30)
    _refused_in_one_line(proc)
    assert "+hydra.job.env_set.FOO_X" in _error_lines(proc.stderr)[0]


# ---- behaviours verified right ----------------------------------------------------------------------------------

@pytest.mark.parametrize("module", [
    "src.search",
    pytest.param("src.retrain", marks=pytest.mark.slow),  # each flag with src.search; its --help: tests/test_config.py
])
@pytest.mark.parametrize("flag", [("--hydra-help",), ("--info", "defaults-tree"), ("--info", "searchpath"),
                                  ("--info", "plugins"), ("--cfg", "job", "--package", "task"),
                                  ("--cfg", "all", "--resolve")])
def test_hydra_information_flags(module, flag, data, tmp_path):
    proc = cli(module, "+task=cora", *flag, data_dir=data, tmp=tmp_path, timeout=30)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-1500:]
    assert proc.stdout.strip()
    assert not (tmp_path / "out").exists()  # no run folder made


def test_env_set_added_with_plus_reaches_the_run(data, tmp_path):
    """``+hydra.job.env_set.AUTOATTEND_DATA_DIR=...`` sets the data folder for the job (paths.data_dir reads it)."""
    env_less = {k: v for k, v in os.environ.items() if k != "AUTOATTEND_DATA_DIR"}
    proc = subprocess.run([sys.executable, "-m", "src.search", "+task=sst2", *SMOKE,
                           f"+hydra.job.env_set.AUTOATTEND_DATA_DIR={data}", f"hydra.run.dir={tmp_path / 'run'}"],
                          cwd=ROOT, env={**env_less, "AUTOATTEND_CACHE_DIR": str(tmp_path / "cache"),
                                         "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "run" / "summary.json").exists()


@pytest.mark.slow  # -cd's folder beside the project's configs: test_a_user_primary_config_can_extend_search; a missing
# option in one line: tests/test_pipeline.py::test_hydra_config_errors_are_one_line
def test_config_dir_adds_an_option_and_a_resume_without_it_is_one_line(data, tmp_path):
    """``-cd DIR budget=mine`` (an option of the user's own under DIR/budget/) runs; the same run folder without
    ``-cd`` is refused in one line naming the missing option."""
    own = tmp_path / "myconf" / "budget"
    own.mkdir(parents=True)
    shutil.copy(ROOT / "conf" / "budget" / "smoke.yaml", own / "mine.yaml")
    run_dir = tmp_path / "run"
    proc = cli("src.search", "-cd", str(own.parent), "+task=sst2", "budget=mine", "hardware.kernels=torch",
               data_dir=data, tmp=tmp_path, run_dir=run_dir, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "budget=mine" in (run_dir / ".hydra" / "overrides.yaml").read_text()
    again = cli("src.search", "+task=sst2", "budget=mine", "hardware.kernels=torch", data_dir=data, tmp=tmp_path,
                run_dir=run_dir, timeout=30)
    _refused_in_one_line(again)
    assert "budget/mine" in again.stderr


def test_an_interpolated_override_is_recorded_resolved(data, tmp_path):
    """``seed='${oc.decode:${oc.env:SEED,3}}'``: the run's settings hold the value it ran with, and a resume under
    another SEED is refused naming the change."""
    run_dir = tmp_path / "run"
    argv = [sys.executable, "-m", "src.search", "+task=sst2", *SMOKE, "seed='${oc.decode:${oc.env:SEED,3}}'",
            f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "AUTOATTEND_DATA_DIR": str(data), "AUTOATTEND_CACHE_DIR": str(tmp_path / "cache"),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    first = subprocess.run(argv, cwd=ROOT, env={**env, "SEED": "4"}, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr[-2000:]
    assert '"seed": 4' in (run_dir / "run_settings.json").read_text()
    again = subprocess.run(argv, cwd=ROOT, env={**env, "SEED": "5"}, capture_output=True, text=True, timeout=60)
    _refused_in_one_line(again)
    assert "seed: 4 -> 5" in again.stderr

"""What a run on a CUDA device depends on, checked without one: the device-dispatch decisions and
the state a GPU run keeps, with ``torch.cuda`` stood in for where needed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest
import torch

from src.lit.modules import TorchRngCheckpoint
from tests.conftest import compose_config
from tests.helpers import ROOT


class _FakeCuda:
    """``torch.cuda``'s generator functions over two devices' states held here."""

    def __init__(self, monkeypatch, states: list[torch.Tensor] | None, initialized: bool = True):
        self.states = states
        self.set_calls: list[tuple[int, torch.Tensor]] = []
        monkeypatch.setattr(torch.cuda, "is_available", lambda: states is not None)
        monkeypatch.setattr(torch.cuda, "is_initialized", lambda: initialized)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 0 if states is None else len(states))
        monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [s.clone() for s in states])
        monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device=0: self.set_calls.append((device, state)))


def test_cuda_generators_travel_with_the_checkpoint(monkeypatch):
    """A child's (or the graph supernet's) dropout masks on a GPU come from the CUDA generators,
    not the CPU one: a resumed GPU fit draws an uninterrupted fit's masks only when their states are
    saved and restored too."""
    states = [torch.arange(4, dtype=torch.uint8), torch.arange(4, 8, dtype=torch.uint8)]
    cuda = _FakeCuda(monkeypatch, states)
    checkpoint: dict = {}
    TorchRngCheckpoint().on_save_checkpoint(checkpoint)
    assert [s.tolist() for s in checkpoint["torch_cuda_rng_states"]] == [s.tolist() for s in states]
    cpu_before = torch.get_rng_state()
    TorchRngCheckpoint().on_load_checkpoint(checkpoint)
    assert [(i, s.tolist()) for i, s in cuda.set_calls] == [(0, [0, 1, 2, 3]), (1, [4, 5, 6, 7])]
    assert torch.equal(torch.get_rng_state(), cpu_before)


def test_cpu_runs_keep_the_checkpoint_they_had(monkeypatch):
    """No CUDA, or CUDA present but never used (``hardware=cpu`` on a GPU machine): nothing CUDA is
    saved (and CUDA is not initialised to save it); a GPU checkpoint loaded without a GPU restores
    the CPU state only."""
    _FakeCuda(monkeypatch, [torch.zeros(4, dtype=torch.uint8)], initialized=False)
    checkpoint: dict = {}
    TorchRngCheckpoint().on_save_checkpoint(checkpoint)
    assert set(checkpoint) == {"torch_rng_state"}
    no_gpu = _FakeCuda(monkeypatch, None)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # so that only the availability check stops it
    cpu_state = torch.get_rng_state()
    torch.manual_seed(123)
    TorchRngCheckpoint().on_load_checkpoint({"torch_rng_state": cpu_state,
                                             "torch_cuda_rng_states": [torch.zeros(4, dtype=torch.uint8)]})
    assert no_gpu.set_calls == [] and torch.equal(torch.get_rng_state(), cpu_state)


def test_bench_measures_the_graph_figures_on_the_run_device(monkeypatch):
    """``python -m src.bench hardware=gpu``: the graph figures are measured on the GPU as the text
    ones are (they ran on the CPU, next to a machine record saying cuda)."""
    import src.bench_graph
    import src.bench_harness
    from omegaconf import OmegaConf

    seen = {}
    monkeypatch.setattr(src.bench_graph, "graph_figures", lambda *args, **kwargs: seen.update(kwargs) or {})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    cfg = OmegaConf.create({"hardware": {"accelerator": "gpu"}, "paths": {"data_dir": "d", "cache_dir": "c"},
                            "bench": {"reps": 5, "warmup": 1}, "seed": 0})
    src.bench_harness.graph_figures_if_available(cfg)
    assert torch.device(seen["device"]).type == "cuda"
    cfg.hardware.accelerator = "cpu"
    src.bench_harness.graph_figures_if_available(cfg)
    assert torch.device(seen["device"]).type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the bench would run")
def test_bench_on_gpu_without_one_is_one_error_line(tmp_path):
    """``python -m src.bench hardware=gpu`` without a GPU: one ``error:`` line and exit status 2 (as
    ``src.search``), before the kernels are built; it was a Hydra traceback, exit status 1."""
    env = {**os.environ, "AUTOATTEND_ALLOCATOR": "system"}
    done = subprocess.run([sys.executable, "-m", "src.bench", "hardware=gpu", f"paths.output_dir={tmp_path}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == ["error: hardware=gpu but torch sees no CUDA device "
                                                "(use hardware=cpu or hardware=auto)"]


@pytest.mark.parametrize("override, message", [
    ("hardware.matmul_precision=fast", "error: hardware.matmul_precision: expected one of highest, high, medium "
                                       "or null, got 'fast'"),
    ("bench.score_bucket_size=0", "error: bench.score_bucket_size: expected an integer >= 1 or null, got 0"),
    ("bench.arch_workers=many", "error: bench.arch_workers: expected auto or an integer >= 1, got 'many'"),
    ("bench.optimizer_state=int8", "error: bench.optimizer_state: expected one of float32, bfloat16, got 'int8'"),
    # Hydra's own errors: its several lines and exit status 1 before, as src.search says them now
    ("bench.foo=1", "error: bench.foo: no such setting (misspelt, or one of a task or option not chosen?); the "
                    "command with --cfg job in place of "
                    "this override lists the settings"),
    ("budget=smoke", "error: Could not override 'budget'. No match in the defaults list. To append to your default "
                     "list use +budget=smoke"),
    # an added key nothing reads: it ran the full paper-size bench
    ("+bench.foo=1", "error: +bench.foo=1: adds bench.foo, which the config does not have, so nothing would read it "
                     "(a misspelt setting?); the command with --cfg job in place of this override lists the settings"),
    # added nodes the bench never reads: it ran the full paper-size bench
    ("+task=sst2", "error: task: not settings of src.bench (added by an override such as +task=... or +budget=...); "
                   "it measures the paper's supernet configuration, set by seed, bench, paths, hardware, space"),
])
def test_bench_refuses_a_bad_setting_in_one_line_before_measuring(tmp_path, override, message):
    """A bad bench or hardware setting was a traceback, from torch or halfway through the figures
    (after loading the data and building the supernet); now one line, exit status 2, nothing written,
    and before torch is imported (about 0.4 s rather than 4-5 s: the interpreter's import log,
    PYTHONPROFILEIMPORTTIME, shows neither torch nor the harness)."""
    env = {**os.environ, "AUTOATTEND_ALLOCATOR": "system", "PYTHONPROFILEIMPORTTIME": "1"}
    done = subprocess.run([sys.executable, "-m", "src.bench", override, f"paths.output_dir={tmp_path}",
                           f"hydra.run.dir={tmp_path}/run"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    lines = done.stderr.strip().splitlines()
    imported = {line.rsplit("|", 1)[-1].strip() for line in lines if line.startswith("import time:")}
    assert done.returncode == 2, done.stderr[-2000:]
    assert [line for line in lines if not line.startswith("import time:")] == [message]
    assert "hydra" in imported and not {"torch", "src.bench_harness"} & imported
    assert not (tmp_path / "run" / "bench.json").exists()


@pytest.mark.parametrize("override, line", [
    ("bench.retrain_dim=100", "bench.retrain_dim=100 is not divisible by bench.heads=8: each head takes "
                              "retrain_dim/heads channels"),
    ("seed=-1", "seed: expected an integer >= 0, got -1"),
    # a traceback from torch's generator after it loaded (exit status 1); src.search's bound
    ("seed=18446744073709551616", "seed: expected an integer from 0 to 2147483647, got 18446744073709551616"),
    ("seed=2147483647", None),
    ("bench.recompute=yes", "bench.recompute: expected true or false, got 'yes'"),
    ("bench.optimizer_offload=1", "bench.optimizer_offload: expected true or false, got 1"),
    ("bench.warmup=-1", "bench.warmup: expected an integer >= 0, got -1"),
    ("bench.reps=0", "bench.reps: expected an integer >= 1, got 0"),
    ("hardware.threads=0", None),  # torch's default
    ("bench.warmup=0", None),  # no untimed repetition (the graph figures take one anyway)
])
def test_the_bench_config_check_names_the_key_or_accepts_the_bound(override, line):
    """:func:`~src.pipeline.checks.check_bench_config`, in process (the command line is
    :func:`test_bench_refuses_a_bad_setting_in_one_line_before_measuring`): the exact line for a
    bad ``bench.*`` value or seed, and the bounds that pass."""
    from src.pipeline.checks import check_bench_config
    from src.utils.errors import AutoAttendError

    cfg = compose_config("bench", [override])
    if line is None:
        check_bench_config(cfg)
        return
    with pytest.raises(AutoAttendError) as err:
        check_bench_config(cfg)
    assert str(err.value) == line


# SIGINT's case in the fast suite; a SIGTERM stop said as such: tests/test_pipeline.py's stop tests
@pytest.mark.parametrize("signum", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)])
def test_a_stopped_bench_says_so_in_one_line_and_writes_nothing(tmp_path, signum):
    """Ctrl-C or SIGTERM while the figures are measured: one ``interrupted:`` line and exit status
    128 + the signal (was a KeyboardInterrupt traceback, or no word at all for SIGTERM); no bench.json."""
    env = {**os.environ, "AUTOATTEND_ALLOCATOR": "system"}
    command = [sys.executable, "-m", "src.bench", "hardware=cpu", "bench.num_layers=3", "bench.dim=16",
               "bench.heads=2", "bench.reps=1000", f"paths.data_dir={tmp_path}/nothing",
               f"paths.cache_dir={tmp_path}/cache", f"hydra.run.dir={tmp_path}/run"]
    with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as proc:
        while not (line := proc.stdout.readline()).startswith("machine:"):  # the figures start after it
            assert line, proc.stderr.read()[-2000:]
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, stderr[-2000:]
    by = " (SIGTERM)" if signum == signal.SIGTERM else ""
    assert stderr.strip().splitlines()[-1] == (f"interrupted{by}: the benchmark stopped before its last figure; "
                                               "no bench.json was written")
    assert "Traceback" not in stderr and not (tmp_path / "run" / "bench.json").exists()


def test_a_data_error_while_measuring_is_one_line(tmp_path):
    """Unreadable SST-5 trees (found once the figures have started, after the config checks): one
    ``error:`` line naming the file and exit status 2, as src.search says it, and no bench.json; it
    was Hydra's "Error executing job" line, a traceback and exit status 1."""
    trees = tmp_path / "data" / "sst" / "trees"
    trees.mkdir(parents=True)
    for split in ("train", "dev", "test"):
        (trees / f"{split}.txt").write_text("this is not a tree\n")
    env = {**os.environ, "AUTOATTEND_ALLOCATOR": "system"}
    command = [sys.executable, "-m", "src.bench", "hardware=cpu", "hardware.kernels=torch", "bench.num_layers=3",
               "bench.dim=16", "bench.heads=2", f"paths.data_dir={tmp_path}/data", f"paths.cache_dir={tmp_path}/cache",
               f"hydra.run.dir={tmp_path}/run"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [f"error: {trees / 'train.txt'}, line 1: malformed PTB tree: token "
                                                "'this' outside any bracket; expected '(label ...)'"]
    assert not (tmp_path / "run" / "bench.json").exists()
    # and the run's log ends with it too, as the other entry points' logs do
    logs = list((tmp_path / "run").glob("*.log"))
    assert logs and any(done.stderr.strip() in p.read_text() for p in logs), logs


def test_bench_builds_no_cpu_kernels_for_a_gpu_run(monkeypatch):
    """The fused kernels take CPU tensors only: a GPU bench does not build them (a build was the
    first thing ``src.bench hardware=gpu`` did), and its machine facts say torch's ops ran."""
    import src.bench_harness

    builds = []
    monkeypatch.setattr(src.bench_harness.cpu_kernels, "kernel_error", lambda: builds.append(1))
    monkeypatch.setattr(src.bench_harness.cpu_kernels, "get_backend", lambda: "auto")
    fact = src.bench_harness.kernels_fact(torch.device("cuda"))
    assert builds == [] and fact.startswith("torch ops (cuda tensors")
    src.bench_harness.kernels_fact(torch.device("cpu"))
    assert builds == [1]


@pytest.mark.parametrize("precision, tf32", [(None, False), ("highest", False), ("high", True)])
def test_float32_precision_covers_cudnn_too(precision, tf32):
    """``hardware.matmul_precision`` unset or ``highest`` means float32 in cuDNN's convolutions and
    RNNs as well as in matmuls (torch allows TF32 in cuDNN by default: on an H200 that changed
    logits by 1.6e-3 and a candidate's score); ``high`` allows TF32 in both."""
    from src.pipeline.common import set_float32_precision

    before = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = not tf32
        assert set_float32_precision(precision) == (precision or "highest")
        assert torch.get_float32_matmul_precision() == (precision or "highest")
        assert torch.backends.cudnn.allow_tf32 is tf32
    finally:
        torch.set_float32_matmul_precision(before[0])
        torch.backends.cudnn.allow_tf32 = before[1]


def test_run_record_names_the_gpu_and_the_float32_precision(monkeypatch):
    """A run's machine facts say which GPU it ran on and in what float32 precision (the first GPU
    runs' summaries said only ``cuda: true``)."""
    from src.pipeline.common import env_summary, set_float32_precision

    before = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    try:
        set_float32_precision("high")
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA H200")
        facts = env_summary("cuda")
        assert (facts["gpu"], facts["float32_precision"], facts["cudnn_tf32"]) == ("NVIDIA H200", "high", True)
        assert facts["kernels"].startswith("torch ops (cuda tensors")  # not the CPU kernels' build state
        assert "gpu" not in env_summary("cpu")  # a hardware=cpu run on a machine with a GPU
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        set_float32_precision(None)
        facts = env_summary()
        assert "gpu" not in facts and (facts["float32_precision"], facts["cudnn_tf32"]) == ("highest", False)
        # and with what code: the libraries' versions, and the commit of a git checkout (CI clones one)
        assert facts["versions"]["torch"] == torch.__version__ and facts["versions"]["lightning"]
        assert facts["commit"] is None or re.fullmatch(r"[0-9a-f]{40}(\+changes)?", facts["commit"])
    finally:
        torch.set_float32_matmul_precision(before[0])
        torch.backends.cudnn.allow_tf32 = before[1]


@pytest.mark.parametrize("overrides, label", [
    ([], None),
    (["hardware=gpu"], None),  # matmul_precision: highest
    (["hardware.precision=32"], None),
    (["hardware.precision=bf16-mixed"], "hardware.precision=bf16-mixed"),
    (["hardware=gpu", "hardware.precision=16-mixed", "hardware.matmul_precision=high"], "hardware.precision=16-mixed"),
    (["hardware=gpu", "hardware.matmul_precision=high"], "hardware.matmul_precision=high"),
    (["hardware.precision=64-true"], None),  # above float32, not below
    (["hardware.precision=64", "hardware.matmul_precision=high"], None),  # float64 products ignore it
    (["hardware.precision=bf16"], "hardware.precision=bf16"),
])
def test_lower_precision_names_the_settings_below_float32(overrides, label):
    from src.pipeline.common import lower_precision

    assert lower_precision(compose_config("search", ["+task=sst2", *overrides])) == label


def test_each_invocation_records_what_can_move_the_numbers_and_a_change_is_warned_about(tmp_path, caplog):
    """A resume with other threads or kernels was accepted in silence and recorded as if the whole
    run had used them (summary.json holds the last invocation's machine facts only)."""
    import json
    import logging

    from src.pipeline import run
    from src.pipeline.run_settings import INVOCATIONS_FILE, check_run_settings

    before = torch.get_num_threads()
    try:
        with caplog.at_level(logging.WARNING, logger="src"):
            torch.set_num_threads(1)
            run._record_invocation(compose_config("search", ["+task=sst2", "hardware.kernels=fused"]), tmp_path)
            run._record_invocation(compose_config("search", ["+task=sst2", "hardware.kernels=fused"]), tmp_path)
            assert "this invocation computes with" not in caplog.text
            torch.set_num_threads(2)
            run._record_invocation(compose_config("search", ["+task=sst2", "hardware.kernels=torch"]), tmp_path)
    finally:
        torch.set_num_threads(before)
    assert ("this invocation computes with threads 2, kernels torch; the run's last one with threads 1, kernels "
            "fused") in caplog.text
    invocations = json.loads((tmp_path / INVOCATIONS_FILE).read_text())["invocations"]
    assert [(i["device"], i["threads"], i["kernels"]) for i in invocations] == [
        ("cpu", 1, "fused"), ("cpu", 1, "fused"), ("cpu", 2, "torch")]
    assert all("started" in i and "argv" in i and "commit" in i for i in invocations)
    # under autocast (bf16, the alias too) the ops are torch's, whatever hardware.kernels says
    from src.pipeline.common import kernels_in_use

    for precision, kernels in (("bf16", "torch"), ("bf16-mixed", "torch"), ("64", "fused"), ("32", "fused")):
        cfg = compose_config("search", ["+task=sst2", "hardware.kernels=fused", f"hardware.precision={precision}"])
        assert kernels_in_use(cfg, "cpu") == kernels, precision
    # a damaged record is said and started again, not kept damaged
    (tmp_path / INVOCATIONS_FILE).write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="src"):
        run._record_invocation(compose_config("search", ["+task=sst2", "hardware.kernels=fused"]), tmp_path)
    assert "unreadable" in caplog.text and "starts again from this one" in caplog.text
    assert len(json.loads((tmp_path / INVOCATIONS_FILE).read_text())["invocations"]) == 1
    # a graph task's propagation uses the kernels too (it was recorded as using none); a fresh run in
    # the folder starts the record again
    check_run_settings(tmp_path, {"entry": "search"})
    assert not (tmp_path / INVOCATIONS_FILE).exists()
    for kernels in ("fused", "torch"):
        run._record_invocation(compose_config("search", ["+task=cora", f"hardware.kernels={kernels}"]), tmp_path)
    assert [i["kernels"] for i in json.loads((tmp_path / INVOCATIONS_FILE).read_text())["invocations"]] == [
        "fused", "torch"]


def test_a_run_called_as_a_library_function_releases_its_folder(tmp_path):
    """The run folder was released by the command-line wrapper only: a run_retrain / run_search
    called directly kept it held, and the next run in that folder in the same process was refused
    as "in use by another command"."""
    from src.pipeline import run
    from src.utils.errors import AutoAttendError

    cfg = compose_config("retrain", ["+task=sst2", f"arch={tmp_path / 'none.yaml'}", f"paths.output_dir={tmp_path}"])
    for _ in range(2):  # the second is refused for the architecture again, not for the folder
        with pytest.raises(AutoAttendError, match="no such file and no built-in architecture"):
            run.run_retrain(cfg)
        assert run._held_run_dirs == [] and (tmp_path / run.RUN_LOCK_FILE).exists()


def test_the_kernels_in_use_follow_the_device_and_whether_auto_could_build_them(monkeypatch):
    """What an invocation records as its kernels: torch on a GPU whatever ``hardware.kernels``
    says (the kernels take CPU tensors only), and with ``auto`` torch where the kernels cannot be
    built, fused where they can (mutation audit 2026-12-05)."""
    from src.models import cpu_kernels
    from src.pipeline.common import kernels_in_use

    fused = compose_config("search", ["+task=sst2", "hardware.kernels=fused"])
    assert kernels_in_use(fused, "cpu") == "fused"
    assert kernels_in_use(fused, "cuda") == "torch" and kernels_in_use(fused, torch.device("cuda", 0)) == "torch"
    auto = compose_config("search", ["+task=sst2", "hardware.kernels=auto"])
    monkeypatch.setattr(cpu_kernels, "kernel_error", lambda: "no C++ compiler")
    assert kernels_in_use(auto, "cpu") == "torch"
    monkeypatch.setattr(cpu_kernels, "kernel_error", lambda: None)
    assert kernels_in_use(auto, "cpu") == "fused"


@pytest.mark.parametrize("reps, warned", [(2, True), (5, False)])
def test_fewer_timed_repetitions_than_a_record_takes_are_said(tmp_path, monkeypatch, caplog, reps, warned):
    """``bench.reps`` below 5 is allowed for a quick look, but its text figures are not medians of
    the 5 timed repetitions the benchmark's figures are defined over: said once, before measuring,
    rather than left for a reader of ``bench.json``'s ``config`` to notice."""
    import logging

    from omegaconf import open_dict

    import src.bench as bench
    import src.bench_harness as harness

    cfg = compose_config("bench", ["hardware=cpu", "hardware.kernels=torch", f"bench.reps={reps}"])
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "out")
    monkeypatch.setattr(harness, "text_figures", lambda cfg: {})
    monkeypatch.setattr(harness, "graph_figures_if_available", lambda cfg: {})
    with caplog.at_level(logging.WARNING, logger="src.bench"):
        bench.run_bench(cfg)
    said = [r.getMessage() for r in caplog.records if "bench.reps" in r.getMessage()]
    assert said == ([f"bench.reps={reps}: the text figures are medians of fewer than the 5 timed repetitions the "
                     "benchmark's figures are defined over; fine for a quick look, not for a record"] if warned else [])
    assert json.loads((tmp_path / "out" / "bench.json").read_text())["config"]["reps"] == reps


def test_a_config_without_the_kernel_or_precision_setting_reads_as_auto_in_float32(monkeypatch):
    """A config that lacks ``hardware.kernels`` / ``hardware.precision`` (written before the setting
    existed; absent keys pass the checks) is ``auto`` in ``32-true``: not recorded as torch, and its
    first kernel build still timed as a stage of its own (mutation audit 2026-12-06)."""
    from omegaconf import open_dict

    from src.models import cpu_kernels
    from src.pipeline.common import kernels_in_use, kernels_to_build

    cfg = compose_config("search", ["+task=sst2", "hardware=cpu"])
    with open_dict(cfg):
        del cfg.hardware["kernels"]
        del cfg.hardware["precision"]
    monkeypatch.setattr(cpu_kernels, "build_pending", lambda: True)
    monkeypatch.setattr(cpu_kernels, "kernel_error", lambda: None)
    assert kernels_in_use(cfg, "cpu") == "fused" and kernels_to_build(cfg, "cpu")
    monkeypatch.setattr(cpu_kernels, "kernel_error", lambda: "no C++ compiler")
    assert kernels_in_use(cfg, "cpu") == "torch"  # auto, not fused: torch where they cannot be built


def test_a_run_records_every_librarys_version_and_its_differences_from_the_lock(monkeypatch):
    """``machine.versions`` names Python (its version number, not the build banner) and each library
    the numbers depend on, ``None`` for one not installed rather than leaving it out; and
    ``machine.lock_differences`` is :func:`lock.differences` (mutation audit 2026-12-06)."""
    import importlib.metadata
    import platform

    from src.pipeline.common import env_summary, library_versions
    from src.utils import lock

    real = importlib.metadata.version

    def version(package):
        if package == "datasets":
            raise importlib.metadata.PackageNotFoundError(package)
        return real(package)

    monkeypatch.setattr(importlib.metadata, "version", version)
    versions = library_versions()
    assert set(versions) == {"python", "torch", "lightning", "torch_geometric", "torchmetrics", "numpy", "datasets",
                             "hydra-core"}
    assert versions["python"] == platform.python_version() and versions["datasets"] is None
    assert versions["numpy"] == real("numpy")
    differences = {"numpy": {"installed": "2.0", "locked": "1.0"}}
    monkeypatch.setattr(lock, "differences", lambda: differences)
    assert env_summary()["lock_differences"] is differences

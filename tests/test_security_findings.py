"""Security walk, "files from someone else" (2026-12-07): what reading a file one did not make can do.

Researchers share run directories (a tar of ``outputs/...``: ``.hydra/config.yaml``, ``run_settings.json``,
``search/best_arch.yaml``, ``*.ckpt``, ``retrain/seed_*/model.pt``, ...), architecture files from a paper's repository,
graph files and data folders from the web, and cache folders (``paths.cache_dir``, which docs/usage.md lets several
runs, machines and containers share). Users then run ``src.evaluate RUN_DIR``, ``src.predict``, ``src.show``,
``src.report``, ``src.retrain arch=FILE``, ``src.search +task=graph_file task.path=FILE``, or resume the received run.
The walk looked for reads of such files that (a) execute code (pickles, Hydra ``_target_``, YAML tags), (b) write
outside the run folder the user named (symlinks in a received run, folders named by its records), (c) exhaust the
machine from a tiny crafted file (YAML aliases, a class id or a shape claiming 10^9 or more), and at whether the docs
say what is safe to load.

Each finding was a strict xfail asserting the correct behaviour (no code run: a payload that would create the file
``pwned`` in the test's folder must not create it; nothing written outside; a one-line ``error:`` refusal, exit status
non-zero, no traceback), and is mended (its docstring says "Was: ... Now: ...", session 51). The plain tests protect the
reads verified safe (weights-only ``torch.load``, ``np.load(allow_pickle=False)``, ``yaml.safe_load`` and OmegaConf's
safe loader) that no other test covered with an executable payload.

Payloads run at most ``open(<tmp>/pwned, "w").close()``. Commands that may allocate without bound run under an
address-space limit (``RLIMIT_AS``) and a timeout, so that a regression cannot exhaust the machine running the suite.
"""

from __future__ import annotations

import builtins
import io
import json
import pickle
import re
import resource
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.helpers import ROOT, cli_command, write_tiny_planetoid, write_tiny_sst

SMOKE = ("budget=smoke", "hardware.kernels=torch")
GIB = 1 << 30


class Payload:
    """Pickles as a call of ``builtins.exec`` that creates ``marker``: what a crafted pickle runs when unpickled.
    (``exec`` rather than ``os.system``: torch's weights-only refusal of it names ``add_safe_globals``, the text on
    which PyG's ``torch_load`` falls back to a full unpickling.)"""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return builtins.exec, (f"open({str(self.marker)!r}, 'w').close()",)


def _run(module: str, *args: str, data_dir: Path, tmp: Path, run_dir: Path | None = None,
         memory_gib: float | None = None, timeout: float = 120) -> subprocess.CompletedProcess | None:
    """``python -m <module> <args>`` as :func:`tests.helpers.cli` runs it (one intra-op thread), optionally under an
    address-space limit of ``memory_gib``; ``None`` when it ran past ``timeout`` seconds (killed)."""
    command = cli_command(module, *args, data_dir=data_dir, tmp=tmp, run_dir=run_dir)
    command["env"]["OMP_NUM_THREADS"] = "1"
    limit = None if memory_gib is None else int(memory_gib * GIB)

    def limited():
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    try:
        return subprocess.run(**command, capture_output=True, text=True, timeout=timeout, preexec_fn=limited)
    except subprocess.TimeoutExpired:
        return None


def _refused_in_one_line(proc: subprocess.CompletedProcess | None, *needles: str) -> str:
    """The command ended (no timeout) with a non-zero status and one ``error:`` line, no traceback; returns the line
    after checking that it names each of ``needles``."""
    assert proc is not None, "still running at the timeout (killed)"
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, (proc.returncode, proc.stderr[-2000:])
    assert len(errors) == 1, proc.stderr[-2000:]
    for needle in needles:
        assert needle in errors[0], errors[0][:2000]
    return errors[0]


def _copy_run(run: Path, to: Path) -> Path:
    shutil.copytree(run, to, symlinks=True)
    (to / ".run.lock").unlink(missing_ok=True)
    return to


def _edit_config(run: Path, edit) -> None:
    path = run / ".hydra" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    edit(config)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def _alias_bomb(depth: int) -> str:
    """YAML anchors ``a0`` ... ``a<depth>``, each a list of nine of the one before: a few hundred bytes naming
    9^(depth + 1) strings once expanded."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, depth + 1)]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("security_data")
    write_tiny_sst(root, n_train=40, n_dev=10, n_test=10)
    write_tiny_planetoid(root)
    return root


def _finished_search(task: str, data: Path, tmp: Path) -> tuple[Path, Path]:
    """A finished ``budget=smoke`` search of ``task`` in ``tmp``, as a colleague would send it; (its folder, its
    cache folder)."""
    proc = _run("src.search", f"+task={task}", *SMOKE, data_dir=data, tmp=tmp, run_dir=tmp / "run")
    assert proc is not None and proc.returncode == 0, proc and proc.stderr[-3000:]
    return tmp / "run", tmp / "cache"


@pytest.fixture(scope="module")
def sst_run(data, tmp_path_factory) -> tuple[Path, Path]:
    """A finished SST-2 search (:func:`_finished_search`)."""
    return _finished_search("sst2", data, tmp_path_factory.mktemp("security_sst"))


@pytest.fixture(scope="module")
def cora_run(data, tmp_path_factory) -> tuple[Path, Path]:
    """A finished Cora search (:func:`_finished_search`; its cache holds PyG's processed Planetoid)."""
    return _finished_search("cora", data, tmp_path_factory.mktemp("security_cora"))


# ---- (a) code executed by reading a file ---------------------------------------------------------------------------

def test_evaluating_a_received_run_runs_no_code_from_its_hydra_config(sst_run, data, tmp_path):
    """``src.evaluate RUN_DIR`` on a run whose ``.hydra/config.yaml`` gives the DataModule's ``name`` as a nested
    ``_target_: torch.load`` of a pickle embedded in the config: no code runs, and the config is refused in one line
    naming the key. (Also reached by ``src.predict`` on a graph run, and on a text run whose model files predate
    ``text_input``.)

    Was: src.evaluate / src.predict instantiate task.datamodule from the received run's .hydra/config.yaml with
    Hydra's instantiate (pipeline/common.py instantiate_datamodule), nested _target_s included: Hydra 1.3.8's target
    blocklist stops os.system, subprocess.* and exec, but torch.load(weights_only=False) of bytes the config embeds
    (!!binary), asyncio.create_subprocess_shell, builtins.open(..., 'w') and pathlib.Path.touch all pass; mend: take
    the DataModule class from the project's own tasks (conf/task, run_settings.OWN_DATA_MODULES) and refuse any
    _target_ in the run's config other than that class, giving only plain values to it. Now: src.evaluate's
    run_config (src.evaluate and src.predict) refuses, in one line, any _target_ in the run's config but
    task.datamodule's, and that one unless a DataModule this checkout's conf/task/*.yaml names (check_targets)."""
    run = _copy_run(sst_run[0], tmp_path / "received")
    marker = tmp_path / "pwned"
    pickled = io.BytesIO()
    import torch

    torch.save(Payload(marker), pickled)
    load = {"_target_": "torch.load", "f": {"_target_": "io.BytesIO", "_args_": [pickled.getvalue()]},
            "weights_only": False}
    _edit_config(run, lambda config: config["task"]["datamodule"].update(name=load))
    proc = _run("src.evaluate", str(run), data_dir=data, tmp=tmp_path)
    assert not marker.exists(), "the config's _target_ ran: it unpickled the payload, which created pwned"
    _refused_in_one_line(proc, "_target_")


def test_resuming_a_received_run_does_not_unpickle_its_checkpoint(sst_run, data, tmp_path):
    """Resuming a received run whose supernet had not finished (no ``supernet/DONE``) and whose ``last.ckpt`` holds a
    pickle payload: the payload does not run, and the checkpoint is refused in one line naming it.

    Was: pipeline/common.py read_checkpoint loads supernet/last.ckpt and retrain/seed_<s>/last.ckpt with
    torch.load(weights_only=False) when a run resumes (resume_step) or reloads its finished supernet: a received
    run's checkpoint runs its pickle before anything checks it (Lightning's own load right after, weights_only=None,
    refuses it: a traceback); the project's checkpoints load with weights_only=True as they are (checked: a text, a
    graph and an offloaded bfloat16-Adam smoke supernet's last.ckpt); mend: weights_only=True (add_safe_globals for
    anything else a checkpoint may hold), the refusal one line naming the file, and docs saying what a checkpoint
    from elsewhere is. Now: read_checkpoint loads with weights_only=True (the project's checkpoints hold tensors and
    plain values; Lightning's own load is weights-only too), and a checkpoint holding other objects is one line
    saying so."""
    import torch

    run = _copy_run(sst_run[0], tmp_path / "received")
    (run / "supernet" / "DONE").unlink()
    marker = tmp_path / "pwned"
    torch.save({"state_dict": {}, "global_step": 3, "callbacks": Payload(marker)}, run / "supernet" / "last.ckpt")
    proc = _run("src.search", "+task=sst2", *SMOKE, data_dir=data, tmp=tmp_path, run_dir=run)
    assert not marker.exists(), "read_checkpoint unpickled last.ckpt (weights_only=False): the payload ran"
    _refused_in_one_line(proc, "last.ckpt")


def test_planetoid_raw_files_holding_code_are_refused_without_running_it(data, tmp_path):
    """``src.search +task=cora`` on a data folder whose ``ind.cora.x`` is a pickle of a call: the call does not run,
    and the file is refused in one line naming it.

    Was: The Planetoid raw files (ind.<name>.x, .graph, ...) are pickles: PlanetoidDataModule._bad_raw_file calls
    PyG's read_file, which is pickle.load(f, encoding='latin1'), so a data folder from the web or a colleague runs
    its code before the project says 'unreadable (TypeError)'; mend: unpickle them first with a restricted Unpickler
    (numpy arrays and dtypes, scipy.sparse matrices, collections.defaultdict, builtins) and refuse the rest in one
    line; say in the docs that these files are pickles. Now: each pickled raw file is first read by
    planetoid._PlanetoidUnpickler, which rebuilds only what the release's files name (numpy arrays, scipy CSR
    matrices, a defaultdict of lists) and refuses anything else in one line before PyG's pickle.load; docs/usage.md
    says what stays a pickle."""
    received = tmp_path / "data"
    shutil.copytree(data / "planetoid", received / "planetoid")
    marker = tmp_path / "pwned"
    (received / "planetoid" / "Cora" / "raw" / "ind.cora.x").write_bytes(pickle.dumps(Payload(marker)))
    proc = _run("src.search", "+task=cora", *SMOKE, data_dir=received, tmp=tmp_path, run_dir=tmp_path / "run")
    assert not marker.exists(), "PyG's read_file unpickled ind.cora.x: the payload ran"
    _refused_in_one_line(proc, "ind.cora.x")


def test_a_planted_pyg_processed_file_in_the_cache_runs_no_code(cora_run, data, tmp_path):
    """``src.evaluate`` of a Cora run with a cache folder whose PyG ``processed/pre_transform.pt`` was replaced by a
    pickle payload (planted in a shared cache, or a cache folder copied between machines): no code runs.

    Was: PyG's Dataset._process reads processed/pre_transform.pt and pre_filter.pt with
    torch.load(weights_only=False) (and its torch_load falls back to weights_only=False for processed/data.pt when
    torch's refusal names add_safe_globals): whoever can write in a shared paths.cache_dir (docs/usage.md: caches
    shared by runs, machines and containers; the Planetoid folder's name is a hash of the raw files' stat, which any
    reader of a shared data folder can compute; planetoid/download/ has a fixed name) runs code in every run that
    reads Cora; the run then succeeds with no word of it; mend: before PyG, torch.load(weights_only=True) the
    processed files (pre_transform.pt / pre_filter.pt hold a repr string; data.pt a tuple of dicts of tensors) and
    delete and rebuild a folder that fails; say in the docs that a cache folder must be trusted as code. Now: before
    PyG reads a processed folder, planetoid.drop_unsafe_processing loads each of its files weights-only
    (memory-mapped); one holding other objects is not loaded and the folder is processed again from the raw files
    (Planetoid and PPI)."""
    run_dir, cache = cora_run
    shutil.copytree(cache, tmp_path / "cache")
    [planted] = (tmp_path / "cache" / "planetoid").glob("*/Cora/processed/pre_transform.pt")
    marker = tmp_path / "pwned"
    import torch

    torch.save(Payload(marker), planted)
    proc = _run("src.evaluate", str(run_dir), data_dir=data, tmp=tmp_path)
    assert proc is not None
    assert not marker.exists(), "PyG's torch.load(weights_only=False) of processed/pre_transform.pt ran the payload"


# ---- (b) writes outside the run folder -----------------------------------------------------------------------------

def test_a_received_runs_symlinked_log_is_not_written_through(sst_run, data, tmp_path):
    """A received run whose ``search.log`` is a symlink to a file outside it (standing for ``~/.bashrc``), and whose
    ``run_settings.json`` seed holds ``"0\ntouch pwned #"``: re-running its command (refused: other settings) leaves
    that file as it was.

    Was: Resuming a received run opens its search.log (Hydra's FileHandler, mode 'a') through a symlink the tar
    carried: log lines are appended to the file it points at (~/.bashrc, say), and the settings refusal writes the
    run_settings.json value it quotes unescaped, so a value holding a newline puts a shell command of the sender's
    on a line of its own there (verified: 'touch .../pwned #' alone on a line); mend: before the first write, refuse
    a run folder whose entries (search.log, retrain.log, .hydra, .run.lock, supernet/, retrain/, search/, ...) are
    symlinks or resolve outside it, in one error line; quote record values in messages (repr). Now:
    src.pipeline.run.entry refuses a run folder holding a symbolic link, in one line naming it, before anything is
    logged or written in it (the refusal is not written to the log)."""
    run = _copy_run(sst_run[0], tmp_path / "received")
    outside = tmp_path / "bashrc"
    outside.write_text("export PATH=$PATH\n")
    (run / "search.log").unlink()
    (run / "search.log").symlink_to(outside)
    settings = json.loads((run / "run_settings.json").read_text())
    settings["seed"] = f"0\ntouch {tmp_path / 'pwned'} #"
    (run / "run_settings.json").write_text(json.dumps(settings))
    proc = _run("src.search", "+task=sst2", *SMOKE, data_dir=data, tmp=tmp_path, run_dir=run)
    assert proc is not None and proc.returncode != 0, proc and proc.stderr[-2000:]
    assert outside.read_text() == "export PATH=$PATH\n", "the run's log lines were appended to the file outside"
    _refused_in_one_line(proc, "search.log is a symbolic link")


def test_a_received_runs_symlinked_hydra_folder_is_not_written_through(sst_run, data, tmp_path):
    """A received finished run whose ``.hydra`` is a symlink to a folder outside it holding a ``config.yaml`` of its
    own: re-running the run's command leaves that folder as it was.

    Was: A resume rewrites .hydra/config.yaml, hydra.yaml and overrides.yaml (run_settings.RunRecord, through a
    temporary file renamed into place) in whatever folder .hydra leads to: a received run whose .hydra is a symlink
    to another folder overwrites that folder's config.yaml (an application's config, say) and adds the other two;
    mend: refuse symlinked entries of a run folder, or entries resolving outside it, in one error line before any
    write (as for search.log). Now: src.pipeline.run.entry refuses a run folder holding a symbolic link, in one line
    naming it, before anything is logged or written in it (the refusal is not written to the log)."""
    run = _copy_run(sst_run[0], tmp_path / "received")
    outside = tmp_path / "app_config"
    outside.mkdir()
    (outside / "config.yaml").write_text("theme: dark\n")
    shutil.rmtree(run / ".hydra")
    (run / ".hydra").symlink_to(outside, target_is_directory=True)
    proc = _run("src.search", "+task=sst2", *SMOKE, data_dir=data, tmp=tmp_path, run_dir=run)
    assert (outside / "config.yaml").read_text() == "theme: dark\n", "the resume overwrote a file outside the run"
    assert sorted(p.name for p in outside.iterdir()) == ["config.yaml"]
    _refused_in_one_line(proc, ".hydra is a symbolic link")


def test_evaluate_writes_no_cache_where_the_received_config_says(sst_run, data, tmp_path):
    """``src.evaluate`` of a received run whose config sets ``paths.cache_dir`` to a folder of the sender's choosing,
    with ``AUTOATTEND_CACHE_DIR`` set: nothing is written in that folder.

    Was: src.evaluate (and src.predict: their docstrings say 'Writes nothing') rebuild the data with the received
    config's paths.cache_dir, so a config naming a folder there (not the ${oc.env:AUTOATTEND_CACHE_DIR,...} default)
    gets the SST cache written into it (and pruned there: remove_superseded_files), even with AUTOATTEND_CACHE_DIR
    set; mend: take paths.cache_dir from the current environment / conf (as data_dir is taken from the command or
    invocations.json), and say that the commands write the data cache. Now: run_config takes paths.cache_dir from
    this checkout's conf/paths/default.yaml (AUTOATTEND_CACHE_DIR, else ./.cache/autoattend), as a run's own config
    names it, unless the command overrides it."""
    run = _copy_run(sst_run[0], tmp_path / "received")
    elsewhere = tmp_path / "elsewhere"
    _edit_config(run, lambda config: config["paths"].update(cache_dir=str(elsewhere)))
    proc = _run("src.evaluate", str(run), data_dir=data, tmp=tmp_path)
    assert proc is not None
    assert not elsewhere.exists(), sorted(p.name for p in elsewhere.iterdir())


# ---- (c) a tiny file that exhausts the machine ---------------------------------------------------------------------

def test_an_architecture_file_with_a_yaml_alias_bomb_is_refused_quickly(data, tmp_path):
    """``src.show FILE`` on an architecture file of under 1 KB whose layer ``kind`` is a YAML alias bomb: one short
    error line in seconds, under a 1 GiB address-space limit.

    Was: Architecture.from_dict quotes a bad value with !r (expected one of ('add', 'attn'), got {kind!r}): an arch
    file of some 570 bytes whose kind is a YAML alias bomb (9^9 strings once expanded) makes src.show and
    src.retrain arch=FILE build the repr of all of them (measured: 9^8 strings from 512 bytes, 5.5 s and 941 MB
    resident; 9^10 from 620 bytes, a MemoryError traceback after 16 s under a 1.5 GB limit, some 25 GB of text
    without one); mend: refuse anchors/aliases in architecture files (a SafeLoader subclass whose compose_node
    rejects an AliasEvent) and cut quoted values (reprlib) in messages. Now: YAML of architecture files and run
    records is read through src.utils.io.safe_yaml / check_yaml_size, which count the values its aliases expand to
    on the composed nodes (each alias one shared node) and refuse over 100,000 before any loader expands them."""
    path = tmp_path / "arch.yaml"
    path.write_text(_alias_bomb(8) + "layers:\n- kind: *a8\n  q_src: 0\n  q_op: conv1\n  k_src: 0\n  k_op: conv1\n")
    assert path.stat().st_size < 1000
    start = time.monotonic()
    proc = _run("src.show", str(path), data_dir=data, tmp=tmp_path, memory_gib=1, timeout=20)
    line = _refused_in_one_line(proc, str(path))
    assert len(line) < 1000 and time.monotonic() - start < 10, (len(line), time.monotonic() - start)


def test_a_received_run_config_with_a_yaml_alias_bomb_is_refused_quickly(sst_run, data, tmp_path):
    """``src.evaluate`` of a received run whose ``.hydra/config.yaml`` starts with a YAML alias bomb: one error line
    naming the file within 10 s, under a 2 GiB address-space limit.

    Was: src.evaluate reads the received .hydra/config.yaml with OmegaConf.load, which expands YAML aliases into a
    node per value: a config with an alias bomb of 10 anchors (some 600 bytes more, 9^10 strings expanded) was still
    loading after 60 s at 600 MB and growing (killed); src.predict of a graph run, and src.report on a finished run
    without run_settings.json, read it so too; mend: read run records with a loader refusing anchors/aliases (Hydra
    writes none) before OmegaConf sees them. Now: YAML of architecture files and run records is read through
    src.utils.io.safe_yaml / check_yaml_size, which count the values its aliases expand to on the composed nodes
    (each alias one shared node) and refuse over 100,000 before any loader expands them."""
    run = _copy_run(sst_run[0], tmp_path / "received")
    config = run / ".hydra" / "config.yaml"
    config.write_text(_alias_bomb(9) + config.read_text())
    proc = _run("src.evaluate", str(run), data_dir=data, tmp=tmp_path, memory_gib=2, timeout=10)
    _refused_in_one_line(proc, "config.yaml")


def _graph_arrays(n: int = 12) -> dict:
    rng = np.random.default_rng(0)
    masks = {split: np.zeros(n, bool) for split in ("train_mask", "val_mask", "test_mask")}
    masks["train_mask"][:4], masks["val_mask"][4:8], masks["test_mask"][8:] = True, True, True
    return {"x": rng.random((n, 4)).astype(np.float32),
            "edge_index": np.array([list(range(n - 1)), list(range(1, n))]),
            "y": np.array([0, 1] * (n // 2)), **masks}


def test_a_graph_file_with_a_huge_class_id_is_refused_before_any_model_is_built(data, tmp_path):
    """``src.search +task=graph_file`` on a 12-node graph one of whose labels is 10^9: one error line naming ``y`` (not
    an out-of-memory error), under a 4 GiB address-space limit.

    Was: graph_file._check_split takes the class count as int(y.max()) + 1: a 1 KB graph file with one node of class
    10^9 is logged as '1000000001 classes' and the supernet's output layers are allocated for them (class 10^7: 2.6
    GB resident before failing under a 3.8 GiB limit; class 10^12: a 64 TB allocation), so the run ends on the
    memory limit, or without one takes what the machine has; mend: refuse class ids that leave classes without a
    labelled node (or a class count above the labelled nodes) in one line naming 'y', before any model is built.
    Now: reading a graph file refuses a class id that makes more classes than labelled nodes, in one line naming
    'y', before any split or model."""
    arrays = _graph_arrays()
    arrays["y"][0] = 10 ** 9
    path = tmp_path / "graph.npz"
    np.savez(path, **arrays)
    proc = _run("src.search", "+task=graph_file", f"task.path={path}", *SMOKE, data_dir=data, tmp=tmp_path,
                run_dir=tmp_path / "run", memory_gib=4, timeout=60)
    line = _refused_in_one_line(proc, "'y'")
    assert "memory" not in line, line


# ---- the docs ------------------------------------------------------------------------------------------------------

def test_the_docs_say_which_received_files_are_read_as_code():
    """Some paragraph of README.md, docs/usage.md or docs/install.md speaks of trust and names the files that run code
    when read: the checkpoints, the run's ``.hydra/config.yaml`` and the Planetoid files.

    Was: README.md, docs/usage.md and docs/install.md say nothing of trust: nowhere that a run folder's checkpoints
    (*.ckpt) and .hydra/config.yaml (Hydra _target_s) are code to be trusted like a pickle, that Planetoid's raw
    files and PyG's processed cache are pickles, or which reads are safe (model.pt, graph files, architecture files,
    records); only docs/graph.md says a graph file is read without pickle; mend: a 'What is safe to load' paragraph
    in docs/usage.md (linked from the README) naming each. Now: docs/usage.md's 'Files from someone else' (linked
    from the README) says what is read as data, what is checked first and what stays trusted as code."""
    paragraphs = [p for name in ("README.md", "docs/usage.md", "docs/install.md")
                  for p in re.split(r"\n\s*\n", (ROOT / name).read_text())]
    about_trust = [p for p in paragraphs if re.search(r"\btrust", p, re.IGNORECASE)]
    assert about_trust, "no paragraph speaks of trusting what one loads"
    text = "\n".join(about_trust)
    for needle in (".ckpt", "config.yaml", "Planetoid"):
        assert needle in text, needle


# ---- safe reads, verified ------------------------------------------------------------------------------------------

def test_a_kept_model_holding_a_pickle_payload_is_refused_without_running_it(sst_run, data, tmp_path):
    """``src.evaluate`` of a received run whose ``retrain/seed_0/model.pt`` is a pickle payload: the payload does not
    run (``models/saved.py`` loads with ``weights_only=True``), and the file is refused in one line naming it."""
    import torch

    run = _copy_run(sst_run[0], tmp_path / "received")
    marker = tmp_path / "pwned"
    torch.save({"spec": Payload(marker), "weights": {}}, run / "retrain" / "seed_0" / "model.pt")
    proc = _run("src.evaluate", str(run), data_dir=data, tmp=tmp_path)
    assert not marker.exists()
    line = _refused_in_one_line(proc, "seed_0/model.pt", "not a saved model", "could run code")
    assert "\x1b" not in line  # torch's refusal, in terminal colours, advised trusting the file


def test_graph_files_holding_pickles_are_refused_without_running_them(tmp_path):
    """A ``.pt`` graph file holding a payload beside its tensors, and a ``.npz`` one whose ``x`` is an object array
    (a pickle inside the archive): refused (``torch.load(weights_only=True)``, ``np.load(allow_pickle=False)``, as
    docs/graph.md says), and neither payload runs. The reader of ``+task=graph_file`` and ``src.predict --graph``."""
    import torch

    from src.data.graph_file import read_arrays
    from src.utils.errors import AutoAttendError

    marker = tmp_path / "pwned"
    pt = tmp_path / "graph.pt"
    torch.save({"x": torch.rand(3, 2), "edge_index": torch.tensor([[0], [1]]), "y": Payload(marker)}, pt)
    with pytest.raises(AutoAttendError, match="holds objects other than tensors"):
        read_arrays(pt)
    npz = tmp_path / "graph.npz"
    with zipfile.ZipFile(npz, "w") as archive:
        member = io.BytesIO()
        np.save(member, np.array([Payload(marker)], dtype=object), allow_pickle=True)
        archive.writestr("x.npy", member.getvalue())
    with pytest.raises(AutoAttendError, match="'x' is an array of Python objects; expected numbers"):
        read_arrays(npz)
    with zipfile.ZipFile(npz, "w") as archive:  # a member the graph does not need: left out, never unpickled
        for name, value in (("x", np.ones((3, 2))), ("edge_index", np.array([[0], [1]])), ("notes", member)):
            if isinstance(value, np.ndarray):
                stored = io.BytesIO()
                np.save(stored, value)
                value = stored
            archive.writestr(f"{name}.npy", value.getvalue())
    read = read_arrays(npz)
    assert sorted(read) == ["edge_index", "x"] and read.others == ("notes",)
    assert not marker.exists()


def test_yaml_python_tags_in_an_architecture_file_or_a_run_config_run_no_code(sst_run, data, tmp_path):
    """A ``!!python/object/apply`` tag in an architecture file (``src.show FILE``) and in a received run's
    ``.hydra/config.yaml`` (``src.evaluate``) is refused in one line naming the file (``yaml.safe_load``, OmegaConf's
    safe loader); the call it names does not run."""
    marker = tmp_path / "pwned"
    tag = f'!!python/object/apply:builtins.exec ["open({str(marker)!r}, \'w\').close()"]'
    arch = tmp_path / "arch.yaml"
    arch.write_text(f"layers:\n- {tag}\n")
    _refused_in_one_line(_run("src.show", str(arch), data_dir=data, tmp=tmp_path), str(arch), "not valid YAML")
    run = _copy_run(sst_run[0], tmp_path / "received")
    with open(run / ".hydra" / "config.yaml", "a") as config:
        config.write(f"extra: {tag}\n")
    _refused_in_one_line(_run("src.evaluate", str(run), data_dir=data, tmp=tmp_path), "config.yaml")
    assert not marker.exists()


def test_a_text_cache_entry_holding_a_pickle_payload_is_ignored_and_rebuilt(sst_run, data, tmp_path):
    """A cache folder copied from elsewhere whose SST entry (``sst2-<key>.pt``, under its own name) is a pickle
    payload: ``src.evaluate`` reads it with ``weights_only=True``, ignores it with a warning, rebuilds it and
    reproduces the run; the payload does not run."""
    import torch

    run_dir, cache = sst_run
    (tmp_path / "cache").mkdir()
    [entry] = cache.glob("sst2-*.pt")
    marker = tmp_path / "pwned"
    torch.save({"key": Payload(marker)}, tmp_path / "cache" / entry.name)
    proc = _run("src.evaluate", str(run_dir), data_dir=data, tmp=tmp_path)
    assert proc is not None and proc.returncode == 0, proc and proc.stderr[-2000:]
    assert "ignoring unreadable SST cache" in proc.stderr + proc.stdout
    assert not marker.exists()


def test_a_npz_header_claiming_1e12_rows_is_refused_in_one_line(data, tmp_path):
    """A 0.8 KB ``.npz`` whose ``x`` header claims (10^12, 4) float32 (16 TB) over 64 bytes of data: refused in one
    line naming the file, in seconds, under a 4 GiB address-space limit (numpy reads the member in chunks and stops
    at its end; nothing of the claimed size is touched)."""
    path = tmp_path / "claim.npz"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10 ** 12, 4)})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", header.getvalue() + bytes(64))
        for name, value in _graph_arrays().items():
            if name != "x":
                member = io.BytesIO()
                np.save(member, value)
                archive.writestr(f"{name}.npy", member.getvalue())
    assert path.stat().st_size < 2000
    proc = _run("src.search", "+task=graph_file", f"task.path={path}", *SMOKE, data_dir=data, tmp=tmp_path,
                run_dir=tmp_path / "run", memory_gib=4, timeout=60)
    _refused_in_one_line(proc, str(path), "unreadable")


def test_a_run_folder_that_is_a_link_or_lies_under_one_is_used_and_a_link_deep_inside_it_is_refused(tmp_path):
    """``_refuse_links`` looks inside the run folder only: the folder may itself be a link (``outputs`` on a scratch
    disk), while a link in any of its subfolders (``retrain/seed_0/metrics.csv``) is refused, naming it."""
    from src.pipeline.run import _refuse_links
    from src.utils.errors import RunDirLinkError

    real = tmp_path / "scratch" / "run"
    (real / "retrain" / "seed_0").mkdir(parents=True)
    (real / "search.log").write_text("")
    (tmp_path / "outputs").symlink_to(tmp_path / "scratch", target_is_directory=True)
    _refuse_links(tmp_path / "outputs" / "run")
    (real / "retrain" / "seed_0" / "metrics.csv").symlink_to(tmp_path / "elsewhere.csv")
    with pytest.raises(RunDirLinkError, match=r"seed_0/metrics.csv is a symbolic link"):
        _refuse_links(tmp_path / "outputs" / "run")

"""A stage-boundary interrupt walk (2026-12-07, session 48; its two findings mended, their docstrings say "Was: ...
Now: ..."): a run stopped exactly between two of the records its stages write (SIGINT,
SIGTERM or SIGKILL sent by the process to itself right after or before a chosen file is renamed into place), then
resumed with the same command, must end with the records of a run never interrupted.

The stop comes from a ``sitecustomize`` on ``PYTHONPATH`` that wraps :func:`src.utils.io.atomic_target` (every record,
checkpoint and model of a run goes through it) in the run's main process: ``STOP_AT`` names the end of the file's
path, ``STOP_NTH`` which write of it, ``STOP_WHEN`` after or before it, ``STOP_SIG`` the signal."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROOT, cli_command, write_tiny_planetoid, write_tiny_sst

SITECUSTOMIZE = '''
import os, sys
_at = os.environ.get("STOP_AT")
if _at and "--multiprocessing-fork" not in sys.argv:
    import signal
    from contextlib import contextmanager
    import src.utils.io as _io
    _when, _sig = os.environ.get("STOP_WHEN", "after"), getattr(signal, "SIG" + os.environ.get("STOP_SIG", "INT"))
    _nth, _count, _orig = int(os.environ.get("STOP_NTH", "1")), [0], _io.atomic_target

    @contextmanager
    def atomic_target(path, prefix=None):
        hit = str(path).endswith(_at) and _count.append(1) is None and len(_count) == _nth + 1
        if hit and _when == "before":
            os.kill(os.getpid(), _sig)
        with _orig(path, prefix) as tmp:
            yield tmp
        if hit and _when == "after":
            os.kill(os.getpid(), _sig)
    _io.atomic_target = atomic_target
'''

TEXT = ("+task=sst2", "budget=smoke", "hardware=cpu", "hardware.kernels=torch")
RETRAIN = ("+task=sst2", "arch=published_sst5", "budget=smoke", "hardware=cpu", "hardware.kernels=torch")
GRAPH = ("+task=cora", "budget=smoke", "hardware=cpu", "hardware.kernels=torch", "graph.rerank.topk=2",
         "graph.baselines=[gcn,gat]", "ranking.candidates=4")
EXIT = {"INT": 130, "TERM": 143, "KILL": -9}
# what differs between two uninterrupted runs too, or by design between invocations
VOLATILE = {"seconds", "seconds_this_invocation", "invocations", "run_dir", "machine"}
UNCOMPARED = {"timing.json", "invocations.json", ".run.lock", "search.log", "retrain.log"}


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    """``(tmp, data)``: tiny SST and Cora, and the ``sitecustomize`` folder in ``tmp/site``."""
    tmp = tmp_path_factory.mktemp("walk")
    data = tmp / "data"
    write_tiny_sst(data, n_train=300, n_dev=60, n_test=60)
    write_tiny_planetoid(data)
    (tmp / "site").mkdir()
    (tmp / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return tmp, data


def _run(walk, module: str, args: tuple, run_dir: Path, **stop: str) -> subprocess.CompletedProcess:
    tmp, data = walk
    command = cli_command(module, *args, data_dir=data, tmp=tmp, run_dir=run_dir)
    for key in ("STOP_AT", "STOP_WHEN", "STOP_SIG", "STOP_NTH"):
        command["env"].pop(key, None)
    command["env"].update(OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(tmp / "site"), str(ROOT)]), **stop)
    return subprocess.run(**command, capture_output=True, text=True, timeout=240)


def _stopped_then_resumed(walk, module: str, args: tuple, name: str, at: str, sig: str, when: str = "after",
                          nth: int = 1) -> Path:
    """A run stopped by ``sig`` at that write and resumed by the same command; asserts the stop's one
    ``interrupted:`` line and status, and the resume's success; returns its folder."""
    run_dir = walk[0] / name
    shutil.rmtree(run_dir, ignore_errors=True)
    proc = _run(walk, module, args, run_dir, STOP_AT=at, STOP_WHEN=when, STOP_SIG=sig, STOP_NTH=str(nth))
    assert proc.returncode == EXIT[sig], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    if sig != "KILL":
        assert len([line for line in proc.stderr.splitlines() if line.startswith("interrupted")]) == 1, proc.stderr
    proc = _run(walk, module, args, run_dir)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return run_dir


def _normalized(value, run_dir: Path):
    if isinstance(value, dict):
        return {k: _normalized(v, run_dir) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_normalized(v, run_dir) for v in value]
    return value.replace(str(run_dir), "<run>") if isinstance(value, str) else value


def _files(run_dir: Path) -> set[str]:
    return {str(p.relative_to(run_dir)) for p in run_dir.rglob("*")
            if p.is_file() and not str(p.relative_to(run_dir)).startswith(".hydra")}


def _differences(straight: Path, resumed: Path) -> list[str]:
    """What the resumed run's records have otherwise than the uninterrupted one's: files on one side only,
    JSON records (times and folders aside), other files byte for byte, kept models and checkpoints by content."""
    import torch

    a, b = _files(straight), _files(resumed)
    found = [f"only in {'the uninterrupted' if x in a else 'the resumed'} run: {x}" for x in sorted(a ^ b)]
    for name in sorted(a & b):
        if Path(name).name in UNCOMPARED:
            continue
        x, y = straight / name, resumed / name
        if name.endswith(".json"):
            if _normalized(json.loads(x.read_text()), straight) != _normalized(json.loads(y.read_text()), resumed):
                found.append(f"differs: {name}")
        elif name.endswith((".pt", ".ckpt")):
            p, q = torch.load(x, weights_only=False), torch.load(y, weights_only=False)
            for record in (p, q):
                record.pop("callbacks", None)  # a checkpoint callback's state names the run's folder
            if repr(p) != repr(q):
                found.append(f"differs: {name}")
        elif x.read_bytes() != y.read_bytes():
            found.append(f"differs: {name}")
    for run_dir in (straight, resumed):  # the times: timing.json, summary.json and invocations.json agree
        timing = json.loads((run_dir / "timing.json").read_text())
        summary = json.loads((run_dir / "summary.json").read_text())
        invocations = json.loads((run_dir / "invocations.json").read_text())["invocations"]
        if (timing["seconds"], timing["invocations"]) != (summary["seconds"], summary["invocations"]) or \
                len(invocations) != timing["invocations"]:
            found.append(f"{run_dir.name}: timing.json, summary.json and invocations.json disagree")
    return found


def _straight(walk, name: str, args) -> Path:
    """The run folder of the uninterrupted search the stopped ones are compared with."""
    run_dir = walk[0] / name
    proc = _run(walk, "src.search", args, run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


@pytest.fixture(scope="module")
def straight_graph(walk):
    return _straight(walk, "straight_graph", GRAPH)


@pytest.fixture(scope="module")
def straight_text(walk):
    return _straight(walk, "straight_text", TEXT)


# ---------------------------------------------------------------- findings


@pytest.mark.parametrize("module, args, folder, sig", [
    pytest.param("src.retrain", RETRAIN, "retrain", "TERM", marks=pytest.mark.slow),
    ("src.retrain", RETRAIN, "retrain", "KILL"),
    pytest.param("src.search", (*TEXT, "retrain.seeds=1", "ranking.candidates=3"), "ranking/rank_1", "INT",
                 marks=pytest.mark.slow),
], ids=["retrain-sigterm", "retrain-sigkill", "ranking-sigint"])
def test_a_text_seed_stopped_right_after_its_record_leaves_no_checkpoint_behind(walk, module, args, folder, sig):
    """The uninterrupted run removes ``<folder>/seed_<s>/last.ckpt`` (the seed's last weights and Adam state, several
    times the kept model's size) right after writing ``seed_<s>.json``; docs/usage.md: the checkpoint is "removed
    when the seed is done". A stop in between (Ctrl-C, SIGTERM or SIGKILL) leaves it there, and the resumed run,
    finding the seed's record, never removes it: the finished run keeps a checkpoint the uninterrupted one has not.
    Expected: the resume removes it (train_child's already-done path).

    Was: a text seed stopped between its seed_<s>.json and the removal of its last.ckpt keeps that checkpoint for
    good: the resume reads the record back and returns before the removal (stages.train_child). Now: train_child
    removes the seed's checkpoint (and its leftover temporaries) when it reads the record back."""
    seed = 3000 if folder.startswith("ranking") else 0
    run_dir = _stopped_then_resumed(walk, module, args, f"stale_{module}_{sig}", f"{folder}/seed_{seed}.json", sig)
    assert (run_dir / folder / f"seed_{seed}.json").exists()
    assert not (run_dir / folder / f"seed_{seed}" / "last.ckpt").exists()


def test_the_kept_models_are_byte_for_byte_an_uninterrupted_runs_after_a_stop_between_search_and_retrain(
        walk, straight_text):
    """Stopped right after ``search/best_arch.yaml`` (Ctrl-C), the resume retrains the winner read back from that file:
    every record is the uninterrupted run's, and the models hold the same tensors, spec and evaluation, but
    ``retrain/seed_<s>/model.pt`` differ in their bytes (``data.pkl``: the op names pickled once each in the
    uninterrupted run, where the architecture shares its strings, and once per occurrence after the resume).
    Expected: the same bytes, e.g. with the architecture's strings interned where it is built
    (``Architecture.from_dict``) or the spec's strings copied into fresh, unshared objects before saving.

    Was: a retrain run in a later invocation than the search writes model.pt files of other bytes (the same tensors
    and spec): the architecture's op names read back from best_arch.yaml are separate string objects, which
    torch.save's pickle memo lays out otherwise. Now: Layer interns its kind and op names, so the saved spec pickles
    alike however the architecture was made."""
    run_dir = _stopped_then_resumed(walk, "src.search", TEXT, "stop_after_best", "search/best_arch.yaml", "INT")
    assert _differences(straight_text, run_dir) == []
    for seed in (0, 1):
        name = f"retrain/seed_{seed}/model.pt"
        assert (run_dir / name).read_bytes() == (straight_text / name).read_bytes(), name


# ---------------------------------------------------------------- boundaries verified correct


@pytest.mark.parametrize("at, sig, when, nth", [
    # every HPO trial recorded, hpo.json's "chosen" not yet
    pytest.param("retrain/hpo.json", "INT", "after", 2, marks=pytest.mark.slow),
    # between the two re-ranked candidates
    pytest.param("search/rerank.json", "TERM", "after", 1, marks=pytest.mark.slow),
    # between the searched model's seeds and the baselines
    pytest.param("retrain/results.json", "INT", "after", 1, marks=pytest.mark.slow),
    ("baselines/gcn/results.json", "KILL", "after", 1),  # between the baselines
    # between the ranking stage's candidates
    pytest.param("/result.json", "TERM", "after", 2, marks=pytest.mark.slow),
    # every stage done, the summary not written
    pytest.param("summary.json", "INT", "before", 1, marks=pytest.mark.slow),
], ids=["hpo-chosen", "rerank", "seeds-baselines", "baselines", "ranking", "summary"])
def test_a_graph_run_stopped_between_two_records_resumes_to_an_uninterrupted_runs_records(walk, straight_graph, at,
                                                                                         sig, when, nth):
    run_dir = _stopped_then_resumed(walk, "src.search", GRAPH, f"graph_{at.replace('/', '_')}_{nth}", at, sig, when,
                                    nth)
    assert _differences(straight_graph, run_dir) == []


@pytest.mark.slow  # the stop between search and retrain above is this kind of boundary in the fast suite
@pytest.mark.parametrize("at, sig, when", [
    ("supernet/DONE", "INT", "after"),  # the supernet finished, the search not started
    ("search/topk.yaml", "TERM", "before"),  # every candidate scored, topk.yaml and best_arch.yaml not written
    ("retrain/results.json", "TERM", "after"),  # results.json written, summary.json not
], ids=["supernet-search", "search-topk", "results-summary"])
def test_a_text_run_stopped_between_stages_resumes_to_an_uninterrupted_runs_records(walk, straight_text, at, sig,
                                                                                   when):
    """The kept models are compared by content here (their bytes: the finding above)."""
    run_dir = _stopped_then_resumed(walk, "src.search", TEXT, f"text_{at.replace('/', '_')}", at, sig, when)
    assert _differences(straight_text, run_dir) == []

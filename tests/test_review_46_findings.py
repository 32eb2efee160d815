"""Review of session 46's changes (ca7bac0..e18ae6f): each test failed on the code before its mend for the reason its
docstring gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from src.report import report
from tests.helpers import run_toy_sweep


def _rows(table) -> list[dict]:
    return [dict(zip(table.header, row)) for row in table.rows]


# ---------------------------------------------------------------- src.report: "(content N)"


GAT_CORA = {"layers": [{"kind": "add", "q_src": 0, "q_op": "gat8", "k_src": 0, "k_op": "zero"},
                       {"kind": "add", "q_src": 1, "q_op": "gat1", "k_src": 1, "k_op": "zero"}]}


GAT_PUBMED = {"layers": [{"kind": "add", "q_src": 0, "q_op": "gat8", "k_src": 0, "k_op": "zero"},
                         {"kind": "add", "q_src": 1, "q_op": "gat8", "k_src": 1, "k_op": "zero"}]}


def test_a_builtin_arch_with_per_task_settings_is_not_told_apart_as_contents(tmp_path):
    """``src.retrain -m arch=gat +task=cora,pubmed seed=0,1``: src/space/archs/gat.yaml gives PubMed its own
    ``task_arch`` and ``task_hparams``, so the recorded ``architecture`` / ``arch_hparams`` differ by task. The rows
    are already apart by their task, yet ``groups_table`` keys the "content" numbering by the arch name alone and
    labels them ``gat (content 1)`` and ``gat (content 2)``, which usage.md explains as a file edited between runs.
    Expected: the numbering only among groups of one entry and task; here plain ``gat`` in both rows."""
    for task, arch, hp in (("cora", GAT_CORA, {"lr": 0.005}), ("pubmed", GAT_PUBMED, {"lr": 0.01})):
        for seed in (0, 1):
            run = tmp_path / f"{task}_{seed}"
            run.mkdir()
            settings = {"seed": seed, "task.name": task, "task.family": "graph", "entry": "retrain",
                        "graph.retrain.seeds": 2, "arch": "gat", "architecture": arch, "arch_hparams": hp}
            (run / "run_settings.json").write_text(json.dumps(settings))
            retrain = {"test_acc_mean": 0.8, "test_acc_std": 0.01, "val_acc_mean": 0.7, "seeds": [seed, seed + 1]}
            (run / "summary.json").write_text(json.dumps({"task": task, "arch": "gat", "retrain": retrain,
                                                          "best_val_acc_supernet": None,
                                                          "seconds": {"retrain": 3.0}}))
    _, folded = report([tmp_path])
    assert sorted((r["task"], r["arch"], r["runs"]) for r in _rows(folded)) == [("cora", "gat", "2"),
                                                                                ("pubmed", "gat", "2")]


# ---------------------------------------------------------------- a sweep's crashed jobs


def _traceback_kept(tmp_path: Path, stderr: str, seed: int) -> bool:
    """The crashed job's traceback is on stderr, or in the log files of its job folder."""
    logs = "".join(p.read_text() for p in (tmp_path / "sweep" / str(seed)).glob("*.log"))
    return f"RuntimeError: boom {seed}" in stderr or ("Traceback" in logs and f"boom {seed}" in logs)


def test_every_crashed_job_of_a_sweep_keeps_its_traceback(tmp_path):
    """Jobs 1 and 2 crash: the report lists both as "crashed: ... (its traceback follows the sweep)", but
    BasicSweeper raises the first failed job's exception alone, and entry() logs no crash: the traceback of job 2
    is on no stream and in no file. Expected: each crashed job's traceback on stderr or in its job folder's log,
    and the report not saying it follows the sweep where it does not."""
    done = run_toy_sweep(tmp_path, crash=(1, 2))
    assert done.returncode == 1
    report_md = (tmp_path / "sweep" / "report.md").read_text()
    for seed in (1, 2):
        entry = next(line for line in report_md.splitlines() if line.startswith(f"- `+seed={seed}`"))
        assert _traceback_kept(tmp_path, done.stderr, seed), f"job {seed}: {entry}"
        if "traceback follows the sweep" in entry:
            assert f"RuntimeError: boom {seed}" in done.stderr, entry


def test_a_crashed_jobs_traceback_survives_an_interrupt_later_in_the_sweep(tmp_path):
    """Job 1 crashes, job 2 is stopped by Ctrl-C: entry()'s interrupt path writes the report (job 1 "crashed: ...
    (its traceback follows the sweep)") and exits 130; Hydra never re-raises job 1's exception, so its traceback
    is lost. Expected: it on stderr or in job 1's log, and the report not promising it otherwise."""
    done = run_toy_sweep(tmp_path, crash=(1,), interrupt=(2,))
    assert done.returncode == 130
    report_md = (tmp_path / "sweep" / "report.md").read_text()
    entry = next(line for line in report_md.splitlines() if line.startswith("- `+seed=1`"))
    assert _traceback_kept(tmp_path, done.stderr, 1), entry
    if "traceback follows the sweep" in entry:
        assert "RuntimeError: boom 1" in done.stderr, entry


def test_a_crashed_jobs_entry_in_the_sweep_report_is_one_line(tmp_path):
    """``f"crashed: {type(exc).__name__}: {exc} ..."``: many exceptions carry several lines (torch's, a
    ``CalledProcessError``'s output...), which break report.md's list ("- `+seed=1`: crashed: RuntimeError: boom
    1" then a bare "second line (its traceback follows the sweep)"). The user-error entries are one line each.
    Expected: one line per failed job (e.g. the message's first line)."""
    done = run_toy_sweep(tmp_path, crash=(1,), second="\\nsecond line")
    assert done.returncode == 1
    report_md = (tmp_path / "sweep" / "report.md").read_text()
    failed = report_md.split("Failed jobs (1):", 1)[1].strip().splitlines()
    assert len(failed) == 1 and failed[0].startswith("- `+seed=1`: crashed: RuntimeError: boom 1"), failed


# ---------------------------------------------------------------- the review's suggestions, mended


def test_a_seed_record_of_valid_json_without_its_keys_is_one_error_naming_it(tmp_path):
    """``read_record`` caught JSON that does not parse; a record that parses but lacks the seed's keys (``{}``,
    ``null``) still ended a resume in a KeyError or TypeError at ``result["val_acc"]``."""
    from src.utils.errors import AutoAttendError
    from src.utils.io import read_record

    needs = ("step", "val_acc", "test_acc")
    for text in ("{}", "null", '{"step": 3, "val_acc": 0.5}', "[1, 2]"):
        path = tmp_path / "seed_0.json"
        path.write_text(text)
        with pytest.raises(AutoAttendError, match=r"seed_0.json: unreadable \(expected the seed's result\)"):
            read_record(path, "the seed's result", needs=needs)
    path.write_text('{"step": 3, "val_acc": 0.5, "test_acc": 0.4}')
    assert read_record(path, "the seed's result", needs=needs)["test_acc"] == 0.4


def test_saving_a_model_removes_what_a_killed_write_of_it_left(tmp_path):
    """A seed's ``model.pt`` is written through a temporary file; a kill during the write left ``.model.pt.<random>``
    (the model's size) for good. The next save of that file removes it; other files stay."""
    import torch

    from src.models.saved import save_child

    left = tmp_path / ".model.pt.x1y2z3"
    left.write_bytes(b"PK" + b"\0" * 100)
    other = tmp_path / ".other.pt.abc"
    other.write_bytes(b"x")
    save_child(tmp_path / "model.pt", {"w": torch.zeros(2)}, {"kind": "test"}, {"step": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.pt.abc", "model.pt"]

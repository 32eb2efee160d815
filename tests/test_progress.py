"""Progress: :class:`LogProgress` log lines, and which progress display ``make_trainer`` picks
(a bar with a terminal and its lines in the log file alone, log lines without, nothing when
switched off)."""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
import time
from types import SimpleNamespace

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import RichProgressBar
from torch.utils.data import DataLoader, TensorDataset

from src.pipeline import common
from src.pipeline.common import LogProgress, StopAtStep, make_trainer
from tests.conftest import compose_config


class _Regression(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(3, 1)

    def training_step(self, batch, _):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch, _):
        x, y = batch
        self.log("val/loss", torch.nn.functional.mse_loss(self.layer(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _loader():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=g)
    return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=4)  # 10 steps an epoch


def _fit(tmp_path, callbacks, **kwargs):
    trainer = pl.Trainer(default_root_dir=str(tmp_path), logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         callbacks=callbacks, **kwargs)
    trainer.fit(_Regression(), _loader(), _loader())
    return trainer


LINE = re.compile(r"^fit: step (\d+) / (\d+) \(([\d.]+) %\), \d+ min \d\d s elapsed(, about \d+ min \d\d s left)?; "
                  r"train/loss [\d.e+-]+(, val/loss [\d.e+-]+)?$")


def test_log_lines_count_steps_against_the_total_and_carry_the_metrics(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=common.__name__)
    _fit(tmp_path, [LogProgress("fit", every_s=0.0), StopAtStep(25)], max_epochs=5, val_check_interval=5)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("fit:")]
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), [line for line, m in zip(lines, parsed) if not m]
    steps = [int(m.group(1)) for m in parsed]
    # StopAtStep(25) lowers Lightning's 50 (5 epochs x 10 steps): the total is the stop
    assert {int(m.group(2)) for m in parsed} == {25}
    assert steps[0] == 1 and steps[-1] == 25 and steps == sorted(steps)
    assert parsed[9].group(3) == f"{100 * steps[9] / 25:.1f}"
    # an estimate of the time left until the last step, measured from the end of the first step
    # (which carries one-off costs such as building the CPU kernels): none at the first and last
    assert not parsed[0].group(4) and parsed[1].group(4) and not parsed[-1].group(4)
    # lines after a validation carry its metric
    assert any(m.group(5) for m in parsed) and not parsed[0].group(5)


def test_log_lines_are_spaced_by_every_s(tmp_path, caplog):
    ticks = iter(range(0, 10_000, 7))  # each look at the clock: 7 s later
    caplog.set_level(logging.INFO, logger=common.__name__)
    _fit(tmp_path, [LogProgress("fit", every_s=30.0, clock=lambda: next(ticks))], max_steps=20,
         limit_val_batches=0)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("fit:")]
    # the clock reads 0 at the start, then 7 s more at each step's end: the first line once 10 s
    # have passed and a step after the first has ended (step 2, 14 s: a fresh run shows its pace
    # early), then every fifth step (49 - 14 >= 30). Not one line per step.
    steps = [int(re.match(r"fit: step (\d+) / 20 ", line).group(1)) for line in lines]
    assert steps == [2, 7, 12, 17], lines
    # the rate from the end of step 1 (7 s): 1 step in 7 s, 18 steps to go; then 6 steps in 42 s
    assert "0 min 14 s elapsed, about 2 min 06 s left" in lines[0]
    assert "0 min 49 s elapsed, about 1 min 31 s left" in lines[1]


def test_the_first_line_waits_for_an_estimate(tmp_path, caplog):
    """A first step that takes long (building the CPU kernels) gives no early line without an
    estimate: the first comes after the second step, or once ``every_s`` has passed."""
    times = iter([0, 20, 21] + list(range(22, 200)))
    caplog.set_level(logging.INFO, logger=common.__name__)
    _fit(tmp_path, [LogProgress("fit", every_s=60.0, clock=lambda: next(times))], max_steps=20, limit_val_batches=0)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("fit:")]
    assert lines[0].startswith("fit: step 2 / 20 ") and "about 0 min 18 s left" in lines[0], lines
    caplog.clear()
    times = iter([0, 70] + list(range(71, 200)))
    _fit(tmp_path, [LogProgress("fit", every_s=60.0, clock=lambda: next(times))], max_steps=20, limit_val_batches=0)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("fit:")]
    assert lines[0].startswith("fit: step 1 / 20 ") and "left" not in lines[0], lines


def test_files_only_lines_reach_the_log_file_and_not_the_console(tmp_path):
    """With a terminal the bar is the console's display; the same lines go to the run's log file
    alone, for whoever follows it (before, the log had no line during training)."""
    root = logging.getLogger()
    log_file, console_text = tmp_path / "run.log", io.StringIO()
    file_handler, console = logging.FileHandler(log_file), logging.StreamHandler(console_text)
    level = root.level
    root.setLevel(logging.INFO)
    root.addHandler(file_handler)
    root.addHandler(console)
    try:
        _fit(tmp_path, [LogProgress("fit", every_s=0.0, files_only=True)], max_steps=3, limit_val_batches=0)
    finally:
        root.removeHandler(file_handler)
        root.removeHandler(console)
        file_handler.close()
        root.setLevel(level)
    written = [line for line in log_file.read_text().splitlines() if line.startswith("fit: step")]
    assert [line.split(",")[0] for line in written] == ["fit: step 1 / 3 (33.3 %)", "fit: step 2 / 3 (66.7 %)",
                                                        "fit: step 3 / 3 (100.0 %)"]
    assert "fit: step" not in console_text.getvalue()


def test_files_only_lines_keep_the_logging_levels(tmp_path):
    """A line for the log file alone is filtered as any log record: not written by a file handler
    set to warnings only, nor when the logger is not enabled for its level (it was written anyway)."""
    from src.utils.logs import log_to_files_only

    root, logger = logging.getLogger(), logging.getLogger("src.test_files_only")
    warnings_only, everything = logging.FileHandler(tmp_path / "w.log"), logging.FileHandler(tmp_path / "a.log")
    warnings_only.setLevel(logging.WARNING)
    level = root.level
    root.setLevel(logging.INFO)
    root.addHandler(warnings_only)
    root.addHandler(everything)
    try:
        log_to_files_only(logger, "an info line")
        log_to_files_only(logger, "an error line", logging.ERROR)
        logger.setLevel(logging.ERROR)
        log_to_files_only(logger, "an info line the logger is not enabled for")
    finally:
        logger.setLevel(logging.NOTSET)
        for handler in (warnings_only, everything):
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)
    assert (tmp_path / "w.log").read_text().splitlines() == ["an error line"]
    assert (tmp_path / "a.log").read_text().splitlines() == ["an info line", "an error line"]


def test_a_slow_first_step_does_not_inflate_the_estimate(tmp_path, caplog):
    # a fresh machine's first step also builds the CPU kernels (minutes): the estimate must come
    # from the steps after it, not put a two-hour figure in the log
    times = iter([0, 1000] + list(range(1001, 1100)))
    caplog.set_level(logging.INFO, logger=common.__name__)
    _fit(tmp_path, [LogProgress("fit", every_s=0.0, clock=lambda: next(times))], max_steps=20, limit_val_batches=0)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("fit:")]
    assert lines[0].startswith("fit: step 1 / 20 ") and "left" not in lines[0]
    assert "16 min 41 s elapsed, about 0 min 18 s left" in lines[1], lines[1]  # 1 s a step since step 1


class _StopAfter(pl.Callback):
    """Ends an open-ended fit (``max_epochs=-1``) in a way :class:`LogProgress` cannot foresee."""

    def on_train_batch_end(self, trainer, *args):
        trainer.should_stop = trainer.global_step >= 3


def test_fit_without_a_known_end_has_no_total_and_no_estimate(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=common.__name__)
    _fit(tmp_path, [LogProgress("fit", every_s=0.0), _StopAfter()], max_epochs=-1, limit_val_batches=0)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("fit:")]
    assert lines[0].startswith("fit: step 1, ") and " / " not in " ".join(lines) and "left" not in " ".join(lines)
    caplog.clear()
    _fit(tmp_path, [LogProgress("fit", every_s=0.0), StopAtStep(3)], max_epochs=-1, limit_val_batches=0)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("fit:")]
    assert lines[-1].startswith("fit: step 3 / 3 (100.0 %)")


@pytest.mark.parametrize("tty, overrides, bar, lines", [
    (True, [], True, "files only"),  # the bar on the console, its lines in the log file
    (True, ["hardware.progress_every_s=null"], True, None),
    (False, [], False, "logged"),
    (False, ["hardware.progress=false"], False, None),
    (False, ["hardware.progress_every_s=null"], False, None),
    (True, ["hardware.progress=false"], False, None),
])
def test_make_trainer_picks_the_progress_display(tty, overrides, bar, lines, tmp_path, monkeypatch):
    monkeypatch.setattr(common.sys.stdout, "isatty", lambda: tty, raising=False)
    cfg = compose_config("search", ["+task=sst2", "hardware=cpu"] + overrides)
    trainer = make_trainer(cfg, tmp_path, "supernet", label="the supernet")
    assert len([cb for cb in trainer.callbacks if isinstance(cb, RichProgressBar)]) == bar
    logged = [cb for cb in trainer.callbacks if isinstance(cb, LogProgress)]
    assert len(logged) == (lines is not None)
    if lines is not None:
        assert (logged[0].label, logged[0].every_s, logged[0].files_only) == ("the supernet", 60, lines == "files only")


class _Stream(io.StringIO):
    """Standard output as a terminal (``tty=True``) or as a file or pipe."""

    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


PREFIX = "[log] " + "wider than the terminal " * 4  # a log line longer than the 80 columns here


def _search_output(tty: bool, tmp_path, monkeypatch) -> list[str]:
    """What ``run_strategy`` (smoke budget, progress on) shows on a console whose log handler writes
    to standard output, as Hydra's does: each line as a terminal leaves it (after its last ``\\r``,
    without colours)."""
    from rich.progress import Progress

    from src.pipeline import stages
    from src.space import FunctionalSpace

    class EagerProgress(Progress):  # draws the bar at every update, not on Rich's 10 Hz timer
        def update(self, *args, **kwargs):
            super().update(*args, **kwargs)
            self.refresh()

    out = _Stream(tty)
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(stages, "Progress", EagerProgress)
    with _console_handler(out):
        cfg = compose_config("search", ["+task=sst2", "budget=smoke", "hardware.progress=true"])
        space = FunctionalSpace(3, ops=("zero", "identity", "conv1", "conv3"))
        stages.run_strategy(cfg, space, lambda arch: 0.5, tmp_path / "search", "a constant")
    return _terminal_lines(out)


@contextlib.contextmanager
def _console_handler(out: io.StringIO):
    """A console log handler writing ``PREFIX`` lines to ``out``, configured before any bar starts,
    as Hydra's is; the root logger at INFO for the duration."""
    console = logging.StreamHandler(out)
    console.setFormatter(logging.Formatter(PREFIX + "%(message)s"))
    root = logging.getLogger()
    root.addHandler(console)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        yield console
    finally:
        root.removeHandler(console)
        root.setLevel(level)


def _terminal_lines(out: io.StringIO) -> list[str]:
    """Each line as a terminal leaves it: after its last ``\\r``, without colours."""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    return [line.rsplit("\r", 1)[-1] for line in text.split("\n")]


def test_the_search_bar_leaves_log_lines_whole_in_a_terminal(tmp_path, monkeypatch):
    """With a terminal the search shows a bar; its log lines ("search: 6 / 12 scored") print above
    it, each on a line of its own and whole (before, each was written after the bar, on the bar's line)."""
    lines = _search_output(True, tmp_path, monkeypatch)
    scored = [line for line in lines if "scored, best" in line]
    # whole: not broken at the terminal's width either
    assert scored == [f"{PREFIX}search: {n} / 12 scored, best 0.5000" for n in (6, 9, 12)], lines
    assert any(line.startswith("search ") and "12/12" in line for line in lines)  # the bar, at its end


def test_the_search_shows_no_bar_without_a_terminal(tmp_path, monkeypatch):
    """Without a terminal the log lines are the search's progress, as for the training stages: no
    bar (before, Rich printed it once at the end, frozen, after the lines and outside the log)."""
    lines = _search_output(False, tmp_path, monkeypatch)
    assert not any("━" in line for line in lines), lines
    assert sum("scored, best" in line for line in lines) == 3


def test_the_search_logs_every_100_candidates_inside_a_batch(tmp_path, caplog):
    """The search's log lines come at each batch's end and every 100 candidates: evolution's first
    batch (the paper's 500 random candidates, minutes of scoring) had one line, at its end."""
    from src.pipeline import stages
    from src.space import FunctionalSpace

    caplog.set_level(logging.INFO, logger=stages.__name__)
    cfg = compose_config("search", ["+task=sst2", "budget=smoke", "hardware.progress=false",
                                    "strategy.population=250", "strategy.rounds=1", "strategy.parents=3"])
    stages.run_strategy(cfg, FunctionalSpace(3), lambda arch: 0.5, tmp_path / "search", "a constant")
    counts = [int(m.group(1)) for r in caplog.records if (m := re.match(r"search: (\d+) / 253 scored", r.getMessage()))]
    assert counts == [100, 200, 250, 253]


@pytest.mark.parametrize("max_epochs, expected", [(4, "the supernet: epoch 1/4"), (-1, "the supernet: epoch 1"),
                                                  (None, "the supernet: epoch 1")])
def test_the_terminal_bar_names_its_stage_and_counts_epochs_from_one(max_epochs, expected, tmp_path, monkeypatch):
    """The bar's description names the stage, as the log lines do (the supernet, each retrain seed),
    and counts epochs from 1 (Lightning's said "Epoch 0/3" for the first of four, whatever the stage,
    and "Epoch 1/-2" for a fit ended by its steps, the graph supernet's ``max_epochs=-1``)."""
    from types import SimpleNamespace

    monkeypatch.setattr(common.sys.stdout, "isatty", lambda: True, raising=False)
    cfg = compose_config("search", ["+task=sst2", "hardware=cpu"])
    trainer = make_trainer(cfg, tmp_path, "supernet", label="the supernet")
    bar = next(cb for cb in trainer.callbacks if isinstance(cb, RichProgressBar))
    bar._trainer = SimpleNamespace(max_epochs=max_epochs)
    assert bar._get_train_description(0).rstrip() == expected
    # the method overridden is Lightning's private one: were it renamed, the override would be
    # silently skipped and the bar say "Epoch 0/3" again
    import inspect

    assert "self._get_train_description(trainer.current_epoch)" in inspect.getsource(RichProgressBar.on_train_epoch_start)


class _LogEachStep(pl.Callback):
    """A line logged during the fit, as a checkpoint's or Lightning's own are."""

    def on_train_batch_end(self, trainer, *args):
        logging.getLogger("tests.fit").info("fit: step %d ended", trainer.global_step)


def test_log_lines_print_above_a_training_bar_in_a_terminal(tmp_path, monkeypatch):
    """A line logged during a training fit was written on the training bar's line (only the search's
    bar had the console's lines above it); it prints whole, on a line of its own, and the console
    handler gets its own stream back when the bar stops."""
    from lightning.pytorch.callbacks.progress import rich_progress
    from rich.progress import Progress

    def eager_update(self, *args, **kwargs):  # draws the bar at every update, not on Rich's 10 Hz timer
        Progress.update(self, *args, **kwargs)
        self.refresh()

    out = _Stream(True)
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(rich_progress.CustomProgress, "update", eager_update)
    with _console_handler(out) as console:
        trainer = pl.Trainer(default_root_dir=str(tmp_path), logger=False, enable_checkpointing=False,
                             enable_model_summary=False, num_sanity_val_steps=0, max_steps=3, limit_val_batches=0,
                             callbacks=[common.LabelledRichProgressBar("the fit"), _LogEachStep()])
        trainer.fit(_Regression(), _loader(), _loader())
        assert console.stream is out  # given back
    lines = _terminal_lines(out)
    logged = [line for line in lines if "step " in line and "ended" in line]
    assert logged == [f"{PREFIX}fit: step {n} ended" for n in (1, 2, 3)], lines
    assert any(line.startswith("the fit: epoch 1") for line in lines), lines  # the bar itself


def test_the_terminal_bar_shows_short_metric_names(tmp_path, monkeypatch):
    """At 80 columns Lightning's bar had room for ``train/loss_s…`` alone: its metrics go by short
    names, without the epoch aggregates and the logger's version number."""
    from types import SimpleNamespace

    bar = common.LabelledRichProgressBar("fit")
    cases = [  # what the text supernet, a text child and the graph supernet log for the bar
        ({"v_num": 3, "train/loss_step": 0.7, "train/loss_epoch": 0.71, "val/acc_mean": 0.52},
         {"loss": 0.7, "val acc": 0.52}),
        ({"v_num": 0, "train/loss_step": 0.6, "val/acc": 0.5, "test/acc": 0.49},
         {"loss": 0.6, "val acc": 0.5, "test acc": 0.49}),
        ({"train/loss": 0.69, "val/score_mean": 0.8}, {"loss": 0.69, "val score": 0.8}),
    ]
    for logged, shown in cases:
        monkeypatch.setattr(RichProgressBar, "get_metrics", lambda self, trainer, module, logged=logged: dict(logged))
        assert bar.get_metrics(SimpleNamespace(), None) == shown


def test_the_terminal_bar_pickles_while_it_redirects_the_console(monkeypatch):
    """Lightning's bar leaves its console and live display out of its pickled state; the log
    lines' redirection (a generator) is left out with them."""
    import pickle
    from types import SimpleNamespace

    bar = common.LabelledRichProgressBar("fit")
    bar._logs_above = common.console_logs_above(SimpleNamespace(disable=True))
    bar._logs_above.__enter__()
    assert pickle.loads(pickle.dumps(bar))._logs_above is None and bar._logs_above is not None


def test_a_line_comes_once_every_s_has_passed_not_a_step_later(tmp_path, caplog):
    """Lines are at most ``every_s`` apart: the next is due when exactly that much time has passed
    (mutation audit 2026-12-05)."""
    ticks = iter(range(0, 10_000, 10))  # each look at the clock: 10 s later
    caplog.set_level(logging.INFO, logger=common.__name__)
    _fit(tmp_path, [LogProgress("fit", every_s=30.0, clock=lambda: next(ticks))], max_steps=11,
         limit_val_batches=0)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("fit:")]
    # the first at step 2 (20 s: the first with an estimate), then every 30 s: steps 5, 8, 11
    assert [int(re.match(r"fit: step (\d+) / 11 ", line).group(1)) for line in lines] == [2, 5, 8, 11], lines



# ---- a graph stage's children (HPO trials, retrain and baseline seeds): ChildrenProgress -------
def _children_cfg(*overrides: str):
    return compose_config("search", ["+task=cora", "hardware=cpu", *overrides])


def test_children_lines_count_finished_children_with_an_estimate(monkeypatch, caplog):
    """A line ``retrain: N / M seeds finished, <elapsed> elapsed, about <eta> left``: the first once
    10 s have passed and a child has finished, then at most every ``progress_every_s``; none after
    the last child (its own line follows)."""
    monkeypatch.setattr(common.sys.stdout, "isatty", lambda: False, raising=False)
    now = [0.0]
    caplog.set_level(logging.INFO, logger=common.__name__)
    with common.ChildrenProgress(_children_cfg("hardware.progress_every_s=30"), "retrain", 10, "seeds",
                                 clock=lambda: now[0], tick_s=None) as progress:
        for _ in range(10):
            now[0] += 7  # a child: 7 s
            progress.advance()
            progress.check()  # a tick between children writes nothing more
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["retrain: 2 / 10 seeds finished, 0 min 14 s elapsed, about 0 min 56 s left",
                     "retrain: 7 / 10 seeds finished, 0 min 49 s elapsed, about 0 min 21 s left"], lines


def test_children_lines_come_while_the_first_children_train(monkeypatch, caplog):
    """Minutes of training the first children side by side had no line: once ``progress_every_s``
    has passed a line says so, without an estimate; children an earlier invocation finished count
    as finished, not in the pace."""
    monkeypatch.setattr(common.sys.stdout, "isatty", lambda: False, raising=False)
    now = [0.0]
    caplog.set_level(logging.INFO, logger=common.__name__)
    with common.ChildrenProgress(_children_cfg("hardware.progress_every_s=60"), "hpo", 8, "trials", done_before=3,
                                 clock=lambda: now[0], tick_s=None) as progress:
        now[0] = 59.0
        progress.check()
        now[0] = 60.0
        progress.check()
        now[0] = 100.0
        progress.advance()
        now[0] = 120.0
        progress.check()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["hpo: 3 / 8 trials finished, 1 min 00 s elapsed",
                     "hpo: 4 / 8 trials finished, 2 min 00 s elapsed, about 8 min 00 s left"], lines


def test_children_progress_off_writes_nothing(monkeypatch, caplog):
    monkeypatch.setattr(common.sys.stdout, "isatty", lambda: False, raising=False)
    caplog.set_level(logging.INFO, logger=common.__name__)
    for off in ("hardware.progress=false", "hardware.progress_every_s=null"):
        with common.ChildrenProgress(_children_cfg(off, "hardware.progress_every_s=0"
                                                   if off.endswith("false") else off), "retrain", 3, "seeds",
                                     tick_s=0.01) as progress:
            progress.advance()
            time.sleep(0.05)
    assert not caplog.records


def _graph_retrain(monkeypatch, tmp_path, seeds: int, overrides=(), graph=None):
    """``graph_stages.retrain`` of GCN with stand-in children of 7 s each on a clock of the test's."""
    import functools
    from types import SimpleNamespace

    from src.pipeline import graph_stages
    from src.space import Architecture
    from tests.helpers import ROOT

    now = [0.0]

    class Fitted:
        history: list = []

        def __init__(self, seed):
            self.seed = seed

        def selected(self):
            return {"val_acc": 0.5 + self.seed / 100, "test_acc": 0.4, "step": 3}

    def fake_fit(cfg, arch, dm, hp, seed, out, name, model_file=None):
        now[0] += 7
        return Fitted(seed)

    monkeypatch.setattr(graph_stages, "fit_child", fake_fit)
    monkeypatch.setattr(graph_stages, "ChildrenProgress",
                        functools.partial(common.ChildrenProgress, clock=lambda: now[0], tick_s=None))
    cfg = _children_cfg(f"graph.retrain.seeds={seeds}", "graph.retrain.workers=1", *overrides)
    dm = SimpleNamespace(graph=graph, num_features=5, num_classes=3, multilabel=False, metric="accuracy")
    return graph_stages.retrain(cfg, Architecture.load(ROOT / "src/space/archs/gcn.yaml"), dm, tmp_path)


def test_graph_retrain_logs_its_progress_over_the_seeds_and_each_seed_once(monkeypatch, tmp_path, caplog):
    """The graph retrain had no line between its seeds' lines (15-30 s each on Cora, two at a time):
    progress lines count the finished seeds among them, each seed's own line stays, once; a re-run
    counts the seeds an earlier invocation finished."""
    from src.pipeline import graph_stages

    monkeypatch.setattr(common.sys.stdout, "isatty", lambda: False, raising=False)
    caplog.set_level(logging.INFO)
    _graph_retrain(monkeypatch, tmp_path, 10, ["hardware.progress_every_s=30"])
    lines = [r.getMessage() for r in caplog.records if r.name in (common.__name__, graph_stages.__name__)]
    seed_lines = [line for line in lines if line.startswith("retrain: seed ")]
    assert [line.split(" ->")[0] for line in seed_lines] == [f"retrain: seed {s}" for s in range(10)]
    progress = [line for line in lines if "seeds finished" in line]
    assert progress == ["retrain: 2 / 10 seeds finished, 0 min 14 s elapsed, about 0 min 56 s left",
                        "retrain: 7 / 10 seeds finished, 0 min 49 s elapsed, about 0 min 21 s left"], lines
    # written as the seed that made it finished: "2 / 10" as seed 1 did (before its own line)
    assert lines.index(seed_lines[0]) < lines.index(progress[0]) < lines.index(seed_lines[1])
    caplog.clear()
    for seed in (6, 7, 8, 9):
        (tmp_path / "retrain" / f"seed_{seed}.json").unlink()
    _graph_retrain(monkeypatch, tmp_path, 10, ["hardware.progress_every_s=0"])
    progress = [r.getMessage() for r in caplog.records if "seeds finished" in r.getMessage()]
    assert [line.split(",")[0] for line in progress] == [f"retrain: {n} / 10 seeds finished" for n in (7, 8, 9)]
    assert "about 0 min 21 s left" in progress[0]  # 7 s a seed in this invocation, three to go
    caplog.clear()
    _graph_retrain(monkeypatch, tmp_path, 10, ["hardware.progress_every_s=0"])  # all finished: nothing to show
    assert not [r for r in caplog.records if "finished" in r.getMessage()]


def test_graph_retrain_shows_a_bar_over_its_seeds_in_a_terminal(monkeypatch, tmp_path):
    """With a terminal the graph retrain shows a bar over its seeds (it had none, while the text
    stages show theirs); the seeds' lines print whole above it, each once, and the progress lines
    go to the log file alone."""
    out = _Stream(True)
    monkeypatch.setattr(sys, "stdout", out)
    with _console_handler(out):
        _graph_retrain(monkeypatch, tmp_path, 4, ["hardware.progress_every_s=0"], graph={})
    lines = _terminal_lines(out)
    seed_lines = [line for line in lines if "retrain: seed" in line]
    assert [line.split(" ->")[0] for line in seed_lines] == [f"{PREFIX}retrain: seed {s}" for s in range(4)], lines
    assert not any("seeds finished," in line for line in lines), lines  # the lines: in the log file
    bars = [line for line in lines if line.startswith("retrain ") and "4/4 seeds finished" in line]
    assert len(bars) == 1, lines  # the bar, at its end, once


def test_the_children_bar_is_left_to_children_with_bars_of_their_own(monkeypatch, tmp_path):
    """Children of a graph without a full batch (PPI) train through Lightning, whose bar shows each:
    no stage bar beside it (Rich allows one live display), its lines in the log file alone."""
    monkeypatch.setattr(common.sys.stdout, "isatty", lambda: True, raising=False)
    progress = common.ChildrenProgress(_children_cfg(), "retrain", 3, "seeds", bar=False, tick_s=None)
    assert (progress.show_bar, progress.files_only) == (False, True)
    assert common.ChildrenProgress(_children_cfg(), "retrain", 3, "seeds", tick_s=None).show_bar


def test_a_graph_stage_that_trains_children_tells_the_timer(monkeypatch, tmp_path):
    """The summary says when an invocation only re-read finished stages: a graph retrain that
    trains a seed computed something, one that finds every seed finished did not."""
    from src.pipeline.config import Timer

    for expected in (True, False):
        timer = Timer(tmp_path / "timing.json")
        with timer("retrain"):
            _graph_retrain(monkeypatch, tmp_path, 2, ["hardware.progress=false"])
        assert timer.computed is expected


def test_stop_at_step_stops_at_the_step_and_at_the_start_of_a_fit_resumed_there():
    from src.pipeline.common import StopAtStep

    def trainer(step):
        return SimpleNamespace(global_step=step, should_stop=False)

    t = trainer(5)
    StopAtStep(5).on_train_start(t, None)
    assert t.should_stop  # resumed at (or past) the last step: no further batch
    t = trainer(0)
    StopAtStep(0).on_train_start(t, None)
    assert t.should_stop
    for max_steps in (None, -1, 6):
        t = trainer(5)
        StopAtStep(max_steps).on_train_batch_end(t, None)
        assert not t.should_stop

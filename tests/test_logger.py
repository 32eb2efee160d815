"""The ``logger`` config group: ``logger=tensorboard`` writes TensorBoard event files beside each
training stage's ``metrics.csv``, holding the same values; it is checked before any work and may change on
resume, as the machine settings may."""

from __future__ import annotations

import csv
import struct
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.demos.boring_classes import BoringModel

from src.pipeline.checks import check_config
from src.pipeline.config import sweep_excluded_keys
from src.pipeline.run_settings import may_change, run_settings
from src.utils.errors import AutoAttendError
from tests.conftest import compose_config


def read_events(folder: Path) -> list[tuple[str, int, float]]:
    """``(tag, step, value)`` of every scalar in the TFRecord event files of ``folder``: records of a
    little-endian uint64 length, its CRC, the serialised ``Event`` and the data's CRC."""
    from tensorboardX.proto import event_pb2

    scalars = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data, at = path.read_bytes(), 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at:at + 8])
            event = event_pb2.Event()
            event.ParseFromString(data[at + 12:at + 12 + length])
            at += 12 + length + 4
            scalars += [(value.tag, event.step, value.simple_value) for value in event.summary.value]
    return scalars


class LoggingModel(BoringModel):
    """Logs a training loss at every step and a validation score at every epoch end."""

    def training_step(self, batch, batch_idx):
        out = super().training_step(batch, batch_idx)
        self.log("train/loss", out["loss"], on_step=True, on_epoch=False)
        return out

    def validation_step(self, batch, batch_idx):
        self.log("val/acc", torch.tensor(0.25 + 0.01 * self.current_epoch), on_epoch=True)


def fit(cfg, run_dir: Path) -> None:
    from src.pipeline.common import make_trainer

    pl.seed_everything(0)
    trainer = make_trainer(cfg, run_dir, "supernet", max_epochs=2, limit_train_batches=3, limit_val_batches=1,
                           log_every_n_steps=1, enable_checkpointing=False)
    trainer.fit(LoggingModel())


@pytest.mark.filterwarnings("ignore:.*Checkpoint directory.*exists")
def test_tensorboard_files_hold_what_metrics_csv_holds(tmp_path):
    cfg = compose_config("search", ["+task=sst2", "budget=smoke", "hardware=cpu", "logger=tensorboard"])
    fit(cfg, tmp_path)
    with open(tmp_path / "supernet" / "metrics.csv") as file:
        rows = list(csv.DictReader(file))
    from_csv = sorted((key, int(row["step"]), round(float(value), 6)) for row in rows for key, value in row.items()
                      if key not in ("step", "epoch") and value)
    events = read_events(tmp_path / "supernet" / "tensorboard")
    from_events = sorted((tag, step, round(value, 6)) for tag, step, value in events if tag != "epoch")
    assert len(from_csv) == 8  # 6 training steps, 2 validations
    assert from_events == from_csv
    assert {tag for tag, _, _ in from_events} == {"train/loss", "val/acc"}


@pytest.mark.filterwarnings("ignore:.*Checkpoint directory.*exists")
def test_the_default_logger_writes_metrics_csv_alone(tmp_path):
    cfg = compose_config("search", ["+task=sst2", "budget=smoke", "hardware=cpu"])
    assert cfg.logger.tensorboard is False
    fit(cfg, tmp_path)
    assert (tmp_path / "supernet" / "metrics.csv").is_file()
    assert not (tmp_path / "supernet" / "tensorboard").exists()


def test_tensorboard_without_a_writer_package_is_refused_before_any_work(monkeypatch, tmp_path):
    """Checked by the packages' metadata, as Lightning decides: a folder named ``tensorboard`` in the working
    directory, which an import-spec check found, does not count."""
    import importlib.metadata

    real = importlib.metadata.distribution

    def without_writers(name):
        if name in ("tensorboardX", "tensorboard"):
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", without_writers)
    (tmp_path / "tensorboard").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = compose_config("search", ["+task=sst2", "logger=tensorboard"])
    with pytest.raises(AutoAttendError, match=r"^logger=tensorboard: TensorBoard files are written with the "
                                              r"tensorboardX or tensorboard package, and neither is installed"):
        check_config(cfg, "search")
    check_config(compose_config("search", ["+task=sst2"]), "search")  # the default needs neither


@pytest.mark.parametrize("entry", ["search", "retrain"])
def test_a_bad_logger_value_is_refused(entry):
    extra = ["arch=published_sst5"] if entry == "retrain" else []
    cfg = compose_config(entry, ["+task=sst2", "logger.tensorboard=yes", *extra])
    with pytest.raises(AutoAttendError, match=r"^logger.tensorboard: expected true or false, got 'yes'$"):
        check_config(cfg, entry)


def test_the_logger_may_change_on_resume_and_names_no_sweep_folder():
    plain = compose_config("search", ["+task=cora"])
    with_tensorboard = compose_config("search", ["+task=cora", "logger=tensorboard"])
    assert may_change("logger.tensorboard")
    assert run_settings(plain, "search") == run_settings(with_tensorboard, "search")
    excluded = sweep_excluded_keys(_root_=with_tensorboard)
    assert "logger" in excluded and "logger.tensorboard" in excluded

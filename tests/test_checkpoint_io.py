"""Checkpoints are written straight to a file (no in-memory copy of the whole checkpoint) and still
atomically."""

from __future__ import annotations

import io
import os

import pytest
import torch

from src.lit.checkpoint_io import StreamingCheckpointIO
from src.utils.io import atomic_target, atomic_write_json, atomic_write_text


def test_checkpoint_is_saved_through_a_file_in_its_folder_and_loads_back(tmp_path, monkeypatch):
    targets = []
    real_save = torch.save

    def recording_save(obj, f, *args, **kwargs):
        targets.append(f)
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", recording_save)
    checkpoint = {"state_dict": {"w": torch.randn(50, 40)}, "epoch": 3}
    path = tmp_path / "sub" / "last.ckpt"
    StreamingCheckpointIO().save_checkpoint(checkpoint, path)
    # torch.save got a path next to the checkpoint (written from the tensors' memory), never a buffer
    assert len(targets) == 1 and isinstance(targets[0], str) and not isinstance(targets[0], io.BytesIO)
    assert os.path.dirname(targets[0]) == str(path.parent) and targets[0] != str(path)
    loaded = StreamingCheckpointIO().load_checkpoint(path)
    assert loaded["epoch"] == 3 and torch.equal(loaded["state_dict"]["w"], checkpoint["state_dict"]["w"])
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_failed_save_leaves_the_previous_checkpoint_and_no_partial_file(tmp_path):
    path = tmp_path / "last.ckpt"
    StreamingCheckpointIO().save_checkpoint({"step": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        StreamingCheckpointIO().save_checkpoint({"step": 2, "bad": Unpicklable()}, path)
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
    assert StreamingCheckpointIO().load_checkpoint(path)["step"] == 1


def test_the_pipeline_trainers_use_it(smoke_cfg, tmp_path):
    from src.pipeline.common import make_trainer

    trainer = make_trainer(smoke_cfg(), tmp_path, "supernet")
    assert isinstance(trainer.strategy.checkpoint_io, StreamingCheckpointIO)


def test_the_last_checkpoint_is_written_at_every_epoch_end(smoke_cfg, tmp_path):
    """An interrupted run resumes from its last finished epoch: ``last.ckpt`` exists, holding that
    epoch's step, when the next epoch starts (not only once training ends)."""
    import lightning.pytorch as pl

    from src.pipeline.common import last_checkpoint, make_trainer

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, batch_idx):
            return self.layer(batch[0]).sum()

        def validation_step(self, batch, batch_idx):
            self.log("val", self.layer(batch[0]).sum())

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    seen = []

    class Spy(pl.Callback):
        def on_train_epoch_start(self, trainer, module):
            path = tmp_path / "supernet" / "last.ckpt"
            seen.append(torch.load(path, weights_only=False)["global_step"] if path.exists() else None)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 2)), batch_size=4)
    trainer = make_trainer(smoke_cfg(), tmp_path, "supernet", max_epochs=3, enable_checkpointing=True,
                           callbacks=[last_checkpoint(tmp_path / "supernet"), Spy()])
    trainer.fit(Tiny(), data, data)
    assert seen == [None, 2, 4]
    assert sorted(p.name for p in (tmp_path / "supernet").glob("*.ckpt")) == ["last.ckpt"]
    assert torch.load(tmp_path / "supernet" / "last.ckpt", weights_only=False)["global_step"] == 6


def test_an_atomic_write_replaces_the_file_and_a_failed_one_leaves_it(tmp_path):
    path = tmp_path / "result.json"
    path.write_text("old\n")
    os.link(path, tmp_path / "link")
    atomic_write_text(path, "new\n")
    # a new file renamed over the old: a reader holding the old one still reads it whole
    assert path.read_text() == "new\n" and (tmp_path / "link").read_text() == "old\n"
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(path, "half \ud800")  # fails while writing
    assert path.read_text() == "new\n"
    with pytest.raises(TypeError):
        atomic_write_json(path, {"x": object()})
    assert path.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "result.json"]  # no temporary file left


def test_an_atomic_write_goes_through_a_file_in_the_same_folder_with_a_normal_mode(tmp_path, monkeypatch):
    replaced = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: replaced.append((a, b)) or real(a, b))
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "sub" / "a.txt", "x")
    finally:
        os.umask(old)
    (src, dst), = replaced
    assert os.path.dirname(src) == str(tmp_path / "sub") and dst == tmp_path / "sub" / "a.txt"
    assert (tmp_path / "sub" / "a.txt").stat().st_mode & 0o777 == 0o640
    with pytest.raises(ValueError):
        with atomic_target(tmp_path / "b.txt") as tmp:
            tmp.write_text("partial")
            raise ValueError
    assert not (tmp_path / "b.txt").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["sub"]


def test_resume_step_reads_the_global_step_and_a_checkpoint_without_weights_is_refused(tmp_path):
    from src.pipeline.common import read_checkpoint, resume_step
    from src.utils.errors import AutoAttendError

    assert resume_step(tmp_path / "none.ckpt") is None
    torch.save({"state_dict": {}, "global_step": 12, "epoch": 3}, tmp_path / "last.ckpt")
    assert resume_step(tmp_path / "last.ckpt") == 12
    torch.save({"global_step": 12}, tmp_path / "bad.ckpt")
    with pytest.raises(AutoAttendError, match="bad.ckpt is unreadable .*no state_dict"):
        read_checkpoint(tmp_path / "bad.ckpt")


def test_other_file_systems_and_storage_options_go_lightnings_way(tmp_path):
    """Protects the fallback to Lightning's :class:`TorchCheckpointIO`: a checkpoint on another file
    system (here fsspec's ``memory://``) is written there and nowhere on the local disk, and
    ``storage_options`` (which Lightning refuses) is refused rather than ignored."""
    import fsspec

    target = tmp_path / "remote" / "last.ckpt"
    url = f"memory://{target}"
    StreamingCheckpointIO().save_checkpoint({"state_dict": {"w": torch.arange(6.0)}, "epoch": 2}, url)
    assert not (tmp_path / "remote").exists()  # nothing written locally at the path the URL names
    memory = fsspec.filesystem("memory")
    try:
        assert memory.exists(str(target))
        loaded = StreamingCheckpointIO().load_checkpoint(url)
        assert loaded["epoch"] == 2 and torch.equal(loaded["state_dict"]["w"], torch.arange(6.0))
    finally:
        memory.rm(str(tmp_path), recursive=True)
    local = tmp_path / "local.ckpt"
    with pytest.raises(TypeError, match="storage_options"):
        StreamingCheckpointIO().save_checkpoint({"epoch": 1}, local, storage_options={"compression": None})
    assert not local.exists()


def test_a_file_url_is_written_at_its_local_path(tmp_path, monkeypatch):
    """Protects the streaming save's use of the path fsspec resolves: a ``file://`` URL (which
    Lightning accepts) is written at its local path, not at a relative path named after the URL."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "ckpts" / "last.ckpt"
    path.parent.mkdir()
    StreamingCheckpointIO().save_checkpoint({"epoch": 4}, f"file://{path}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpts"]
    assert StreamingCheckpointIO().load_checkpoint(path)["epoch"] == 4

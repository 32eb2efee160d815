"""Checkpoints are written straight to a file (no in-memory copy of the whole checkpoint) and still
atomically."""

from __future__ import annotations

import io
import os

import pytest
import torch

from src.lit.checkpoint_io import StreamingCheckpointIO


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

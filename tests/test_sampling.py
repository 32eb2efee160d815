"""Epoch orders that a resumed run repeats, and checkpoints written inside an epoch."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.demos.boring_classes import BoringModel, RandomDataset
from torch.utils.data import DataLoader

from src.data.sampling import EpochShuffleSampler
from src.pipeline.common import last_checkpoint


def _order(sampler: EpochShuffleSampler, epoch: int) -> list[int]:
    sampler.set_epoch(epoch)
    return list(sampler)


def test_an_epochs_order_depends_only_on_the_seed_and_the_epoch():
    fresh, used = EpochShuffleSampler(50, seed=3), EpochShuffleSampler(50, seed=3)
    for epoch in range(3):
        _order(used, epoch)
    assert _order(fresh, 3) == _order(used, 3)
    assert sorted(_order(fresh, 3)) == list(range(50))
    assert _order(fresh, 3) != _order(fresh, 4) != _order(EpochShuffleSampler(50, seed=4), 4)
    # Seeds are independent: seed 1 does not replay seed 0's orders one epoch later.
    later = [_order(EpochShuffleSampler(50, seed=0), e + 1) for e in range(3)]
    assert all(_order(EpochShuffleSampler(50, seed=1), e) != later[e] for e in range(3))


def test_resuming_inside_an_epoch_leaves_out_the_examples_done_once():
    sampler = EpochShuffleSampler(50, seed=0)
    full = _order(sampler, 2)
    sampler.resume_within(2, 20)
    assert _order(sampler, 1) == _order(EpochShuffleSampler(50, seed=0), 1)  # another epoch: untouched
    assert _order(sampler, 2) == full[20:]
    assert _order(sampler, 2) == full  # the next pass over the epoch is whole again
    with pytest.raises(ValueError, match="after 51 of 50"):
        sampler.resume_within(2, 51)
    with pytest.raises(ValueError, match="after -1 of 50"):
        sampler.resume_within(2, -1)
    sampler.resume_within(2, 50)  # interrupted after the epoch's last example: nothing left of it
    assert _order(sampler, 2) == [] and _order(sampler, 2) == full


class _Saves(BoringModel):
    def __init__(self):
        super().__init__()
        self.saved_at: list[int] = []

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        self.saved_at.append(self.global_step)


@pytest.mark.parametrize("every_s, saved_at", [(None, [4, 8]), (0.0, [1, 2, 3, 4, 5, 6, 7, 8])])
def test_checkpoints_inside_an_epoch_skip_its_last_batch(tmp_path, every_s, saved_at):
    """``every_s=0``: a save after every batch but an epoch's last, whose save follows the epoch's
    validation (which a resume from a save before it would skip); ``None``: epoch ends only."""
    model = _Saves()
    loader = DataLoader(RandomDataset(32, 16), batch_size=4, sampler=EpochShuffleSampler(16, 0))
    trainer = pl.Trainer(default_root_dir=tmp_path, max_epochs=2, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[last_checkpoint(tmp_path / "ckpt", every_s=every_s)])
    trainer.fit(model, loader, DataLoader(RandomDataset(32, 4), batch_size=4))
    assert model.saved_at == saved_at
    assert torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)["global_step"] == 8


@pytest.mark.parametrize("every_s, saved_at", [(None, [4, 8]), (0.0, [3, 4, 6, 8])])
def test_fits_validated_every_n_steps_save_inside_an_epoch_after_a_validation(tmp_path, every_s, saved_at):
    """Validation every 3 steps, 4 batches an epoch, epoch-end saves: ``every_s=0`` adds a save
    after each validation inside an epoch (steps 3 and 6), never after a batch (a save there would
    come before the batch's validation, which a resume would skip)."""
    model = _Saves()
    loader = DataLoader(RandomDataset(32, 16), batch_size=4, sampler=EpochShuffleSampler(16, 0))
    trainer = pl.Trainer(default_root_dir=tmp_path, max_epochs=2, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, val_check_interval=3, check_val_every_n_epoch=None,
                         callbacks=[last_checkpoint(tmp_path / "ckpt", on_train_epoch_end=True, every_s=every_s)])
    trainer.fit(model, loader, DataLoader(RandomDataset(32, 4), batch_size=4))
    assert model.saved_at == saved_at


def test_make_loader_subsets_by_seed_and_shuffles_by_epoch():
    from src.data.sampling import EpochShuffleSampler
    from src.pipeline.common import make_loader

    data = list(range(50))
    a, b, c = (make_loader(data, 4, False, s, subset=10).dataset.indices for s in (0, 0, 1))
    assert a == b and a != c and len(set(a)) == 10
    assert isinstance(make_loader(data, 4, True, 3).sampler, EpochShuffleSampler)
    assert list(make_loader(data, 4, False, 3).sampler) == list(range(50))


class _SavesAfterValidations(BoringModel):
    def __init__(self):
        super().__init__()
        self.validations = 0
        self.saved_at: list[tuple[int, int]] = []

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self.validations += 1

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        self.saved_at.append((self.global_step, self.validations))


def test_the_save_after_an_epochs_last_batch_waits_for_its_validation(tmp_path):
    """``every_s=0``, validated at epoch ends: the save at step 4 (the epoch's last batch) comes
    after that epoch's validation, not before it (a resume from it would skip the validation)."""
    model = _SavesAfterValidations()
    loader = DataLoader(RandomDataset(32, 16), batch_size=4, sampler=EpochShuffleSampler(16, 0))
    trainer = pl.Trainer(default_root_dir=tmp_path, max_epochs=2, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[last_checkpoint(tmp_path / "ckpt", every_s=0.0)])
    trainer.fit(model, loader, DataLoader(RandomDataset(32, 4), batch_size=4))
    assert model.saved_at == [(1, 0), (2, 0), (3, 0), (4, 1), (5, 1), (6, 1), (7, 1), (8, 2)]

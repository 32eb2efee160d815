"""Findings of a walk through the Python API (space, strategies, models, estimator, data, Lightning
modules) used as a library (session 46): each test states the documented or due behaviour, and failed on the
code before its mend for the reason its docstring gives."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from src.space import GRAPH_OPS, Architecture, FunctionalSpace
from src.strategies import Evolution, build_strategy


def test_graph_file_row_normalize_is_planetoids_normalisation(tmp_path):
    """``task.row_normalize`` is documented as Planetoid's normalisation (PyG's ``NormalizeFeatures``: the row sum
    clamped at 1); it divided by the sum itself, scaling a row of fractional features summing below 1 up to 1."""
    from src.data.graph_file import GraphFileDataModule
    from src.data.planetoid import row_normalized

    x = np.array([[0.2, 0.3, 0.0], [1.0, 1.0, 2.0], [0.0, 0.5, 0.0], [3.0, 0.0, 1.0]], dtype=np.float32)
    np.savez(tmp_path / "g.npz", x=x, edge_index=np.array([[0, 1, 2, 3], [1, 2, 3, 0]]), y=np.array([0, 1, 0, 1]),
             train_mask=np.array([1, 1, 0, 0], bool), val_mask=np.array([0, 0, 1, 0], bool),
             test_mask=np.array([0, 0, 0, 1], bool))
    dm = GraphFileDataModule(path=str(tmp_path / "g.npz"), row_normalize=True, sparse_features=False,
                             cache_dir=str(tmp_path / "cache"))
    dm.setup()
    expected = row_normalized(torch.tensor(x))  # rows 0 and 2 sum to 0.5: left as they are
    assert torch.allclose(expected[0], torch.tensor([0.2, 0.3, 0.0]))
    assert torch.allclose(dm.graph["x"], expected)


def test_build_strategy_refuses_an_aging_sample_size_of_zero():
    """``sample_size=0`` was replaced in silence by a fifth of the population (``or``); AgingEvolution refuses it."""
    space = FunctionalSpace(3)
    with pytest.raises(ValueError, match="sample_size"):
        build_strategy("aging", space, 0, population=10, sample_size=0, budget=12)
    assert build_strategy("aging", space, 0, population=10, budget=12).sample_size == 2  # not given: a fifth


def test_best_of_a_strategy_with_nothing_scored_is_a_clear_error():
    """``best()`` before any score was a bare ``IndexError: list index out of range``."""
    strategy = Evolution(FunctionalSpace(3), seed=0, population=4, rounds=1, parents=2)
    with pytest.raises(RuntimeError, match=r"^best\(\): no candidate has been scored yet"):
        strategy.best()
    first = strategy.ask()[0]
    strategy.tell(first, 0.5)
    assert strategy.best() == (first, 0.5)


def test_an_estimator_with_nothing_to_score_is_a_clear_error():
    """Batches with no example to score (a graph batch whose validation mask is empty) ended in a bare
    ``ZeroDivisionError``."""
    from src.estimator import SupernetEstimator
    from src.lit.graph_modules import graph_score_batch
    from src.models import cpu_kernels
    from src.models.graph import GraphNet

    before = cpu_kernels.get_backend()
    cpu_kernels.set_backend("torch")  # no kernel build: the finding is in the estimator
    try:
        space = FunctionalSpace(2, ops=GRAPH_OPS)
        model = GraphNet.supernet(5, 3, space, hidden=16, heads=2)
        n = 4
        batch = {"x": torch.randn(n, 5), "edge_index": torch.tensor([[0, 1, 2], [1, 2, 3]]),
                 "y": torch.tensor([0, 1, 2, 0]), "train_mask": torch.ones(n, dtype=torch.bool),
                 "val_mask": torch.zeros(n, dtype=torch.bool), "test_mask": torch.zeros(n, dtype=torch.bool)}
        estimator = SupernetEstimator(model, [batch], score_batch=graph_score_batch(False))
        with pytest.raises(ValueError, match="batches hold no example to score"):
            estimator(space.sample(random.Random(0)))
    finally:
        cpu_kernels.set_backend(before)


def test_a_float_mask_is_refused_naming_the_mask_and_bool():
    """A float 0/1 mask (as Hugging Face tokenisers give) failed deep in the torch ops with "~ (operator.invert) is
    only implemented on integer and Boolean-type tensors", naming neither the mask nor bool."""
    from src.models import cpu_kernels
    from src.models.text import TextClassifier

    before = cpu_kernels.get_backend()
    cpu_kernels.set_backend("torch")
    try:
        torch.manual_seed(0)
        arch = Architecture.from_dict({"layers": [
            {"kind": "add", "q_src": 0, "q_op": "conv1", "k_src": 0, "k_op": "zero"},
            {"kind": "attn", "q_src": 1, "q_op": "identity", "k_src": 0, "k_op": "conv3", "v_src": 0,
             "v_op": "identity"}]})
        model = TextClassifier.child(torch.randn(20, 6), 3, arch, dim=8, heads=2).eval()
        mask = torch.tensor([[True, True, True], [True, True, False]])
        tokens = torch.tensor([[2, 3, 4], [5, 6, 0]])
        assert model(tokens, mask).shape == (2, 3)  # the documented bool mask works
        with pytest.raises(ValueError, match=r"mask \(B, T\) bool, True at real tokens; got tokens of shape "
                                             r"\(2, 3\) and mask torch.float32 of shape \(2, 3\)$"):
            model(tokens, mask.float())
        with pytest.raises(ValueError, match=r"got tokens of shape \(3,\) and mask torch.bool of shape \(3,\)$"):
            model(tokens[0], mask[0])
    finally:
        cpu_kernels.set_backend(before)

"""The document tasks end to end: sliding-window encoding, every task preset composed, and the
command line on generated CSV files (a full smoke search, bad input)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from src.bench_data import write_zhang_csv
from src.data.csv_text import CSVTextDataModule
from src.models.text import TextClassifier
from src.pipeline.checks import check_config
from src.space import FunctionalSpace
from tests.conftest import compose_config

ROOT = Path(__file__).resolve().parents[1]

# name: (classes, local folder, text fields, hub name, max_len, window)
TASKS = {
    "agnews": (4, "ag_news_csv", 2, "fancyzhx/ag_news", 128, None),
    "dbpedia": (14, "dbpedia_csv", 2, "fancyzhx/dbpedia_14", 128, None),
    "yelp2": (2, "yelp_review_polarity_csv", 1, "fancyzhx/yelp_polarity", 512, 64),
    "yelp5": (5, "yelp_review_full_csv", 1, "Yelp/yelp_review_full", 512, 64),
    "yahoo": (10, "yahoo_answers_csv", 3, "community-datasets/yahoo_answers_topics", 256, 64),
    "amazon2": (2, "amazon_review_polarity_csv", 2, "fancyzhx/amazon_polarity", 256, 64),
    "amazon5": (5, "amazon_review_full_csv", 2, None, 256, 64),
}


# ------------------------------------------------------------------------------------ windows


def _model(window: int | None, supernet: bool = False, seed: int = 0) -> tuple[TextClassifier, object]:
    torch.manual_seed(seed)
    embeddings = torch.randn(60, 8)
    space = FunctionalSpace(3)
    arch = space.sample(random.Random(seed + 1))
    if supernet:
        model = TextClassifier.supernet(embeddings, 3, space, dim=16, heads=2, dropout=0.0, attn_dropout=0.0,
                                        window=window, stride=32)
    else:
        model = TextClassifier.child(embeddings, 3, arch, dim=16, heads=2, dropout=0.0, attn_dropout=0.0,
                                     window=window, stride=32)
    return model.eval(), arch


def _batch(lengths: list[int], width: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids (B, width) padded with 0 after each row's length, and the mask (B, width)."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(2, 60, (len(lengths), width), generator=g)
    mask = torch.arange(width).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    return tokens.masked_fill(~mask, 0), mask


def test_window_is_inert_on_sequences_that_fit():
    plain, arch = _model(None)
    windowed, _ = _model(64)
    windowed.load_state_dict(plain.state_dict())
    tokens, mask = _batch([64, 10, 33], 64)
    assert torch.equal(windowed(tokens, mask, arch), plain(tokens, mask, arch))


def test_window_pool_is_the_max_over_the_windows_that_add_tokens():
    model, arch = _model(64)
    tokens, mask = _batch([100], 100)
    with torch.no_grad():
        # Windows [0, 64), [32, 96), [64, 100): each encoded alone, then max-pooled.
        pieces = [tokens[:, a:b] for a, b in ((0, 64), (32, 96), (64, 100))]
        maxima = [model.encoder(model.features(p, torch.ones_like(p, dtype=torch.bool)),
                                torch.ones_like(p, dtype=torch.bool), arch).amax(dim=1) for p in pieces]
        expected = model.classifier(torch.stack(maxima).amax(dim=0))
        assert torch.allclose(model(tokens, mask, arch), expected, atol=1e-5)


def test_window_logits_do_not_depend_on_padding_or_batch():
    model, arch = _model(64)
    lengths = [100, 30, 130, 65]
    tokens, mask = _batch(lengths, 130)
    with torch.no_grad():
        ref = model(tokens, mask, arch)
        wide = torch.nn.functional.pad(tokens, (0, 130)), torch.nn.functional.pad(mask, (0, 130))
        # 130 extra pad positions add empty windows and tail windows: all ignored.
        assert torch.allclose(model(*wide, arch), ref, atol=1e-5)
        for row, n in enumerate(lengths):
            alone = model(tokens[row:row + 1, :n], mask[row:row + 1, :n], arch)
            assert torch.allclose(alone, ref[row:row + 1], atol=1e-5)


def test_windowed_supernet_trains_and_rejects_bad_stride():
    model, arch = _model(64, supernet=True)
    tokens, mask = _batch([150, 40], 150)
    model.train()
    loss = torch.nn.functional.cross_entropy(model(tokens, mask, arch), torch.tensor([0, 2]))
    loss.backward()
    assert model.stem.proj.weight.grad.abs().sum() > 0 and model.classifier.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="stride"):
        TextClassifier.child(torch.randn(5, 4), 2, arch, dim=8, heads=2, window=16, stride=32)


@pytest.mark.parametrize("window", [None, 64])
def test_worst_batch_positions_are_the_positions_the_encoder_runs_on(window):
    """The memory check's count of a batch's token positions is what the model encodes for the
    longest sequences: each padded to the longest, or cut into the windows that add tokens."""
    from src.models.text import worst_batch_positions

    model, arch = _model(window)
    lengths = [40, 150, 65, 97, 64, 12]
    seen = []
    features = model.features
    model.features = lambda tokens, mask: seen.append(tuple(tokens.shape)) or features(tokens, mask)
    for batch_size in (1, 2, 4, 6):
        longest = sorted(lengths, reverse=True)[:batch_size]
        seen.clear()
        model(*_batch(longest, longest[0]), arch)
        ((rows, width),) = seen
        assert rows * width == worst_batch_positions(torch.tensor(lengths), batch_size, window, 32), batch_size
    # 150 tokens: windows at 0, 32, 64, 96 (the next, at 128, adds none): 4 x 64 positions
    assert worst_batch_positions(torch.tensor(lengths), 1, window, 32) == (256 if window else 150)


def test_a_batch_no_machine_of_this_memory_could_train_is_refused_before_training(tmp_path, monkeypatch):
    """``data.max_len=100000`` with windows was killed by the kernel at 24 GB minutes into the
    supernet, without a word: a training batch whose activations alone cannot fit in the machine's
    memory is refused with the settings to lower, before any result is written. The floor counts
    what is computed: a recomputed stage keeps only each layer's input, a retrain only the layers
    that reach the output, and a stage that will not run is not checked."""
    from types import SimpleNamespace

    import src.utils.memory
    from src.pipeline import stages
    from src.pipeline.run import run_retrain, run_search
    from src.pipeline.stages import ACTIVATION_BYTES_FLOOR, RECOMPUTE_BYTES_FLOOR, check_batch_memory
    from src.utils.errors import AutoAttendError
    from tests.helpers import write_tiny_sst

    cfg = compose_config("search", ["+task=yahoo", "data.max_len=100000", "hardware=cpu"])
    dm = SimpleNamespace(train_set=SimpleNamespace(lengths=torch.tensor([100_000] * 200 + [50] * 1000)))
    positions = 128 * 3124 * 64  # 128 documents of 3,124 windows
    need = positions * 24 * 64 * ACTIVATION_BYTES_FLOOR
    monkeypatch.setattr(src.utils.memory, "machine_memory_bytes", lambda: need)
    check_batch_memory(cfg, dm, {"supernet": 24})  # exactly the floor: not refused
    monkeypatch.setattr(src.utils.memory, "machine_memory_bytes", lambda: 24 * 2**30)
    with pytest.raises(AutoAttendError, match=r"^supernet.batch_size=128: a training batch of the longest documents "
                       r"\(data.max_len=100000, in windows of 64 every 32, 25,591,808 token positions\) needs at "
                       r"least 585.8 GiB .* 24.0 GiB: lower data.max_len or supernet.batch_size \(or set "
                       r"supernet.recompute=true\)$"):
        check_batch_memory(cfg, dm, {"supernet": 24})
    recompute = compose_config("search", ["+task=yahoo", "data.max_len=100000", "hardware=cpu",
                                          "supernet.recompute=true"])
    monkeypatch.setattr(src.utils.memory, "machine_memory_bytes", lambda: positions * 24 * 64 * RECOMPUTE_BYTES_FLOOR)
    check_batch_memory(recompute, dm, {"supernet": 24})
    with pytest.raises(AutoAttendError, match=r"needs at least 147.6 GiB .* 146.4 GiB: lower data.max_len or supernet.batch_size$"):
        check_batch_memory(compose_config("search", ["+task=yahoo", "data.max_len=100000", "hardware=cpu",
                                                     "supernet.recompute=true", "supernet.batch_size=129"]),
                           dm, {"supernet": 24})
    check_batch_memory(compose_config("search", ["+task=yahoo"]), SimpleNamespace(
        train_set=SimpleNamespace(lengths=torch.tensor([256] * 200))), {"supernet": 24})  # the preset

    data = write_tiny_sst(tmp_path / "data")
    monkeypatch.setattr(src.utils.memory, "machine_memory_bytes", lambda: 1000)
    for entry, name, extra, line in (
            (run_search, "search", [], "supernet.batch_size=32: "),
            (run_retrain, "retrain", ["arch=published_sst5"], r"retrain.batch_size=32: .*\(5 layers x 16 channels\)")):
        run_dir = tmp_path / name  # published_sst5: 5 of its 24 layers reach the output
        cfg = compose_config(name, ["+task=sst2", "budget=smoke", "hardware=cpu", f"paths.data_dir={data}",
                                    f"paths.cache_dir={tmp_path / 'cache'}", f"paths.output_dir={run_dir}", *extra])
        with pytest.raises(AutoAttendError, match=f"^{line}"):
            entry(cfg)
        assert not (run_dir / "data.json").exists() and not (run_dir / "supernet").exists()
        assert not (run_dir / "retrain").exists()

    checked = []

    def record(cfg, dm, trains):
        checked.append(sorted(trains))
        raise AutoAttendError("checked")

    monkeypatch.setattr(stages, "check_batch_memory", record)
    for seeds in (2, 0):  # no retrain to run: its settings are not checked
        cfg = compose_config("search", ["+task=sst2", "budget=smoke", "hardware=cpu", f"paths.data_dir={data}",
                                        f"paths.cache_dir={tmp_path / 'cache'}", f"paths.output_dir={tmp_path / str(seeds)}",
                                        f"retrain.seeds={seeds}"])
        with pytest.raises(AutoAttendError, match="checked"):
            run_search(cfg)
    assert checked == [["retrain", "supernet"], ["supernet"]]


# ------------------------------------------------------------------------------------ configs


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_preset_composes_with_smoke_and_paper(task, tmp_path):
    classes, folder, fields, hub, max_len, window = TASKS[task]
    smoke = compose_config("search", [f"+task={task}", "budget=smoke", "hardware=cpu",
                                      f"paths.data_dir={tmp_path}", f"paths.cache_dir={tmp_path / 'cache'}"])
    assert smoke.task.name == task and smoke.task.num_classes == classes
    assert len(smoke.task.label_names) == classes  # the class names src.predict prints
    check_config(smoke, "search")
    assert smoke.task.datamodule._target_ == "src.data.csv_text.CSVTextDataModule"
    assert smoke.task.datamodule.path == f"{tmp_path}/{folder}" and smoke.task.text_fields == fields
    assert smoke.task.hub_name == hub
    assert (smoke.data.max_len, smoke.data.window, smoke.data.stride) == (max_len, window, 32)
    # smoke's explicit subsets win over the task's paper-budget defaults.
    assert smoke.supernet.train_subset == 256 and smoke.strategy.val_subset == 128
    dm = instantiate(smoke.task.datamodule, data_dir=smoke.paths.data_dir, cache_dir=smoke.paths.cache_dir,
                     train_level=smoke.data.train_level, max_len=smoke.data.max_len,
                     glove_path=smoke.data.glove_path, embedding_source=smoke.data.embedding_source,
                     num_workers=smoke.hardware.num_workers, seed=smoke.seed)
    assert isinstance(dm, CSVTextDataModule) and dm.num_classes == classes and dm.max_len == max_len
    assert dm.progress is False
    paper = compose_config("search", [f"+task={task}", "data.window=null", "data.max_len=32"])
    assert paper.supernet.train_subset is None and paper.data.window is None and paper.data.max_len == 32
    big = task not in ("agnews",)
    assert (paper.task.supernet_train_subset is not None) == big


def test_generic_csv_task_needs_path_and_classes(tmp_path):
    cfg = compose_config("search", ["+task=csv", f"task.path={tmp_path}", "task.num_classes=3"])
    assert cfg.task.datamodule.path == str(tmp_path) and cfg.task.datamodule.num_classes == 3
    assert (cfg.data.max_len, cfg.data.window) == (64, None)
    bare = compose_config("search", ["+task=csv"])
    with pytest.raises(Exception, match="num_classes is not set"):
        instantiate(bare.task.datamodule, data_dir=str(tmp_path))


# ------------------------------------------------------------------------------------ command line


def cli(module: str, *args: str, data_dir: Path, tmp: Path, run_dir: Path) -> subprocess.CompletedProcess:
    """``python -m module args`` with data, cache and outputs under ``tmp`` and no hub access."""
    env = {**os.environ, "AUTOATTEND_DATA_DIR": str(data_dir), "AUTOATTEND_CACHE_DIR": str(tmp / "cache"),
           "AUTOATTEND_OUTPUT_DIR": str(tmp / "out"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    argv = [sys.executable, "-m", module, *args, f"hydra.run.dir={run_dir}"]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_smoke_search_on_generated_yahoo_csv_with_windows(tmp_path):
    data = tmp_path / "data"
    folder = data / "yahoo_answers_csv"
    write_zhang_csv(folder / "train.csv", 300, num_classes=10, text_fields=3, seed=0, mean_words=90)
    write_zhang_csv(folder / "test.csv", 60, num_classes=10, text_fields=3, seed=1, mean_words=90)
    run_dir = tmp_path / "run"
    proc = cli("src.search", "+task=yahoo", "budget=smoke", "hardware=cpu", "retrain.seeds=1", data_dir=data,
               tmp=tmp_path, run_dir=run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((run_dir / "retrain" / "results.json").read_text())
    assert results["protocol"]["val_examples"] == 15 and results["protocol"]["test_examples"] == 60
    assert 0.0 <= results["test_acc_mean"] <= 1.0
    log = (run_dir / "search.log").read_text()
    assert "carved from train" in log and "max_len 256" in log
    # Most documents are longer than one window, so the window path really ran.
    (ids_dir,) = [p for p in (tmp_path / "cache").iterdir() if p.name.startswith("yahoo-ids-")]
    lengths = json.loads((ids_dir / "meta.json").read_text())["lengths"]
    assert lengths["train"]["p50"] > 64 and lengths["test"]["p50"] > 64


@pytest.mark.slow  # the reader's line: tests/test_data_csv.py::test_bad_csv_one_line_error_and_no_cache_left; a data
# file's error through the command line: tests/test_pipeline.py::test_wrong_embedding_file_format
def test_bad_csv_through_the_command_line(tmp_path):
    corpus = tmp_path / "corpus"
    write_zhang_csv(corpus / "test.csv", 10, num_classes=3, text_fields=1)
    (corpus / "train.csv").write_text('"1","fine"\n"2","also fine"\n"3","one","too many"\n', encoding="utf-8")
    proc = cli("src.search", "+task=csv", f"task.path={corpus}", "task.num_classes=3", "budget=smoke",
               data_dir=tmp_path, tmp=tmp_path, run_dir=tmp_path / "r")
    assert proc.returncode == 2
    assert f"error: {corpus / 'train.csv'}, row 3 (line 3): found 3 fields, expected 2 fields" in proc.stderr
    assert "Traceback" not in proc.stderr
    cache = tmp_path / "cache"
    assert not cache.exists() or list(cache.iterdir()) == []
    assert not (tmp_path / "r" / "summary.json").exists()

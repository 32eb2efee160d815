"""Findings of a text-formats walk (2026-12-07): the text loaders of ``src/data`` on small files written as real files
in the wild look (Windows editors' and Excel's UTF-8 byte-order marks and CRLF line ends, a last line without its
newline, blank and whitespace-only lines, quoted fields holding commas, quotes and line breaks, header rows, labels
out of range or not integers, non-UTF-8 bytes, tabs, very long fields, malformed PTB trees, word2vec / fastText
headers and trailing spaces in word-vector files, hub copies whose label column is not integers), and whether the
same sentence tokenises alike in training and in ``src.predict``'s encoder on raw text.

Each loader must read such a file right (the exact texts, labels and counts asserted) or refuse it with one error line
naming the file, the line or row and what was expected (through the command line: status 2, one ``error:`` line, no
traceback, nothing half-built left in the cache).

Right today (plain tests): SST trees as Windows writes them (byte-order mark, CRLF, tabs, no final newline, blank and
whitespace-only lines) through the DataModule, and ``src.predict``'s PTB encoder giving the raw sentence the ids of
its tree; a decimal label and a pretty-printed (multi-line) tree refused naming the line; a CSV as Excel writes it
(byte-order mark, header, CRLF, quoted commas, doubled quotes and line breaks, an empty field, a blank line, no final
newline) read exactly, and the raw texts encoded by the run's encoder as training encoded them; a field longer than
csv's 128 KiB default limit; labels padded with spaces; a decimal label refused naming the row; an empty or
blank-only valid.csv, a test.csv with a header row or another field count refused naming that file; a latin-1 byte
refused through ``src.search``'s command line as one ``error:`` line with nothing cached; a fastText ``.vec`` file
(header, trailing spaces, CRLF, no final newline) read; a tab-separated vector file refused naming line 1.

Findings (first strict xfails, each the correct behaviour; all six mended since, session 53):

1. (Mended: read as ``utf-8-sig``.) A word-vector file with a UTF-8 byte-order mark (Notepad's "UTF-8 with BOM", which
   every other text loader of the project strips) loses its first word: the mark is read as part of it, so that word
   gets a random vector; with a word2vec header ``N E`` after the mark, the header is read as the word "\\ufeffN" with a
   1-d vector, every line after it as a 1-d vector of a word holding spaces, and the whole file gives 1-d vectors, none
   found (``src/data/embeddings.py`` ``_read_glove_text`` opens the file as ``utf-8``, not ``utf-8-sig``).
2. (Mended: the dimension is the header's E or the first line's trailing floats; a word ending in a value is refused as
   more values.) A word-vector line with more values than the first line's dimension is read as a word holding spaces
   (``"bad 4"``) and dropped in silence, while one with fewer values is refused naming its line; and a file whose first
   line is such a word (``". . . 1 2 3"``, as glove.840B has) takes the word's pieces for values, so every later line is
   refused as too short (``_read_glove_text``: the dimension is the first line's piece count; the words with spaces are
   split from the right whatever the last piece of the word is).
3. (Mended: skipped as a blank line.) A whitespace-only line in a CSV file (a line of spaces, or a tab, left by an
   editor) is refused as a record of one field (a tab-only line with the hint "its fields look separated by tabs
   (TSV)"), where a blank line is skipped, as the tree reader and ``src.predict --file`` skip both
   (``src/data/zhang_csv.py`` ``read_rows`` / ``count_fields`` skip only ``not row``).
4. (Mended: the line ends counted as the lines are split.) A tree file with classic-Mac line ends (CR alone, which
   ``read_tree_file`` reads as line ends) names line 1 for a non-UTF-8 byte on any line, where its parse errors name the
   right line (``src/data/ptb.py`` ``read_tree_file`` counts only ``\\n`` bytes before the bad byte).
5. (Mended: ``src.data.hub.hub_class_number``: integers and whole floats, else the one-line refusal.) A hub copy whose
   label column holds strings (``"positive"``) or a missing label (None) fails with a bare ``ValueError`` /
   ``TypeError`` traceback (CSV tasks' ``_hub_batch`` and SST's ``_from_hub`` call ``int(raw)`` unguarded), and one
   holding non-integral floats (``stanfordnlp/sst``'s default config: a sentiment score in [0, 1]) is truncated to class
   0 in silence (``int(0.75) == 0``).
6. (Mended: read as no words.) A hub SST copy with a missing sentence (None) trains on the word "None" (``_from_hub``:
   ``str(text).split()``), where the CSV tasks' hub path reads None as an empty text.

Not covered: ``classes.txt`` of the Zhang folders is read by no loader (``task.num_classes`` and
``task.label_names`` are given in the config), so a count differing from the labels is not checked; nothing asserts
it. The GloVe reader decodes with ``errors="replace"`` on purpose (a latin-1 word becomes unknown in silence); left as
it is. ``src.predict``'s PTB tokenizer differs from the SST trees' for 13 rare word types over the whole treebank
("gonna", "wanna", "gotta", "S&M", "R&B", "ol'", "'n'", "!?", "8\\xa01\\/2"): 23 of its 227,242 tokens; not a finding
here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from src.data.csv_text import CSVTextDataModule
from src.data.embeddings import load_word_vectors
from src.data.ptb import read_tree_file
from src.data.sst import SSTDataModule
from src.data.text import PAD, UNK
from src.data.zhang_csv import count_fields, read_rows
from src.utils.errors import AutoAttendError
from tests.helpers import cli


def _raised(action) -> BaseException | None:
    """The exception ``action()`` raises (None when it returns)."""
    try:
        action()
    except Exception as err:  # noqa: BLE001 - the test asserts what it is
        return err
    return None


def _csv_dm(path: Path, cache: Path, num_classes: int = 3, **kwargs) -> CSVTextDataModule:
    kwargs.setdefault("embedding_source", "random")
    kwargs.setdefault("progress", False)
    return CSVTextDataModule(data_dir=str(path), cache_dir=str(cache), path=str(path), num_classes=num_classes,
                             **kwargs)


def _ready(dm):
    dm.prepare_data()
    dm.setup("fit")
    return dm


def _rows(n: int) -> str:
    words = {1: "awful bad film", 2: "okay average film", 3: "great good film"}
    return "".join(f'{1 + i % 3},"{words[1 + i % 3]}, number {i}"\n' for i in range(n))


def _decoded(dm, split) -> list[tuple[list[str], int]]:
    return [([dm.vocab[i] for i in ids.tolist()], label) for ids, label in split]


# ------------------------------------------------------------------------------------ SST trees


def _flat(label: int, words: list[str], sep: str = " ") -> str:
    """A tree whose root holds one leaf node per word (every leaf labelled 2)."""
    return f"({label}{sep}" + sep.join(f"(2 {w})" for w in words) + ")"


QUOTED = ["He", "said", "``", "it", "'s", "1\\/2", "\\*", "great", "-LRB-", "really", "-RRB-", "''", "and", "did",
          "n't", "care", "..."]
QUOTED_RAW = 'He said "it\'s 1/2 * great (really)" and didn\'t care...'


def test_sst_trees_as_windows_writes_them_are_read_exactly_and_predict_encodes_their_raw_text_alike(tmp_path):
    """Byte-order mark, CRLF line ends, a tab between nodes, blank and whitespace-only lines, no final newline: every
    tree read, its words and label exact; the raw sentence encodes to the ids of its tree (``src.predict``'s
    encoder: the task's PTB tokenizer and vocabulary)."""
    trees = tmp_path / "data" / "sst" / "trees"
    trees.mkdir(parents=True)
    train = ["\ufeff" + _flat(4, QUOTED), "", "  \t ", _flat(0, ["A", "dull", ",", "boring", "film", "."], sep="\t")]
    (trees / "train.txt").write_bytes("\r\n".join(train).encode("utf-8"))  # no newline after the last tree
    (trees / "dev.txt").write_bytes(("\ufeff" + _flat(3, ["fine", "."]) + "\r\n\r\n").encode("utf-8"))
    (trees / "test.txt").write_bytes((_flat(1, ["Gripping", ",", "if", "flawed", ";", "ca", "n't", "save", "it", "."])
                                      + "\r\n").encode("utf-8"))
    dm = SSTDataModule(data_dir=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"), num_classes=5,
                       train_level="sentence", embedding_source="random")
    dm.setup("fit")
    assert _decoded(dm, dm.train_set) == [(QUOTED, 4), (["A", "dull", ",", "boring", "film", "."], 0)]
    assert _decoded(dm, dm.val_set) == [(["fine", "."], 3)]
    assert _decoded(dm, dm.test_set) == [(["Gripping", ",", "if", "flawed", ";", "ca", "n't", "save", "it", "."], 1)]
    encoder = dm.text_encoder()
    assert encoder.ids(QUOTED_RAW) == dm.train_set[0][0].tolist()
    assert encoder.ids("A dull, boring film.") == dm.train_set[1][0].tolist()
    assert encoder.ids("Gripping, if flawed; the cast can't save it.")[:4] == dm.test_set[0][0].tolist()[:4]


@pytest.mark.parametrize(("content", "said"), [
    (b"(3 (2 It) (4 good))\n(3 (2 It) (4.0 good))\n", "line 2: malformed PTB tree: expected an integer label after "
                                                     "'(', got '4.0'"),
    # a pretty-printed tree (as NLTK's Tree.pretty_print or the PTB's .mrg files write one): one tree a line
    (b"(3 (2 It)\n   (4 good))\n", "line 1: malformed PTB tree: unbalanced '(': 1 bracket(s) left open at the end of "
                                   "the line"),
    (b"(2 fine)\r\n(3 (2 caf\xe9) (4 ok))\r\n", "line 2: not UTF-8 text (byte 0xe9); the SST trees are UTF-8"),
], ids=["decimal_label", "pretty_printed", "latin1_crlf"])
def test_a_tree_file_defect_is_one_line_naming_the_file_and_line(tmp_path, content, said):
    path = tmp_path / "train.txt"
    path.write_bytes(content)
    err = _raised(lambda: read_tree_file(path, num_labels=5))
    assert isinstance(err, AutoAttendError) and str(err) == f"{path}, {said}"


def test_a_non_utf8_byte_in_a_tree_file_with_cr_line_ends_names_its_line(tmp_path):
    path = tmp_path / "train.txt"
    path.write_bytes(b"(2 a)\r(2 (2 b) (2 c))\r(3 caf\xe9)\r")
    ok = tmp_path / "ok.txt"
    ok.write_bytes(b"(2 a)\r(2 (2 b) (2 c))\r(3 cafe)\r")
    assert [t.leaves() for t in read_tree_file(ok)] == [["a"], ["b", "c"], ["cafe"]]  # CR alone ends a line
    err = _raised(lambda: read_tree_file(path, num_labels=5))
    assert isinstance(err, AutoAttendError)
    assert str(err) == f"{path}, line 3: not UTF-8 text (byte 0xe9); the SST trees are UTF-8"


# ------------------------------------------------------------------------------------ CSV files

EXCEL = (b'\xef\xbb\xbflabel,title,text\r\n'
         b'1,Plain title,"Body, with a comma"\r\n'
         b'2,"Quote ""inside""","Two\r\nlines"\r\n'
         b'\r\n'
         b'3,,"Empty title"')  # no newline after the last row
EXCEL_ROWS = [{"label": 0, "text": "Plain title Body, with a comma"},
              {"label": 1, "text": 'Quote "inside" Two\r\nlines'},
              {"label": 2, "text": " Empty title"}]


def test_a_csv_as_excel_writes_it_is_read_exactly_and_predict_encodes_its_texts_alike(tmp_path):
    """Byte-order mark, a header row (task.header=true), CRLF, quoted commas, doubled quotes and a line break inside a
    field, an empty field, a blank line, no final newline."""
    path = tmp_path / "train.csv"
    path.write_bytes(EXCEL)
    assert count_fields(path) == 3
    assert list(read_rows(path, 3, 3, header=True)) == EXCEL_ROWS
    data = tmp_path / "data"
    data.mkdir()
    more = _rows(20).replace(',"', ',title,"').encode()
    (data / "train.csv").write_bytes(EXCEL.replace(b'"Empty title"', b'"Empty title"\r\n' + more))
    (data / "test.csv").write_bytes(EXCEL)
    dm = _ready(_csv_dm(data, tmp_path / "cache", header=True))
    assert (len(dm.train_set) + len(dm.val_set), len(dm.test_set)) == (23, 3)
    assert _decoded(dm, dm.test_set)[1] == (["Quote", '"', "inside", '"', "Two", "lines"], 1)
    encoder = dm.text_encoder()
    # src.predict gets a title and body as one line, joined with a space as training joined them
    for i, raw in enumerate(["Plain title Body, with a comma", 'Quote "inside" Two lines', "Empty title"]):
        assert encoder.ids(raw) == dm.test_set[i][0].tolist()


def test_a_field_longer_than_csvs_default_limit_and_labels_padded_with_spaces_are_read(tmp_path):
    """csv's default field limit is 128 KiB (a longer field was "field larger than field limit")."""
    path = tmp_path / "train.csv"
    long_text = "word " * 60_000  # 300,000 characters
    path.write_text(f'" 2 ","{long_text}"\n3 ,short\n', encoding="utf-8")
    rows = list(read_rows(path, count_fields(path), 3))
    assert [r["label"] for r in rows] == [1, 2]
    assert rows[0]["text"] == long_text and rows[1]["text"] == "short"


def test_a_decimal_label_is_refused_naming_the_row_and_the_range(tmp_path):
    """pandas writes labels as ``2.0`` where the column held a missing value: refused in one line naming the row and
    the range (a hint suited to a header or class names follows; reading an integral ``2.0`` as class 2, as the hub
    path does, would do as well)."""
    path = tmp_path / "train.csv"
    path.write_text('1,"a"\n2.0,"b"\n', encoding="utf-8")
    err = _raised(lambda: list(read_rows(path, 2, 3)))
    assert isinstance(err, AutoAttendError)
    assert str(err).startswith(f"{path}, row 2 (line 2): label '2.0' is not an integer; expected 1..3 (")
    assert "\n" not in str(err)


EMPTY = "the file is empty (no data rows); expected CSV rows of 2 fields (label, then 1 text field)"


@pytest.mark.parametrize(("files", "said"), [
    ({"valid.csv": ""}, f"valid.csv: {EMPTY}"),
    ({"valid.csv": "\n\n"}, f"valid.csv: {EMPTY}"),
    ({"test.csv": "label,text\n" + _rows(4)}, "test.csv, row 1 (line 1): label 'label' is not an integer; expected "
                                              "1..3 (a header row? set task.header=true; or, if every label is a class "
                                              "name, write each as its number, task.label_names names them)"),
    ({"test.csv": '1,"a","b"\n'}, "test.csv, row 1 (line 1): found 3 fields, expected 2 fields (label, then 1 text "
                                  "field)"),
], ids=["empty_valid", "blank_valid", "test_header_row", "test_field_count"])
def test_a_defect_in_valid_or_test_csv_names_that_file_and_leaves_no_cache(tmp_path, files, said):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text(_rows(20), encoding="utf-8")
    (data / "test.csv").write_text(_rows(5), encoding="utf-8")
    for name, text in files.items():
        (data / name).write_text(text, encoding="utf-8")
    cache = tmp_path / "cache"
    err = _raised(lambda: _ready(_csv_dm(data, cache)))
    assert isinstance(err, AutoAttendError) and str(err) == f"{data}/{said}"
    assert not cache.exists() or list(cache.iterdir()) == []


def test_a_latin1_byte_in_train_csv_is_one_error_line_through_the_command_line(tmp_path):
    """``python -m src.search +task=csv``: status 2, one ``error:`` line naming the file, the line and UTF-8, no
    traceback, no cache entry and no supernet started."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "train.csv").write_bytes(_rows(30).encode() + b'2,"caf\xe9 au lait"\n')
    (corpus / "test.csv").write_text(_rows(6), encoding="utf-8")
    run = tmp_path / "run"
    proc = cli("src.search", "+task=csv", f"task.path={corpus}", "task.num_classes=3", "budget=smoke", "hardware=cpu",
               "hardware.kernels=torch", data_dir=tmp_path, tmp=tmp_path, run_dir=run, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {corpus / 'train.csv'}, line 31: bytes not valid UTF-8 at byte 6 of the line "
                      "(b'\\xe9 au'); expected a UTF-8 CSV file"]
    assert "Traceback" not in proc.stderr
    cache = tmp_path / "cache"
    assert not cache.exists() or list(cache.iterdir()) == []
    assert not (run / "supernet").exists()


@pytest.mark.parametrize("line", [b"   ", b"\t"], ids=["spaces", "tab"])
def test_a_whitespace_only_line_in_a_csv_is_skipped_as_a_blank_line_is(tmp_path, line):
    path = tmp_path / "train.csv"
    path.write_bytes(b'1,"a"\n' + line + b'\n2,"b"\n' + line + b"\n")
    err = _raised(lambda: list(read_rows(path, 2, 3)))
    assert err is None, f"refused: {err}"
    assert list(read_rows(path, 2, 3)) == [{"label": 0, "text": "a"}, {"label": 1, "text": "b"}]
    path.write_bytes(line + b'\n1,"a"\n')
    assert _raised(lambda: count_fields(path)) is None and count_fields(path) == 2


# ------------------------------------------------------------------------------------ hub copies


def _fake_hub(monkeypatch, labels: list, texts: list | None = None) -> None:
    import datasets

    texts = texts if texts is not None else [f"review {i}" for i in range(len(labels))]

    def split(n: int):
        return datasets.Dataset.from_dict({"text": texts[:n], "label": labels[:n]})

    fake = datasets.DatasetDict({"train": split(len(labels)), "validation": split(2), "test": split(2)})
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: fake)


def _hub_csv_dm(tmp_path: Path) -> CSVTextDataModule:
    return CSVTextDataModule(data_dir=str(tmp_path / "none"), cache_dir=str(tmp_path / "cache"), num_classes=2,
                             hub_name="x/reviews", embedding_source="random", progress=False)


def _hub_sst_dm(tmp_path: Path) -> SSTDataModule:
    return SSTDataModule(data_dir=str(tmp_path / "none"), cache_dir=str(tmp_path / "cache"), num_classes=2,
                         hub_name="x/reviews", train_level="sentence", embedding_source="random")


@pytest.mark.parametrize("task", ["csv", "sst"])
@pytest.mark.parametrize(("labels", "row", "shown"), [(["positive", "negative"] * 3, 0, "positive"),
                                                      ([1, None, 0, 1, 0, 1], 1, "None"),
                                                      ([1.0, 0.75, 0.0, 0.25, 1.0, 0.5], 1, "0.75")],
                         ids=["strings", "none", "scores"])
def test_a_hub_label_that_is_no_class_number_is_one_error_naming_split_and_value(tmp_path, monkeypatch, task, labels,
                                                                                 row, shown):
    """(The CSV tasks' hub errors name the row, as their out-of-range one does; SST's name the value.)"""
    _fake_hub(monkeypatch, labels)
    dm = _hub_csv_dm(tmp_path) if task == "csv" else _hub_sst_dm(tmp_path)
    err = _raised(lambda: _ready(dm))
    assert isinstance(err, AutoAttendError), f"{type(err).__name__}: {err}"
    message = str(err)
    assert "\n" not in message and "x/reviews" in message and "split 'train'" in message
    assert shown in message and "column 'label'" in message
    assert labels[0] != "positive" or "value 'positive';" in message  # a class name quoted: a string, not a number
    assert task == "sst" or f"row {row}:" in message


def test_a_hub_label_column_of_integral_floats_is_read_as_its_classes(tmp_path, monkeypatch):
    """A float label column holding whole numbers (as a column of ints with a missing value is stored) is classes."""
    _fake_hub(monkeypatch, [1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    dm = _ready(_hub_csv_dm(tmp_path))
    assert dm.train_set.labels.tolist() == [1, 0, 1, 0, 1, 0] and dm.val_set.labels.tolist() == [1, 0]


def test_a_missing_hub_sentence_is_no_word_none(tmp_path, monkeypatch):
    _fake_hub(monkeypatch, [1, 0, 1], texts=[None, "a bad film", "fine"])
    dm = _hub_sst_dm(tmp_path)
    dm.setup("fit")
    assert "None" not in dm.vocab
    assert _decoded(dm, dm.train_set) == [(["a", "bad", "film"], 0), (["fine"], 1)]


# ------------------------------------------------------------------------------------ word vectors


def _vectors(tmp_path: Path, data: bytes, vocab=("good", "bad"), name: str = "vectors.txt"):
    path = tmp_path / name
    path.write_bytes(data)
    return load_word_vectors([PAD, UNK, *vocab], str(path), seed=0)


def test_a_fasttext_vec_file_with_header_trailing_spaces_and_crlf_is_read(tmp_path):
    """fastText's ``.vec``: a word2vec header ``N E``, a space after every vector; here with CRLF and no final
    newline."""
    matrix, stats = _vectors(tmp_path, b"2 3\r\ngood 1 2 3 \r\nbad 4 5 6 ")
    assert (stats["dim"], stats["found"], stats["oov"]) == (3, 2, 0)
    assert matrix[2].tolist() == [1.0, 2.0, 3.0] and matrix[3].tolist() == [4.0, 5.0, 6.0]


def test_a_tab_separated_vector_file_is_refused_naming_line_1(tmp_path):
    err = _raised(lambda: _vectors(tmp_path, b"good\t1\t2\t3\nbad\t4\t5\t6\n", name="tabs.txt"))
    assert isinstance(err, AutoAttendError)
    assert str(err) == (f"{tmp_path / 'tabs.txt'}, line 1: expected a word followed by space-separated floats, "
                        "got 'good\\t1\\t2\\t3'")


@pytest.mark.parametrize("header", [b"", b"2 3\n"], ids=["no_header", "word2vec_header"])
def test_a_vector_file_with_a_byte_order_mark_is_read_whole(tmp_path, header):
    matrix, stats = _vectors(tmp_path, b"\xef\xbb\xbf" + header + b"good 1 2 3\nbad 4 5 6\n")
    assert (stats["dim"], stats["found"], stats["oov"]) == (3, 2, 0)
    assert matrix[2].tolist() == [1.0, 2.0, 3.0] and matrix[3].tolist() == [4.0, 5.0, 6.0]


def test_a_vector_line_with_more_values_than_the_dimension_is_refused_naming_it(tmp_path):
    err = _raised(lambda: _vectors(tmp_path, b"good 1 2 3\nbad 4 5 6 7\n"))
    assert isinstance(err, AutoAttendError), "read in silence: 'bad' got a random vector"
    assert str(err) == f"{tmp_path / 'vectors.txt'}, line 2: expected a word followed by 3 floats, got 4 values"


def test_a_vector_file_whose_first_word_holds_spaces_is_read(tmp_path):
    matrix, stats = _vectors(tmp_path, b". . . 1 2 3\ngood 4 5 6\n", vocab=(". . .", "good"))
    assert (stats["dim"], stats["found"]) == (3, 2)
    assert matrix[2].tolist() == [1.0, 2.0, 3.0] and matrix[3].tolist() == [4.0, 5.0, 6.0]


def test_a_number_as_the_first_word_and_a_header_that_disagrees_with_the_lines(tmp_path):
    """The first line's word may be a number (``2008``: every piece reads as a float, the first is still the word);
    a word2vec header's E is the dimension every line is held to, the first one too."""
    matrix, stats = _vectors(tmp_path, b"2008 1 2 3\ngood 4 5 6\n", vocab=("2008", "good"))
    assert (stats["dim"], stats["found"]) == (3, 2) and matrix[2].tolist() == [1.0, 2.0, 3.0]
    err = _raised(lambda: _vectors(tmp_path, b"2 3\ngood 1 2 3 4\nbad 4 5 6\n"))
    assert str(err) == f"{tmp_path / 'vectors.txt'}, line 2: expected a word followed by 3 floats, got 4 values"

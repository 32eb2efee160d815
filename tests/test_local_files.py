"""``local_files_complete``: when a benchmark's local files are read, when the fallback (hub copy,
PyG's download) is, and when neither is, in one error (mutation audit 2026-12-05)."""

from __future__ import annotations

import os

import pytest

from src.data.hub import local_files_complete
from src.utils.errors import DataNotFoundError


def _files(tmp_path):
    return {"train": tmp_path / "train.csv", "valid": tmp_path / "valid.csv", "test": tmp_path / "test.csv"}


def test_all_required_files_are_read_none_falls_back_and_the_optional_one_is_optional(tmp_path):
    files = _files(tmp_path)
    assert local_files_complete(files, ("train", "test"), "task t") is False
    files["valid"].write_text("x")  # the optional file alone is no local copy
    assert local_files_complete(files, ("train", "test"), "task t") is False
    files["valid"].unlink()
    files["train"].write_text("x")
    files["test"].write_text("x")
    assert local_files_complete(files, ("train", "test"), "task t") is True


def test_some_required_files_without_the_others_are_one_error_naming_both(tmp_path):
    files = {name: tmp_path / name for name in ("a", "b", "c")}
    files["a"].write_text("x")
    with pytest.raises(DataNotFoundError, match=rf"^data: incomplete files, {tmp_path / 'b'}, {tmp_path / 'c'} missing "
                                                r"\(while a is there\); add the missing files: a set given in part is not "
                                                r"completed from the hub or a download, which only a folder with none "
                                                r"of them falls back to$"):
        local_files_complete(files, ("a", "b", "c"), "data")
    files["b"].write_text("x")
    with pytest.raises(DataNotFoundError, match=rf"^data: incomplete files, {tmp_path / 'c'} missing "
                                                r"\(while a, b are there\); add the missing file: "):
        local_files_complete(files, ("a", "b", "c"), "data")


def test_a_non_file_in_a_files_place_is_named_for_what_it_is(tmp_path):
    files = _files(tmp_path)
    os.mkfifo(files["test"])
    with pytest.raises(DataNotFoundError, match=rf"^task t: {files['test']} is not a regular file; expected the test "
                                                r"split's file$"):
        local_files_complete(files, ("train", "test"), "task t")
    files["test"].unlink()
    files["valid"].mkdir()  # an optional file's place too
    with pytest.raises(DataNotFoundError, match=rf"^task t: {files['valid']} is a folder; expected a file$"):
        local_files_complete(files, ("train", "test"), "task t", "a file")


def test_the_word_vectors_cache_key_follows_the_glove_file(tmp_path):
    """The caches built with GloVe vectors are keyed by the file's stamp, not its path alone: a
    GloVe file replaced in place kept serving the old vectors."""
    import time

    from src.data.embeddings import word_vectors_key

    glove = tmp_path / "glove.txt"
    glove.write_text("the 0.1 0.2\n")
    first = word_vectors_key(str(glove), "glove")
    assert word_vectors_key(str(glove), "glove") == first
    time.sleep(0.01)
    glove.write_text("the 0.3 0.4\n")  # same size
    assert word_vectors_key(str(glove), "glove") != first
    assert word_vectors_key(str(tmp_path / "none.txt"), "glove")["glove"] == {"path": str(tmp_path / "none.txt")}

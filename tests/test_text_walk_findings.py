"""The bugs a newcomer walk of the text side found (README "Quick start", "Usage", "Text benchmarks beyond
SST"; 2026-12-07, at 97a2d16), each a test that failed on the code before its mend. Fast: in-process, or a
command refused before its data are read, on files the tests write in tmp_path."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from src.pipeline.checks import check_config
from src.utils.errors import AutoAttendError
from tests.conftest import compose_config
from tests.helpers import ROOT


def _good_rows(n: int) -> str:
    words = {1: "awful bad film", 2: "okay average film", 3: "great good film"}
    return "".join(f"{1 + i % 3},{words[1 + i % 3]} number {i}\n" for i in range(n))


@pytest.mark.parametrize("train, said", [
    (_good_rows(30).replace("\n", "\r"),  # CR line endings: the whole file is one physical line
     "row 1 (line 1): malformed CSV (lines ended by a carriage return alone, as classic Mac files are); expected LF "
     "or CRLF line endings"),
    ('1,"an unclosed quote\n' + _good_rows(30),  # the first record never ends
     "row 1 (line 31): malformed CSV (unexpected end of data); expected quoted fields with doubled inner quotes"),
    ("1,a stray\rreturn\n" + _good_rows(30),  # one carriage return in a field of an LF file: not Mac line ends
     "row 1 (line 1): malformed CSV (a carriage return inside an unquoted field); expected such a field quoted"),
], ids=["cr_line_endings", "unclosed_quote_first_record", "stray_carriage_return"])
def test_a_malformed_first_record_of_train_csv_is_one_error_line(tmp_path, train, said):
    """A malformed first record of train.csv is one line naming the file, as any later record is (it was
    a _csv.Error traceback from count_fields, used when task.text_fields is not given, the default)."""
    from src.data.csv_text import CSVTextDataModule

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "train.csv").write_bytes(train.encode())
    (corpus / "test.csv").write_text(_good_rows(6))
    dm = CSVTextDataModule(data_dir=str(corpus), cache_dir=str(tmp_path / "cache"), path=str(corpus), num_classes=3,
                           embedding_source="random", progress=False)
    with pytest.raises(AutoAttendError) as err:
        dm.prepare_data()
        dm.setup("fit")
    assert str(err.value) == f"{corpus / 'train.csv'}, {said}"


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_output_dir_is_refused_like_an_empty_data_dir(value):
    """An empty output folder (``AUTOATTEND_OUTPUT_DIR=``, ``paths.output_dir=``) put the run under the root
    (``/<task>/search/<time>``): refused by the config check and, before Hydra makes the folder, by the
    entry points."""
    from src.pipeline.run import unfit_folder_setting

    cfg = compose_config("search", ["+task=sst2", "budget=smoke", f"paths.output_dir={value}"])
    with pytest.raises(AutoAttendError, match=r"^paths\.output_dir: expected a folder \(an empty "
                                              r"AUTOATTEND_OUTPUT_DIR= gives this: unset it or name a folder\)"):
        check_config(cfg, "search")
    assert unfit_folder_setting([f"paths.output_dir={value}"], {}) == (
        "paths.output_dir: expected a folder, got an empty value (an unset shell variable?)")
    assert unfit_folder_setting([], {"AUTOATTEND_OUTPUT_DIR": value}).startswith("AUTOATTEND_OUTPUT_DIR is set but "
                                                                                  "empty")
    for fine in (["paths.output_dir=/tmp/x", "hydra.run.dir=out"], ["seed="]):
        assert unfit_folder_setting(fine, {"AUTOATTEND_OUTPUT_DIR": "/tmp/o"}) is None
    assert unfit_folder_setting(["hydra.sweep.dir=''"], {}).startswith("hydra.sweep.dir: expected a folder")


def test_an_empty_run_dir_is_refused_and_writes_nothing_where_the_command_runs(tmp_path):
    """``hydra.run.dir=`` (``hydra.run.dir=$RUN`` with ``RUN`` unset) is Hydra's current folder: a whole run was
    written into the folder the command ran in (the checkout, for the README's commands); refused first."""
    cwd = tmp_path / "here"
    cwd.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AUTOATTEND_DATA_DIR": str(tmp_path / "nodata"),
           "AUTOATTEND_CACHE_DIR": str(tmp_path / "cache"), "AUTOATTEND_OUTPUT_DIR": str(tmp_path / "out"),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "AUTOATTEND_ALLOCATOR": "system"}
    proc = subprocess.run([sys.executable, "-m", "src.search", "+task=sst2", "budget=smoke", "hardware=cpu",
                           "hydra.run.dir="], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    left = sorted(p.name for p in cwd.iterdir())
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == ("error: hydra.run.dir: expected a folder, got an empty value (an "
                                                    "unset shell variable?)"), proc.stderr[-2000:]
    assert left == [], left  # a whole run was written here: .run.lock, run_settings.json, search.log, ...


@pytest.mark.parametrize("value", ["[neg,pos]", "neg", "[a,b,c]"])
def test_predict_applies_or_refuses_an_override_of_the_class_names(tmp_path, capsys, value):
    """``--override task.label_names=[...]`` names the classes of a model kept without names (it exited 0 and
    printed "class 0", and took a string or a wrong count in silence)."""
    from src.data.raw_text import TextEncoder
    from src.data.text import PAD, UNK
    from src.models.saved import save_child, text_child_spec, weights_of
    from src.models.text import TextClassifier
    from src.predict import main
    from src.space import Architecture

    vocab = (PAD, UNK, "a", "fine", "film")
    arch = Architecture.load(ROOT / "src/space/archs/published_sst5.yaml")
    model = TextClassifier.child(torch.randn(len(vocab), 8), 2, arch, dim=16, heads=2)
    spec = text_child_spec(model, arch, text_input=TextEncoder("zhang_csv", False, vocab, 64).to_dict(),
                           label_names=None, dim=16, heads=2)  # a +task=csv run given no task.label_names
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text(
        "paths:\n  data_dir: ./data\ntask:\n  name: csv\n  num_classes: 2\n  label_names: null\n  path: /x\n")
    (run / "retrain" / "seed_0").mkdir(parents=True)
    save_child(run / "retrain" / "seed_0" / "model.pt", weights_of(model), spec,
               {"step": 3, "val_acc": 0.5, "test_acc": 0.5})
    (run / "retrain" / "seed_0.json").write_text('{"seed": 0, "step": 3, "val_acc": 0.5, "test_acc": 0.5}')
    code = main([str(run), "a fine film", "--override", f"task.label_names={value}"])
    captured = capsys.readouterr()
    if value == "[neg,pos]":  # valid: the rows name the classes so
        assert code == 0 and captured.out.splitlines()[2].split(" | ")[1] in ("neg", "pos"), captured
    else:  # not 2 names: refused in one line
        said = ("task.label_names: expected null or a list of 2 distinct non-empty names (one per class, in label "
                "order), got 'neg'" if value == "neg" else
                "task.label_names has 3 names and task.num_classes is 2: one name per class, in label order (got "
                "['a', 'b', 'c'])")
        assert (code, captured.err.splitlines()[-1]) == (2, f"error: {said}"), captured
    if value == "[neg,pos]":  # the Python API takes them too, and null stands for class ids
        from src.models.saved import read_saved
        from src.predict import predict

        _, rows = predict(run, ["a fine film"], overrides=[f"task.label_names={value}"])
        assert set(rows[0]["probabilities"]) == {"neg", "pos"}
        named = read_saved(run / "retrain" / "seed_0" / "model.pt")
        named["spec"]["label_names"] = ["bad", "good"]  # a model file kept with names of its own
        torch.save(named, run / "named.pt")  # beside, then in place: the file read is mapped into memory
        (run / "named.pt").replace(run / "retrain" / "seed_0" / "model.pt")
        assert set(predict(run, ["a fine film"])[1][0]["probabilities"]) == {"bad", "good"}
        _, rows = predict(run, ["a fine film"], overrides=["task.label_names=null"])
        assert set(rows[0]["probabilities"]) == {"class 0", "class 1"}


@pytest.mark.parametrize("override", ["strategy=random", "supernet=default"])
def test_a_search_option_given_to_retrain_is_named_as_such(tmp_path, override):
    """A search group's option given to src.retrain (``strategy=random``) is named as a search setting, as
    ``strategy.rounds=3`` is (Hydra's advice, ``+strategy=random``, was then refused)."""
    env = {**os.environ, "AUTOATTEND_DATA_DIR": str(tmp_path / "nodata"), "AUTOATTEND_CACHE_DIR": str(tmp_path / "c"),
           "AUTOATTEND_OUTPUT_DIR": str(tmp_path / "out"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "src.retrain", "+task=sst2", "arch=published_sst5", "budget=smoke",
                           override, f"hydra.run.dir={tmp_path / 'run'}"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert (proc.returncode, proc.stderr.strip()) == (2, (
        f"error: {override}: a setting of the search (src.search), which src.retrain does not read; the retrain's "
        "training is set by retrain.* (graph tasks: graph.retrain.*)")), proc.stderr

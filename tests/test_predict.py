"""New text -> token ids as each task's data was encoded (``src/data/raw_text.py``), and the parts of
``src.predict`` that need no run (a run's predictions: ``tests/test_pipeline.py``)."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import pytest
import torch

from src.bench_data import write_zhang_csv
from src.data.csv_text import CSVTextDataModule
from src.data.raw_text import TextEncoder, ptb_tokenize
from src.data.sst import SSTDataModule
from src.data.text import PAD, UNK, UNK_ID
from src.utils.errors import AutoAttendError
from tests.helpers import ROOT, real_data_dir, write_tiny_sst

VOCAB = (PAD, UNK, "the", "film", "is", "good", "n't", "do", ".", "-LRB-", "-RRB-")


def test_ptb_tokens_are_those_of_the_sst_trees():
    """Clitics split, brackets and quotes as the treebank writes them, ``/`` and ``*`` escaped."""
    assert ptb_tokenize('It isn\'t (really) 1/2 "good" -- *sigh* ...') == [
        "It", "is", "n't", "-LRB-", "really", "-RRB-", "1\\/2", "``", "good", "''", "--", "\\*sigh\\*", "..."]


def test_encoder_ids_mask_truncation_and_unknown_words():
    encoder = TextEncoder("ptb", False, VOCAB, max_len=4)
    tokens, mask = encoder.encode(["The film is good.", "(do n't)"])
    ids = {w: i for i, w in enumerate(VOCAB)}
    # "The" is not in this cased vocabulary; the first text is cut to max_len tokens
    assert tokens.tolist() == [[UNK_ID, ids["film"], ids["is"], ids["good"]],
                               [ids["-LRB-"], ids["do"], ids["n't"], ids["-RRB-"]]]
    assert mask.all()
    tokens, mask = encoder.encode(["good", "the film"])
    assert tokens.tolist() == [[ids["good"], 0], [ids["the"], ids["film"]]]
    assert mask.tolist() == [[True, False], [True, True]]
    assert encoder.unknown("The film is good.") == (1, 4)  # counted over what the model sees
    assert TextEncoder("ptb", True, VOCAB, 4).ids("The FILM") == [ids["the"], ids["film"]]
    # lower-cased, the tokenizer's brackets too: a lower-cased vocabulary (the hub's SST) holds -lrb-
    lower = (PAD, UNK, "good", "-lrb-", "-rrb-")
    assert TextEncoder("ptb", True, lower, 8).ids("(Good)") == [3, 2, 4]


def test_encoder_round_trips_and_rejects_bad_input():
    encoder = TextEncoder("zhang_csv", True, VOCAB, 64)
    assert TextEncoder.from_dict(encoder.to_dict()) == encoder
    with pytest.raises(AutoAttendError, match="no words to classify"):
        encoder.ids("   ")
    with pytest.raises(AutoAttendError, match="unknown tokenizer 'bpe'; expected one of ptb, zhang_csv"):
        TextEncoder("bpe", False, VOCAB, 64)
    with pytest.raises(AutoAttendError, match="not a vocabulary"):
        TextEncoder("ptb", False, ("the", "film"), 64)
    with pytest.raises(AutoAttendError, match="max_len must be >= 1"):
        TextEncoder("ptb", False, VOCAB, 0)


def test_sst_encoder_gives_the_ids_of_the_datamodule(tmp_path):
    """The dev sentences as plain text encode to exactly the validation examples' ids."""
    data = write_tiny_sst(tmp_path / "data", n_train=40, n_dev=20, n_test=10)
    dm = SSTDataModule(data_dir=str(data), num_classes=5, cache_dir=str(tmp_path / "cache"),
                       embedding_source="random", max_len=6)
    dm.prepare_data()
    dm.setup()
    encoder = dm.text_encoder()
    assert (encoder.tokenizer, encoder.lowercase, encoder.max_len) == ("ptb", False, 6)
    from src.data.ptb import read_tree_file

    texts = [" ".join(tree.leaves()) for tree in read_tree_file(data / "sst" / "trees" / "dev.txt")]
    for i, text in enumerate(texts):
        assert encoder.ids(text) == dm.val_set[i][0].tolist()
    # a lower-cased copy of SST (the hub's) gets lower-cased input
    dm.vocab = type(dm.vocab)([PAD, UNK, "good", "-lrb-"])
    assert dm.raw_lowercase() is True


def test_csv_encoder_gives_the_ids_of_the_datamodule(tmp_path):
    """A test file's raw fields, joined with a space, encode to the test examples' ids (cleaning,
    case and truncation as the CSV reader applies them)."""
    data = tmp_path / "data"
    write_zhang_csv(data / "train.csv", 120, num_classes=4, text_fields=2, seed=0)
    write_zhang_csv(data / "test.csv", 30, num_classes=4, text_fields=2, seed=1)
    for lowercase in (False, True):
        dm = CSVTextDataModule(data_dir=str(data), cache_dir=str(tmp_path / "cache"), path=str(data), num_classes=4,
                               embedding_source="random", progress=False, max_len=12, lowercase=lowercase)
        dm.prepare_data()
        dm.setup("fit")
        encoder = dm.text_encoder()
        assert (encoder.tokenizer, encoder.lowercase, encoder.max_len) == ("zhang_csv", lowercase, 12)
        with open(data / "test.csv", newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        assert any("\\n" in " ".join(row) for row in rows)  # the format's escapes are exercised
        for i, row in enumerate(rows):
            assert encoder.ids(" ".join(row[1:])) == dm.test_set[i][0].tolist()


def test_real_sst_dev_sentences_come_back_as_their_tree_tokens():
    """The SST dev sentences written as plain text (NLTK's Treebank detokenizer over the trees'
    tokens) tokenise back to the trees' tokens: 1,099 of 1,101 (one "n'" and one stray quote differ)."""
    data = real_data_dir("sst/trees/dev.txt")
    if data is None:
        pytest.skip("real SST trees not found (set AUTOATTEND_DATA_DIR to a folder holding sst/trees/dev.txt)")
    from nltk.tokenize.treebank import TreebankWordDetokenizer

    from src.data.ptb import read_tree_file

    detokenizer = TreebankWordDetokenizer()
    trees = read_tree_file(data / "sst" / "trees" / "dev.txt")
    same = 0
    for tree in trees:
        leaves = tree.leaves()
        text = detokenizer.detokenize([w.replace("\\/", "/").replace("\\*", "*") for w in leaves],
                                      convert_parentheses=True)
        same += ptb_tokenize(text) == leaves
    assert len(trees) == 1101 and same >= 1099


def test_predict_refuses_texts_for_a_graph_model(tmp_path, capsys, monkeypatch):
    from src.models.graph import GraphNet
    from src.models.saved import graph_child_spec, save_child, weights_of
    from src.predict import main
    from src.space import Architecture

    arch = Architecture.load(ROOT / "src/space/archs/gcn.yaml")
    model = GraphNet.child(5, 3, arch, hidden=4, heads=1)
    path = tmp_path / "model.pt"
    save_child(path, weights_of(model), graph_child_spec(arch, 5, 3, hidden=4, heads=1),
               {"step": 1, "val_acc": 0.5, "test_acc": 0.5})
    assert main([str(path), "some text"]) == 2
    assert capsys.readouterr().err == (f"error: {path}: a graph run's models classify the nodes of its graph; "
                                       "give no texts\n")
    # --file too, whatever the file holds: a blank line or a missing file is not what is wrong, and an empty
    # file is no licence
    for name, content in (("blank.txt", "one\n\ntwo\n"), ("empty.txt", ""), ("missing.txt", None)):
        if content is not None:
            (tmp_path / name).write_text(content)
        assert main([str(path), "--file", str(tmp_path / name)]) == 2
        assert capsys.readouterr().err == (f"error: {path}: a graph run's models classify the nodes of its graph; "
                                           "give no texts (no --file)\n")
    # standard input is not read at all (on a terminal that waited for Ctrl-D before the refusal)
    class Unread:
        def read(self):
            raise AssertionError("standard input read for a graph model")
    monkeypatch.setattr(sys, "stdin", Unread())
    assert main([str(path), "--file", "-"]) == 2
    assert capsys.readouterr().err == (f"error: {path}: a graph run's models classify the nodes of its graph; "
                                       "give no texts (no --file)\n")
    assert main([str(path)]) == 2  # its nodes need its run's graph
    assert capsys.readouterr().err == (f"error: {path}: not inside a run directory (no .hydra/config.yaml above it), "
                                       "which a graph model needs for its graph\n")


@pytest.mark.parametrize("args, line", [
    (["{tmp}/nowhere", "text"], "error: {tmp}/nowhere: no such run directory or model file"),
    (["{tmp}", "text"], "error: {tmp}: not a run directory (expected retrain/seed_<s>/model.pt"),
    (["{tmp}/notes.txt", "text"], "error: {tmp}/notes.txt: not a saved model"),
    (["{tmp}", "--file", "{tmp}/missing.txt"], "error: {tmp}/missing.txt: cannot read"),
    (["{tmp}/notes.txt", "--file", "{tmp}/missing.txt"], "error: {tmp}/missing.txt: cannot read"),  # not a model
    (["{tmp}", "--file", "{tmp}/notes.txt", "text"], "error: give texts as arguments or --file, not both"),
    (["{tmp}/notes.txt", "--seed", "1", "text"], "error: {tmp}/notes.txt: --seed and --ensemble choose among"),
])
def test_predict_bad_input_is_one_line(tmp_path, capsys, args, line):
    from src.predict import main

    (tmp_path / "notes.txt").write_text("not a model\n")
    assert main([a.format(tmp=tmp_path) for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(line.format(tmp=tmp_path)) and "\n" not in err, err


def test_weights_are_unchanged_by_the_stored_text_settings(tmp_path):
    """A text model's file with its text settings and class names loads as before: the model
    ignores them and gets the same weights."""
    from src.models.saved import load_child, save_child, text_child_spec, weights_of
    from src.models.text import TextClassifier
    from src.space import Architecture

    arch = Architecture.load(ROOT / "src/space/archs/published_sst5.yaml")
    model = TextClassifier.child(torch.randn(len(VOCAB), 8), 2, arch, dim=16, heads=2)
    encoder = TextEncoder("ptb", False, VOCAB, 64)
    spec = text_child_spec(model, arch, text_input=encoder.to_dict(), label_names=["no", "yes"], dim=16, heads=2)
    save_child(tmp_path / "model.pt", weights_of(model), spec, {"step": 3, "val_acc": 0.5, "test_acc": 0.25})
    loaded, record = load_child(tmp_path / "model.pt")
    assert record["spec"]["label_names"] == ["no", "yes"]
    assert TextEncoder.from_dict(record["spec"]["text_input"]) == encoder
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))



def test_an_empty_file_of_texts_is_named(tmp_path, capsys, monkeypatch):
    """``--file`` with no text in it names the file, rather than asking for texts or --file."""
    from src.models.saved import save_child, text_child_spec, weights_of
    from src.models.text import TextClassifier
    from src.predict import main
    from src.space import Architecture

    arch = Architecture.load(ROOT / "src/space/archs/published_sst5.yaml")
    model = TextClassifier.child(torch.randn(len(VOCAB), 8), 2, arch, dim=16, heads=2)
    spec = text_child_spec(model, arch, text_input=TextEncoder("ptb", False, VOCAB, 64).to_dict(),
                           label_names=["no", "yes"], dim=16, heads=2)
    save_child(tmp_path / "model.pt", weights_of(model), spec, {"step": 3, "val_acc": 0.5, "test_acc": 0.25})
    (tmp_path / "empty.txt").write_text("")
    assert main([str(tmp_path / "model.pt"), "--file", str(tmp_path / "empty.txt")]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'empty.txt'}: no text to classify in it "
                                       "(expected one text per line)\n")
    assert main([str(tmp_path / "model.pt")]) == 2
    assert capsys.readouterr().err == "error: no text to classify: give texts as arguments or --file PATH\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # standard input, read once the model takes text
    assert main([str(tmp_path / "model.pt"), "--file", "-"]) == 2
    assert capsys.readouterr().err == "error: standard input: no text to classify in it (expected one text per line)\n"
    (tmp_path / "blank.txt").write_text("one\n\ntwo\n")  # a text model still names a blank line between texts
    assert main([str(tmp_path / "model.pt"), "--file", str(tmp_path / "blank.txt")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'blank.txt'}, line 2: blank; expected one text per line\n"


def test_an_override_is_checked_even_where_the_model_does_not_need_it(tmp_path, capsys):
    """A text model that stores its text settings never reads its run's config, so ``--override``
    went unread: a mistyped one (no ``=``, a key the run does not have) passed in silence."""
    from src.models.saved import save_child, text_child_spec, weights_of
    from src.models.text import TextClassifier
    from src.predict import main
    from src.space import Architecture

    arch = Architecture.load(ROOT / "src/space/archs/published_sst5.yaml")
    model = TextClassifier.child(torch.randn(len(VOCAB), 8), 2, arch, dim=16, heads=2)
    spec = text_child_spec(model, arch, text_input=TextEncoder("ptb", False, VOCAB, 64).to_dict(),
                           label_names=["no", "yes"], dim=16, heads=2)
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("paths:\n  data_dir: ./data\ntask:\n  name: sst2\n")
    for folder in (run / "retrain" / "seed_0", tmp_path / "alone"):
        folder.mkdir(parents=True)
        save_child(folder / "model.pt", weights_of(model), spec, {"step": 3, "val_acc": 0.5, "test_acc": 0.25})
    model_file = run / "retrain" / "seed_0" / "model.pt"
    for override, line in [("foo", "error: foo: expected key=value, without Hydra's + or ~ (a setting of the run's "
                                   "config to override)"),
                           # was "no such setting ++paths.data_dir"
                           ("++paths.data_dir=/x", "error: ++paths.data_dir=/x: expected key=value, without Hydra's +"),
                           ("foo.bar=1", f"error: foo.bar: no such setting in {run / '.hydra' / 'config.yaml'}")]:
        assert main([str(model_file), "a fine film", "--override", override]) == 2
        err = capsys.readouterr().err
        assert err.startswith(line) and err.count("\n") == 1, err
    assert main([str(model_file), "a fine film", "--override", "paths.data_dir=/elsewhere"]) == 0
    assert "| 1 |" in capsys.readouterr().out
    assert main([str(tmp_path / "alone" / "model.pt"), "a fine film", "--override", "paths.data_dir=/x"]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'alone' / 'model.pt'}: not inside a run directory (no "
                                       ".hydra/config.yaml above it), which --override needs (it sets the run's "
                                       "config)\n")


def test_the_default_model_is_the_finished_seed_of_best_recorded_validation(tmp_path):
    """``choose_models`` reads only the seeds' records: the finished seed of highest ``val_acc``
    (ties to the lower seed); a seed without ``seed_<s>.json`` (still training) is never chosen
    nor averaged, but ``--seed`` may name it."""
    from src.predict import choose_models

    retrain = tmp_path / "retrain"
    for seed, val in {0: 0.70, 1: 0.80, 2: 0.80, 3: 0.60, 4: None}.items():
        (retrain / f"seed_{seed}").mkdir(parents=True)
        (retrain / f"seed_{seed}" / "model.pt").write_bytes(b"")
        if val is not None:
            (retrain / f"seed_{seed}.json").write_text(f'{{"seed": {seed}, "step": 9, "val_acc": {val}, "test_acc": 0.5}}')
    model = "seed_{}/model.pt".format
    assert choose_models(tmp_path) == [retrain / model(1)]  # 0.80 twice: the lower seed
    assert choose_models(tmp_path, ensemble=True) == [retrain / model(s) for s in (0, 1, 2, 3)]
    assert choose_models(tmp_path, seed=4) == [retrain / model(4)]
    (retrain / "seed_1.json").unlink()
    assert choose_models(tmp_path) == [retrain / model(2)]
    (retrain / "seed_3.json").write_text('{"seed": 3, "val_acc": "n/a"')  # cut short while written by hand
    with pytest.raises(AutoAttendError, match=r"seed_3\.json: unreadable \(expected the seed's result"):
        choose_models(tmp_path)


def test_the_choice_says_when_it_is_among_fewer_seeds_than_the_run_finished(tmp_path, capsys):
    """A finished seed whose model.pt is gone, or a run still retraining: ``--ensemble`` averaged
    the models that were there (and the default chose among them) without a word."""
    from src.predict import choose_models

    retrain = tmp_path / "retrain"
    for seed, val in {0: 0.70, 1: 0.80, 2: 0.75}.items():
        (retrain / f"seed_{seed}").mkdir(parents=True)
        (retrain / f"seed_{seed}" / "model.pt").write_bytes(b"")
        (retrain / f"seed_{seed}.json").write_text(f'{{"seed": {seed}, "step": 9, "val_acc": {val}, "test_acc": 0.5}}')
    (retrain / "results.json").write_text("{}")
    assert choose_models(tmp_path, ensemble=True) == [retrain / f"seed_{s}/model.pt" for s in (0, 1, 2)]
    assert capsys.readouterr().err == ""  # a finished run with every model: nothing to say
    (retrain / "seed_1" / "model.pt").unlink()
    assert choose_models(tmp_path, ensemble=True) == [retrain / f"seed_{s}/model.pt" for s in (0, 2)]
    assert capsys.readouterr().err == ("note: seed(s) 1 finished but kept no model.pt (src.evaluate reports them); "
                                       "the ensemble is among seeds 0, 2\n")
    (retrain / "results.json").unlink()
    (retrain / "seed_1.json").unlink()
    assert choose_models(tmp_path) == [retrain / "seed_2/model.pt"]
    assert capsys.readouterr().err == (f"note: {tmp_path} has not finished its retrain: the choice is among the "
                                       "seeds finished so far (0, 2)\n")


def test_a_missing_target_is_reported_before_torch_is_imported(tmp_path):
    code = (f"import sys; from src.predict import main; status = main([{str(tmp_path / 'nope')!r}, 'text']); "
            "assert status == 2 and 'torch' not in sys.modules, (status, 'torch imported')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == f"error: {tmp_path / 'nope'}: no such run directory or model file"


def test_texts_file_trailing_blank_lines_are_dropped_a_blank_between_texts_is_named(tmp_path):
    """A file ending in an editor's extra newline (``a\\nb\\n\\n``) was refused as ``line 3: blank``."""
    from src.predict import read_texts

    path = tmp_path / "texts.txt"
    path.write_text("a fine film\nnot good\n\n  \n")
    assert read_texts(str(path)) == ["a fine film", "not good"]
    path.write_text("a fine film\n\nnot good\n")
    with pytest.raises(AutoAttendError, match=f"{path}, line 2: blank; expected one text per line"):
        read_texts(str(path))



def test_texts_file_lines_are_its_newlines_and_a_byte_order_mark_is_not_text(tmp_path, monkeypatch):
    """A U+2028 or U+0085 inside a line made two rows of one line (``str.splitlines``), so the
    output no longer matched the file's lines; Notepad's byte-order mark was read as part of the
    first text (one more unknown word, other probabilities)."""
    from src.predict import read_texts

    path = tmp_path / "texts.txt"
    path.write_bytes("\ufeffgood film\r\nsaid \u2028 twice\x85 and \x0c more\nlast\n".encode("utf-8"))
    assert read_texts(str(path)) == ["good film", "said \u2028 twice\x85 and \x0c more", "last"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("good film\r\nbad\rfilm\r\n"))  # stdin keeps its \r
    assert read_texts("-") == ["good film", "bad", "film"]


def test_loading_a_text_model_does_not_import_pyg():
    """``src.models.saved`` imported the graph models, and with them PyG (over a second on two
    cores), for every text ``load_child`` and ``src.predict``: 3.6 s -> 2.3 s a text prediction."""
    from tests.helpers import ROOT

    code = "import sys, src.models.saved, src.predict; print('torch_geometric' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr[-2000:]


class _NotAWeight:
    """A picklable object that is no tensor: what a foreign or tampered model file could hold."""


def _text_child():
    from src.models.text import TextClassifier
    from src.space import Architecture

    arch = Architecture.load(ROOT / "src/space/archs/published_sst5.yaml")
    return TextClassifier.child(torch.randn(len(VOCAB), 8), 2, arch, dim=16, heads=2, dropout=0.5), arch


def test_a_saved_model_is_a_copy_loads_in_eval_mode_and_keeps_its_label_names(tmp_path):
    """Protects ``weights_of`` (a copy: later training does not change weights kept in memory),
    ``text_child_spec`` (its own list of class names), ``load_child``'s eval mode (no dropout at
    prediction) and its strict loading (a file missing a weight is refused, not half-loaded)."""
    from src.models.saved import load_child, save_child, text_child_spec, weights_of

    model, arch = _text_child()
    weights = weights_of(model)
    first = next(iter(weights))
    kept = weights[first].clone()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    assert torch.equal(weights[first], kept)
    names = ["no", "yes"]
    spec = text_child_spec(model, arch, label_names=names, dim=16, heads=2, dropout=0.5)
    names.append("maybe")
    assert spec["label_names"] == ["no", "yes"] and "text_input" not in spec
    save_child(tmp_path / "model.pt", weights, spec, {"step": 3})
    loaded, record = load_child(tmp_path / "model.pt")
    assert not loaded.training and not any(m.training for m in loaded.modules())
    assert record["evaluation"] == {"step": 3}
    partial = dict(weights)
    del partial[first]
    save_child(tmp_path / "partial.pt", partial, spec, {"step": 3})
    with pytest.raises(RuntimeError, match=f"Missing key.*{first}"):
        load_child(tmp_path / "partial.pt")


def test_reading_a_file_that_is_not_a_saved_model_is_one_clear_error(tmp_path):
    """Protects ``read_saved``'s checks: a missing file, a one-byte file (not "empty"), a file with
    objects other than tensors (never unpickled: ``weights_only``; torch's long message cut to its
    first line) and another program's torch file each give one ``AutoAttendError`` line."""
    from src.models.saved import TEXT_FORMAT, read_saved

    with pytest.raises(AutoAttendError, match=r"nowhere.pt: no saved model \(retrain/seed_<s>/model.pt is written"):
        read_saved(tmp_path / "nowhere.pt")
    (tmp_path / "one.pt").write_bytes(b"x")
    with pytest.raises(AutoAttendError, match=r"one.pt: not a saved model \(not a file torch.save wrote; expected"):
        read_saved(tmp_path / "one.pt")
    torch.save({"spec": {"format": TEXT_FORMAT}, "evaluation": {}, "state_dict": {}, "extra": _NotAWeight()},
               tmp_path / "pickled.pt")
    with pytest.raises(AutoAttendError, match=r"pickled.pt: not a saved model \(it holds objects other than tensors") \
            as caught:
        read_saved(tmp_path / "pickled.pt")
    assert "\n" not in str(caught.value)
    for name, content in (("other.pt", {"spec": {"format": "someone.else.v1"}, "state_dict": {}}),
                          ("list.pt", [torch.zeros(2)])):
        torch.save(content, tmp_path / name)
        with pytest.raises(AutoAttendError, match=f"{name}: not a saved model of this project \\(expected format "
                                                  f"{TEXT_FORMAT} or"):
            read_saved(tmp_path / name)


def test_a_failed_save_leaves_the_saved_model_as_it_was(tmp_path):
    """Protects ``save_child``'s write through a temporary file and a rename: a save that fails
    midway leaves the previous ``model.pt`` whole and no partial file beside it."""
    from src.models.saved import load_child, save_child, text_child_spec, weights_of

    model, arch = _text_child()
    spec = text_child_spec(model, arch, dim=16, heads=2, dropout=0.5)
    save_child(tmp_path / "model.pt", weights_of(model), spec, {"step": 3})

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        save_child(tmp_path / "model.pt", weights_of(model), spec, {"step": 4, "bad": Unpicklable()})
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
    assert load_child(tmp_path / "model.pt")[1]["evaluation"] == {"step": 3}


def test_graph_option_is_for_graph_runs(tmp_path, capsys):
    """``--graph`` with a text model: one line, not texts silently ignored or a traceback."""
    from src.models.saved import save_child, text_child_spec, weights_of
    from src.predict import main

    model, arch = _text_child()
    encoder = TextEncoder("ptb", False, VOCAB, 64)
    spec = text_child_spec(model, arch, text_input=encoder.to_dict(), dim=16, heads=2, dropout=0.5)
    save_child(tmp_path / "model.pt", weights_of(model), spec, {"step": 1, "val_acc": 0.5, "test_acc": 0.5})
    assert main([str(tmp_path / "model.pt"), "--graph", str(tmp_path / "g.npz"), "a text"]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'model.pt'}: a text run's models classify text; --graph "
                                       "is for a graph run\n")


def test_predict_nodes_of_a_graph_file_from_python(tmp_path):
    """``predict_nodes(..., graph=FILE)``, the API behind ``--graph``: rows for that file's nodes."""
    import numpy as np

    from src.models.graph import GraphNet
    from src.models.saved import graph_child_spec, save_child, weights_of
    from src.predict import predict_nodes
    from src.space import Architecture

    arch = Architecture.load(ROOT / "src/space/archs/gcn.yaml")
    model = GraphNet.child(5, 3, arch, hidden=4, heads=1)
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text(
        "task: {name: graph_file, family: graph, path: g.npz, datamodule: {_target_: "
        "src.data.graph_file.GraphFileDataModule, path: g.npz}}\npaths: {data_dir: d, cache_dir: c}\nseed: 0\n")
    path = run / "retrain" / "seed_0" / "model.pt"
    save_child(path, weights_of(model), graph_child_spec(arch, 5, 3, hidden=4, heads=1),
               {"step": 1, "val_acc": 0.5, "test_acc": 0.5})
    rng = np.random.default_rng(0)
    x, edges = rng.random((7, 5)).astype(np.float32), np.array([[0, 1, 2, 3], [1, 2, 3, 4]])
    np.savez(tmp_path / "new.npz", x=x, edge_index=edges)
    described, rows = predict_nodes(path, graph=tmp_path / "new.npz")
    model.eval()
    with torch.inference_mode():
        expected = torch.softmax(model(torch.from_numpy(x), torch.from_numpy(edges)), dim=-1)
    assert [r["node"] for r in rows] == list(range(7)) and all(r["label"] is None for r in rows)
    assert [r["prediction"] for r in rows] == expected.argmax(-1).tolist()
    assert torch.allclose(torch.tensor([r["probabilities"] for r in rows]), expected, atol=1e-6)

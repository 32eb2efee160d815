"""``src.evaluate`` and ``src.predict`` in process, on tiny runs written by hand (no search): the
checks of a run's records and kept models, the rows and tables they print, and the choice, averaging
and layout of predictions (mutation audit 2026-12-07; a real run through the command line:
``tests/test_pipeline.py``, ``tests/test_graph_pipeline.py``)."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf

from src.data.raw_text import TextEncoder
from src.data.text import PAD, UNK
from src.utils.errors import AutoAttendError, DataNotFoundError
from tests.conftest import compose_config
from tests.helpers import ROOT

VOCAB = (PAD, UNK, "the", "film", "is", "good", "bad", ".")
ENCODER = TextEncoder("ptb", False, VOCAB, 64)


# ---- src.evaluate: the run's config ----------------------------------------------------------

def _run_with_config(run_dir: Path, cfg=None) -> Path:
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg if cfg is not None else compose_config("search", ["+task=sst2", "budget=smoke"]),
                   run_dir / ".hydra" / "config.yaml")
    return run_dir


def test_run_config_takes_the_evaluation_batch_size_and_checks_what_it_is_given(tmp_path):
    """``retrain.eval_batch_size`` may be overridden (it changes no prediction) and is checked as an
    integer >= 1; a machine setting is checked as the search checks it; an override that does not
    resolve is blamed, not the run's file; a config without its task mapping is not a run's."""
    from src.evaluate import run_config

    run_dir = _run_with_config(tmp_path / "run")
    assert run_config(run_dir, ["retrain.eval_batch_size=7"]).retrain.eval_batch_size == 7
    for override, line in [("retrain.eval_batch_size=0", "retrain.eval_batch_size: expected an integer >= 1, got 0"),
                           ("hardware.threads=-2", "hardware.threads: expected an integer >= 1 or 0 or null, got -2"),
                           ("paths.data_dir=${oc.env:AUTOATTEND_NO_SUCH_VARIABLE}",
                            "paths.data_dir=${oc.env:AUTOATTEND_NO_SUCH_VARIABLE}: ")]:
        with pytest.raises(AutoAttendError) as caught:
            run_config(run_dir, [override])
        assert str(caught.value).startswith(line), str(caught.value)
    (run_dir / ".hydra" / "config.yaml").write_text("task: 5\npaths:\n  data_dir: ./data\n")
    with pytest.raises(AutoAttendError, match=r"config.yaml: not a run's config \(expected a mapping with the task"):
        run_config(run_dir, [])


def test_settings_of_the_run_name_the_recorded_data_folder_and_a_missing_key(tmp_path):
    """Data not found get the folder the run read added, unless the message names it already or the
    run records none; a key the config lacks (attribute or item access) is named by its full key."""
    from src.evaluate import settings_of_the_run

    run_dir = _run_with_config(tmp_path / "run")
    config = run_dir / ".hydra" / "config.yaml"
    run_cfg = OmegaConf.load(config)
    with pytest.raises(DataNotFoundError) as caught, settings_of_the_run(run_dir, run_cfg):
        raise DataNotFoundError("no SST at /elsewhere")
    assert str(caught.value) == "no SST at /elsewhere"  # no invocations.json: nothing to add
    (run_dir / "invocations.json").write_text(json.dumps({"invocations": [
        {"started": "2026-12-07T10:00:00+0000", "argv": [], "data_dir": "/first"},
        {"started": "2026-12-07T11:00:00+0000", "argv": [], "data_dir": "/recorded"}]}))
    with pytest.raises(DataNotFoundError) as caught, settings_of_the_run(run_dir, run_cfg):
        raise DataNotFoundError("no SST at /elsewhere")
    assert str(caught.value) == ("no SST at /elsewhere (the run read its data from /recorded, invocations.json: "
                                 "paths.data_dir=/recorded if it is still there)")
    with pytest.raises(DataNotFoundError) as caught, settings_of_the_run(run_dir, run_cfg):
        raise DataNotFoundError("no SST at /recorded/sst")
    assert str(caught.value) == "no SST at /recorded/sst"
    cfg = OmegaConf.create({"data": {"vocab": 1}})
    OmegaConf.set_struct(cfg, True)
    for read in (lambda: cfg.data.max_len, lambda: cfg.data["max_len"]):
        with pytest.raises(AutoAttendError) as caught, settings_of_the_run(run_dir, run_cfg):
            read()
        assert str(caught.value).startswith(f"{config}: data.max_len: missing, a setting this version of autoattend "
                                            "reads"), str(caught.value)


# ---- src.evaluate: records and models ----------------------------------------------------------

def test_text_scores_are_the_fraction_of_each_splits_examples_predicted_right():
    """Validation, then test: examples (not batches) counted, a batch of 2 and one of 1 each."""
    from src.evaluate import text_scores

    def model(tokens, mask):  # class: the first token's parity
        return torch.nn.functional.one_hot(tokens[:, 0] % 2, 2).float()

    dm = SimpleNamespace(val_set=[(torch.tensor([1, 2]), 0), (torch.tensor([3]), 1), (torch.tensor([2]), 0)],
                         test_set=[(torch.tensor([2]), 0), (torch.tensor([4, 1]), 1), (torch.tensor([5]), 0)])
    assert text_scores(model, dm, 2) == {"val_acc": pytest.approx(2 / 3), "test_acc": pytest.approx(1 / 3)}


def test_a_kept_model_must_fit_the_runs_family_and_data():
    """Protects ``_check_model_of_run``: a graph model's feature width, a model with fewer classes
    than the data (not only more), and the family named as the file's."""
    from src.evaluate import _check_model_of_run
    from src.models.saved import TEXT_FORMAT, graph_child_spec
    from src.space import Architecture

    arch = Architecture.load(ROOT / "src/space/archs/gcn.yaml")
    path = Path("run/retrain/seed_0/model.pt")
    graph_dm = SimpleNamespace(num_classes=3, num_features=5)
    _check_model_of_run(path, graph_child_spec(arch, 5, 3), graph_dm, True)
    with pytest.raises(AutoAttendError, match=r"^run/retrain/seed_0/model.pt: a model of 6 node features, where the "
                                              r"run's data have 5: the file is from another run$"):
        _check_model_of_run(path, graph_child_spec(arch, 6, 3), graph_dm, True)
    with pytest.raises(AutoAttendError, match=r"model.pt: a graph model, in a run of a text task: the file"):
        _check_model_of_run(path, graph_child_spec(arch, 5, 3), graph_dm, False)
    text = {"format": TEXT_FORMAT, "num_classes": 2, "embedding_shape": [50, 4]}
    text_dm = SimpleNamespace(num_classes=3, embeddings=torch.zeros(50, 4))
    with pytest.raises(AutoAttendError, match=r"model.pt: a model of 2 classes, where the run's data have 3: "):
        _check_model_of_run(path, text, text_dm, False)
    with pytest.raises(AutoAttendError, match=r"model.pt: a text model, in a run of a graph task: the file"):
        _check_model_of_run(path, text, graph_dm, True)


def test_a_seed_record_must_hold_step_and_both_scores_and_match_its_model(tmp_path):
    """Protects ``read_seed_record`` (each of step, val_acc, test_acc present and a number; null is not)
    and ``_check_record_of_model`` (an edited validation score too, not only the test score)."""
    from src.evaluate import _check_record_of_model
    from src.utils.io import read_seed_record

    seed_file = tmp_path / "seed_0.json"
    good = {"step": 30, "val_acc": 0.7, "test_acc": 0.65}
    seed_file.write_text(json.dumps(good))
    assert read_seed_record(seed_file) == good
    for damaged in ({"val_acc": 0.7, "test_acc": 0.65}, {"step": 30, "test_acc": 0.65}, {"step": 30, "val_acc": 0.7},
                    {"step": 30, "val_acc": None, "test_acc": 0.65}):
        seed_file.write_text(json.dumps(damaged))
        with pytest.raises(AutoAttendError, match=r"seed_0.json: unreadable \(expected the seed's result"):
            read_seed_record(seed_file)
    model = tmp_path / "seed_0" / "model.pt"
    _check_record_of_model(seed_file, good, model, {**good, "val_acc": 0.7 + 1e-9})
    with pytest.raises(AutoAttendError, match=r"seed_0.json: records val_acc 0.7, while .*model.pt scored 0.75 at the "
                                              r"same step 30"):
        _check_record_of_model(seed_file, good, model, {**good, "val_acc": 0.75})


def test_finished_seeds_are_numbered_seed_files_of_the_retrain_and_every_baseline(tmp_path):
    """``seed_<s>.json`` of ``retrain/`` and each ``baselines/<name>/``; a ``seed_best.json`` beside
    them (a copy made by hand) is no seed, not a ValueError."""
    from src.evaluate import finished_seeds

    for name in ("retrain/seed_2.json", "retrain/seed_best.json", "retrain/results.json",
                 "baselines/gcn/seed_0.json", "baselines/gat/seed_1.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    found = finished_seeds(tmp_path)
    assert sorted((folder, seed, path.name) for folder, seed, path in found) == [
        ("baselines/gat", 1, "seed_1.json"), ("baselines/gcn", 0, "seed_0.json"), ("retrain", 2, "seed_2.json")]
    assert found[0][0] == "retrain"


@pytest.fixture
def stub_run(tmp_path, monkeypatch):
    """A text run's folder with ``seed_0`` and ``seed_1`` kept and recorded, the data, the models and
    their scores stubbed (``now``: each seed's recomputed scores, by default the recorded ones)."""
    import src.evaluate as evaluate_module
    import src.models.saved
    import src.pipeline.common

    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("task:\n  name: sst2\nretrain:\n  eval_batch_size: 8\n")
    recorded = {"step": 30, "val_acc": 42 / 60, "test_acc": 39 / 60}
    for seed in (0, 1):
        (run_dir / "retrain" / f"seed_{seed}").mkdir(parents=True)
        (run_dir / "retrain" / f"seed_{seed}" / "model.pt").write_bytes(b"")
        (run_dir / "retrain" / f"seed_{seed}.json").write_text(json.dumps({"seed": seed, **recorded, "history": []}))
    now = {f"seed_{seed}": {"val_acc": 42 / 60, "test_acc": 39 / 60} for seed in (0, 1)}
    spec = {"format": src.models.saved.TEXT_FORMAT, "num_classes": 2, "embedding_shape": [50, 4]}
    monkeypatch.setattr(src.pipeline.common, "setup_hardware", lambda cfg: None)
    monkeypatch.setattr(src.pipeline.common, "build_datamodule",
                        lambda cfg: SimpleNamespace(num_classes=2, embeddings=torch.zeros(50, 4)))
    monkeypatch.setattr(src.models.saved, "load_child",
                        lambda path: (path, {"spec": spec, "evaluation": dict(recorded)}))
    monkeypatch.setattr(evaluate_module, "text_scores", lambda model, dm, batch_size: dict(now[model.parent.name]))
    return SimpleNamespace(dir=run_dir, now=now, spec=spec)


TABLE_HEAD = ["| model | seed | step | val recorded (%) | val now (%) | test recorded (%) | test now (%) "
              "| reproduced |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]


def test_evaluate_table_of_a_finished_run_and_of_an_unfinished_seed(stub_run, capsys):
    """Each row in percent (recorded and recomputed, validation then test), each model announced
    on stderr as ``i of n``; a seed kept without its ``seed_<s>.json`` is marked unfinished; the run
    is said unfinished while it has no ``summary.json``."""
    from src.evaluate import evaluate, main

    run_dir = stub_run.dir
    (run_dir / "summary.json").write_text("{}")
    assert main([str(run_dir)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == TABLE_HEAD + [
        "| retrain | 0 | 30 | 70.00 | 70.00 | 65.00 | 65.00 | yes |",
        "| retrain | 1 | 30 | 70.00 | 70.00 | 65.00 | 65.00 | yes |",
        "all 2 model(s) reproduce their recorded validation and test scores"]
    assert err.splitlines() == ["evaluate: retrain seed 0 (1 of 2)", "evaluate: retrain seed 1 (2 of 2)"]
    (run_dir / "summary.json").unlink()
    (run_dir / "retrain" / "seed_1.json").unlink()
    assert [(r["seed"], r["finished"]) for r in evaluate(run_dir)] == [(0, True), (1, False)]
    assert main([str(run_dir)]) == 0
    assert capsys.readouterr().out.splitlines()[2:] == [
        "| retrain | 0 | 30 | 70.00 | 70.00 | 65.00 | 65.00 | yes |",
        "| retrain | 1 (seed unfinished) | 30 | 70.00 | 70.00 | 65.00 | 65.00 | yes |",
        "all 2 model(s) reproduce their recorded validation and test scores (the run has not finished: these are the "
        "models it kept so far)"]


def test_evaluate_reports_a_finished_seed_whose_model_is_gone_in_its_place(stub_run, capsys):
    """A finished seed without its ``model.pt`` is a row of its own, in seed order (not after the
    kept ones), never reproduced; the exit status is 1 and stderr names it as missing only (not as a
    seed whose scores differ)."""
    from src.evaluate import evaluate, main

    run_dir = stub_run.dir
    (run_dir / "retrain" / "seed_0" / "model.pt").unlink()
    rows = evaluate(run_dir)
    assert [(r["seed"], r["reproduced"], r.get("missing", False)) for r in rows] == [(0, False, True), (1, True, False)]
    capsys.readouterr()
    assert main([str(run_dir)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == TABLE_HEAD + ["| retrain | 0 | 30 | 70.00 | - | 65.00 | - | NO (model.pt missing) |",
                                             "| retrain | 1 | 30 | 70.00 | 70.00 | 65.00 | 65.00 | yes |"]
    assert err.splitlines() == ["evaluate: retrain seed 1 (1 of 1)",
                                "error: retrain seed 0: finished, but its model.pt is missing (deleted or not copied "
                                "with the run), so it cannot be checked"]


def test_evaluate_refuses_a_file_and_a_model_that_does_not_fit_the_data(stub_run, capsys):
    from src.evaluate import evaluate, main

    (stub_run.dir / "summary.json").write_text("{}")
    with pytest.raises(AutoAttendError, match=r"summary.json: a file; give the run's directory \(src.evaluate checks"):
        evaluate(stub_run.dir / "summary.json")
    stub_run.spec["num_classes"] = 3
    assert main([str(stub_run.dir)]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: {stub_run.dir / 'retrain' / 'seed_0' / 'model.pt'}: a model of 3 classes, where the run's data have "
        "2: the file is from another run")


@pytest.mark.parametrize("record", [{"val_acc": "0.7"}, {"test_acc": True}, {"step": "30"}])
def test_a_seed_record_with_a_quoted_or_boolean_value_is_one_error_line(stub_run, capsys, record):
    """A hand-edited ``seed_<s>.json`` whose score or step is quoted (``"val_acc": "0.7"``, which passes
    ``float()``) or a boolean, of a seed whose model is gone: one error line naming the file and status 2,
    not a ValueError traceback from the table's number format."""
    from src.evaluate import main

    (stub_run.dir / "retrain" / "seed_0" / "model.pt").unlink()
    seed_file = stub_run.dir / "retrain" / "seed_0.json"
    seed_file.write_text(json.dumps({"seed": 0, "step": 30, "val_acc": 0.7, "test_acc": 0.65, **record}))
    assert main([str(stub_run.dir)]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: {seed_file}: unreadable (expected the seed's result: step, val_acc, test_acc); restore it, or "
        "delete it and re-run the run's command to train that seed again")


# ---- src.predict: text ------------------------------------------------------------------------------

def _text_model(seed: int):
    from src.models.text import TextClassifier
    from src.space import Architecture

    torch.manual_seed(seed)
    arch = Architecture.load(ROOT / "src/space/archs/published_sst5.yaml")
    return TextClassifier.child(torch.randn(len(VOCAB), 8), 2, arch, dim=16, heads=2), arch


def _save_text_model(path: Path, seed: int = 0, names=("no", "yes"), encoder: TextEncoder = ENCODER,
                     evaluation: dict | None = None):
    """A text model kept at ``path`` (its text settings and class names stored); returns it in eval mode."""
    from src.models.saved import save_child, text_child_spec, weights_of

    model, arch = _text_model(seed)
    spec = text_child_spec(model, arch, text_input=encoder.to_dict(), label_names=names, dim=16, heads=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_child(path, weights_of(model), spec, evaluation or {"step": 3, "val_acc": 0.5, "test_acc": 0.25})
    return model.eval()


def _probabilities(model, texts):
    with torch.inference_mode():
        return torch.softmax(model(*TextEncoder.pad([ENCODER.ids(t) for t in texts])), dim=-1)


def _text_run(run_dir: Path, seeds=(0, 1), finished=(0, 1)) -> dict:
    """A finished text run's ``retrain/``: a model per seed (seed ``s`` scored ``0.6 + s / 10``)."""
    models = {}
    for seed in seeds:
        evaluation = {"step": 3 + seed, "val_acc": 0.6 + seed / 10, "test_acc": 0.25}
        models[seed] = _save_text_model(run_dir / "retrain" / f"seed_{seed}" / "model.pt", seed, evaluation=evaluation)
        if seed in finished:
            (run_dir / "retrain" / f"seed_{seed}.json").write_text(json.dumps({"seed": seed, **evaluation}))
    (run_dir / "retrain" / "results.json").write_text("{}")
    return models


def test_predict_ensemble_averages_the_seeds_and_the_table_shows_each_text(tmp_path, capsys):
    """``--ensemble``: the mean of the seeds' class probabilities, each model described on stderr
    (step, validation and test in percent); the table numbers the texts from 1, names the class,
    gives its probability to 3 decimals and counts the unknown words among the words."""
    from src.predict import main, predict

    run_dir = tmp_path / "run"
    models = _text_run(run_dir)
    texts = ["the film is good .", "a bad film"]
    described, rows = predict(run_dir, texts, ensemble=True)
    paths = [run_dir / "retrain" / f"seed_{s}" / "model.pt" for s in (0, 1)]
    assert described == [f"{paths[0]} (step 3: validation 60.00 %, test 25.00 %)",
                         f"{paths[1]} (step 4: validation 70.00 %, test 25.00 %)"]
    expected = (_probabilities(models[0], texts) + _probabilities(models[1], texts)) / 2
    torch.testing.assert_close(torch.tensor([list(r["probabilities"].values()) for r in rows]), expected,
                               rtol=0, atol=1e-6)
    assert [r["prediction"] for r in rows] == expected.argmax(-1).tolist()
    assert [(r["unknown_words"], r["words"]) for r in rows] == [(0, 5), (1, 3)]
    assert main([str(run_dir), *texts, "--ensemble"]) == 0
    out, err = capsys.readouterr()
    names = [["no", "yes"][p] for p in expected.argmax(-1).tolist()]
    assert out.splitlines() == ["| # | prediction | probability | unknown words | text |",
                                "| --- | --- | --- | --- | --- |",
                                f"| 1 | {names[0]} | {expected[0].max():.3f} | 0 of 5 | the film is good . |",
                                f"| 2 | {names[1]} | {expected[1].max():.3f} | 1 of 3 | a bad film |"]
    assert err.splitlines() == [f"predict: {line}" for line in described]


def test_predict_refuses_models_that_encode_text_differently_and_an_empty_list(tmp_path):
    from src.predict import predict

    run_dir = tmp_path / "run"
    _text_run(run_dir)
    _save_text_model(run_dir / "retrain" / "seed_1" / "model.pt", 1, encoder=TextEncoder("ptb", False, VOCAB, 32))
    with pytest.raises(AutoAttendError, match=r"seed_1/model.pt: encodes text differently from .*seed_0/model.pt; "
                                              r"cannot average them"):
        predict(run_dir, ["good film"], ensemble=True)
    with pytest.raises(AutoAttendError, match=r"^no text to classify: give texts as arguments or --file PATH$"):
        predict(run_dir, [])


def test_class_names_of_another_length_than_the_classes_are_not_used(tmp_path):
    from src.predict import predict

    _save_text_model(tmp_path / "wrong.pt", names=("no", "yes", "maybe"))
    _save_text_model(tmp_path / "right.pt", names=("no", "yes"))
    assert list(predict(tmp_path / "wrong.pt", ["good"])[1][0]["probabilities"]) == ["class 0", "class 1"]
    assert list(predict(tmp_path / "right.pt", ["good"])[1][0]["probabilities"]) == ["no", "yes"]


def test_texts_past_a_batch_are_all_classified(tmp_path, monkeypatch):
    """Texts go through the model ``BATCH_SIZE`` at a time: a last batch of one text is not lost."""
    import src.predict

    model = _save_text_model(tmp_path / "model.pt")
    monkeypatch.setattr(src.predict, "BATCH_SIZE", 2)
    texts = ["good film", "bad film .", "the film is bad"]
    rows = src.predict.predict(tmp_path / "model.pt", texts)[1]
    assert [r["text"] for r in rows] == texts
    torch.testing.assert_close(torch.tensor(list(rows[2]["probabilities"].values())),
                               _probabilities(model, texts[2:])[0], rtol=0, atol=1e-6)


def test_the_default_choice_refuses_an_unknown_seed_an_empty_retrain_and_no_finished_seed(tmp_path):
    from src.predict import choose_models

    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "retrain").mkdir()
    with pytest.raises(AutoAttendError, match=r"run: no kept models \(expected retrain/seed_<s>/model.pt"):
        choose_models(run_dir)
    _text_run(run_dir, finished=())
    with pytest.raises(AutoAttendError, match=r"retrain: no model for seed 7 \(kept: 0, 1\)$"):
        choose_models(run_dir, seed=7)
    with pytest.raises(AutoAttendError, match=r"retrain: no seed has finished \(retrain/seed_<s>.json\); choose an "
                                              r"unfinished one with --seed \(0, 1\)$"):
        choose_models(run_dir, ensemble=True)


def test_predict_command_line_text_output(tmp_path, capsys, monkeypatch):
    """``--jsonl`` keeps non-ASCII text as it is; ``--file -`` reads standard input; a ``--file`` that
    cannot be read (missing, not UTF-8) is named for a text model; the table shows each text on one
    line, ``|`` escaped and cut to 70 characters."""
    from src.predict import _shown, main, read_texts

    model_file = tmp_path / "model.pt"
    _save_text_model(model_file)
    assert main([str(model_file), "le film était bon", "--jsonl"]) == 0
    out = capsys.readouterr().out
    assert "était" in out and json.loads(out)["text"] == "le film était bon"
    monkeypatch.setattr(sys, "stdin", io.StringIO("good film\nbad film\n"))
    assert main([str(model_file), "--file", "-", "--jsonl"]) == 0
    assert [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()] == ["good film", "bad film"]
    assert main([str(model_file), "--file", str(tmp_path / "missing.txt")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'missing.txt'}: cannot read (FileNotFoundError")
    (tmp_path / "latin1.txt").write_bytes("le film était bon\n".encode("latin-1"))
    with pytest.raises(AutoAttendError, match=r"latin1.txt: cannot read \(UnicodeDecodeError: .*expected a UTF-8"):
        read_texts(str(tmp_path / "latin1.txt"))
    assert _shown("a" * 70) == "a" * 70
    assert _shown("b" * 71) == "b" * 67 + "..."
    assert _shown("good | bad\n\tfilm") == "good \\| bad film"


# ---- src.predict: graph nodes ----------------------------------------------------------------------

def _graph_model(seed: int, in_dim: int = 5):
    from src.models.graph import GraphNet
    from src.space import Architecture

    torch.manual_seed(seed)
    arch = Architecture.load(ROOT / "src/space/archs/gcn.yaml")
    return GraphNet.child(in_dim, 3, arch, hidden=4, heads=1), arch


def _graph_run(run_dir: Path, seeds=(0, 1), multilabel=None) -> dict:
    """A graph_file run's folder with a finished gcn model per seed (``multilabel=None``: a model
    file from before its spec said whether it is multi-label)."""
    from src.models.saved import graph_child_spec, save_child, weights_of

    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text(
        "task: {name: graph_file, family: graph, path: g.npz, datamodule: {_target_: "
        "src.data.graph_file.GraphFileDataModule, path: g.npz}}\npaths: {data_dir: d, cache_dir: c}\nseed: 0\n")
    models = {}
    for seed in seeds:
        model, arch = _graph_model(seed)
        spec = graph_child_spec(arch, 5, 3, multilabel=bool(multilabel), hidden=4, heads=1)
        if multilabel is None:
            del spec["multilabel"]
        evaluation = {"step": 1, "val_acc": 0.5 + seed / 10, "test_acc": 0.5}
        save_child(run_dir / "retrain" / f"seed_{seed}" / "model.pt", weights_of(model), spec, evaluation)
        (run_dir / "retrain" / f"seed_{seed}.json").write_text(json.dumps({"seed": seed, **evaluation}))
        models[seed] = model.eval()
    return models


def _graph_file(path: Path, nodes: int = 6, features: int = 5, **arrays) -> dict:
    import numpy as np

    rng = np.random.default_rng(0)
    written = {"x": rng.random((nodes, features)).astype(np.float32),
               "edge_index": np.array([[0, 1, 2, 3], [1, 2, 3, 4]]), **arrays}
    np.savez(path, **written)
    return {k: torch.from_numpy(v) for k, v in written.items()}


def test_predict_nodes_of_a_graph_file_from_a_run_directory(tmp_path):
    """``predict_nodes(RUN_DIR, ensemble=True, graph=FILE)``: the run directory itself is the run
    (not a folder above it), the seeds' probabilities are averaged, and the file's labels and masks
    fill the label and split columns."""
    import numpy as np

    from src.predict import predict_nodes

    run_dir = tmp_path / "run"
    models = _graph_run(run_dir, multilabel=False)
    y = np.array([0, 1, 2, 0, 1, 2])
    masks = {name: np.array(mask, dtype=bool) for name, mask in (
        ("train_mask", [1, 1, 0, 0, 0, 0]), ("val_mask", [0, 0, 1, 0, 0, 0]), ("test_mask", [0, 0, 0, 1, 1, 0]))}
    arrays = _graph_file(tmp_path / "new.npz", y=y, **masks)
    described, rows = predict_nodes(run_dir, ensemble=True, graph=tmp_path / "new.npz")
    assert len(described) == 2
    with torch.inference_mode():
        expected = sum(torch.softmax(m(arrays["x"], arrays["edge_index"]), -1) for m in models.values()) / 2
    torch.testing.assert_close(torch.tensor([r["probabilities"] for r in rows]), expected, rtol=0, atol=1e-6)
    assert [r["prediction"] for r in rows] == expected.argmax(-1).tolist()
    assert [r["label"] for r in rows] == y.tolist()
    assert [r["split"] for r in rows] == ["train", "train", "val", "test", "test", ""]


def test_predict_nodes_of_another_graph_refuses_a_narrow_file_and_a_text_model(tmp_path):
    from src.predict import predict_nodes

    run_dir = tmp_path / "run"
    _graph_run(run_dir, seeds=(0,))
    _graph_file(tmp_path / "narrow.npz", features=4)
    with pytest.raises(AutoAttendError, match=r"narrow.npz: 'x' has 4 features per node; the run's models take 5 \(the "
                                              r"features of its training data\)$"):
        predict_nodes(run_dir, graph=tmp_path / "narrow.npz")
    _graph_file(tmp_path / "new.npz")
    text_model = run_dir / "retrain" / "seed_9" / "model.pt"
    _save_text_model(text_model)
    with pytest.raises(AutoAttendError, match=r"seed_9/model.pt: a text model; give texts to classify$"):
        predict_nodes(text_model, graph=tmp_path / "new.npz")


def test_a_model_file_that_says_it_is_single_label_is_read_as_such(tmp_path):
    """A model file whose spec says ``multilabel: false`` gives classes, whatever the run's record
    says; one from before the spec said it is read as the run's metric says (micro-F1: label sets)."""
    from src.predict import predict_nodes

    for multilabel, expected in ((False, int), (None, list)):
        run_dir = tmp_path / str(multilabel)
        _graph_run(run_dir, seeds=(0,), multilabel=multilabel)
        (run_dir / "retrain" / "results.json").write_text(json.dumps({"metric": "micro_f1"}))
        _graph_file(tmp_path / "new.npz")
        rows = predict_nodes(run_dir, graph=tmp_path / "new.npz")[1]
        assert all(isinstance(r["prediction"], expected) for r in rows), multilabel


def test_whether_a_run_was_multi_label_is_read_from_its_records_then_its_data(tmp_path):
    """Protects ``_run_was_multilabel``: ``retrain/results.json``'s metric, else ``summary.json``'s,
    else the task's DataModule."""
    from src.predict import _run_was_multilabel

    assert _run_was_multilabel(tmp_path, SimpleNamespace(multilabel=True)) is True
    assert _run_was_multilabel(tmp_path, SimpleNamespace(multilabel=False)) is False
    (tmp_path / "summary.json").write_text(json.dumps({"metric": "micro_f1"}))
    assert _run_was_multilabel(tmp_path, SimpleNamespace(multilabel=False)) is True
    (tmp_path / "retrain").mkdir()
    (tmp_path / "retrain" / "results.json").write_text(json.dumps({"metric": "accuracy"}))
    assert _run_was_multilabel(tmp_path, SimpleNamespace(multilabel=True)) is False


def test_nodes_of_several_pieces_are_numbered_split_and_labelled_by_their_piece(tmp_path):
    """Protects ``_classified_nodes`` over several graphs (PPI, a file of several): each piece's
    masks and labels land on its own nodes (offset by the pieces before), the rows sorted by node."""
    from src.models.saved import graph_child_spec, save_child, weights_of
    from src.predict import _classified_nodes

    model, arch = _graph_model(0)
    save_child(tmp_path / "model.pt", weights_of(model), graph_child_spec(arch, 5, 3, hidden=4, heads=1),
               {"step": 1, "val_acc": 0.5, "test_acc": 0.5})
    model.eval()
    g = torch.Generator().manual_seed(0)
    first = {"x": torch.rand(2, 5, generator=g), "edge_index": torch.tensor([[0], [1]]), "y": torch.tensor([1, 2]),
             "train_mask": torch.tensor([True, False]), "val_mask": None, "test_mask": torch.tensor([False, True])}
    second = {"x": torch.rand(3, 5, generator=g), "edge_index": torch.tensor([[0, 1], [1, 2]]), "y": None,
              "train_mask": None, "val_mask": torch.tensor([False, True, False]), "test_mask": None}
    pieces = [(torch.tensor([3, 4]), first), (torch.tensor([0, 1, 2]), second)]
    described, rows = _classified_nodes([tmp_path / "model.pt"], pieces, lambda spec: False)
    with torch.inference_mode():
        probabilities = torch.cat([torch.softmax(model(b["x"], b["edge_index"]), -1) for b in (second, first)])
    assert [(r["node"], r["split"], r["label"]) for r in rows] == [
        (0, "", None), (1, "val", None), (2, "", None), (3, "train", 1), (4, "test", 2)]
    assert [r["prediction"] for r in rows] == probabilities.argmax(-1).tolist()


def test_node_rows_as_csv(capsys):
    """A node without a label leaves its column empty; multi-label rows are label sets joined by ';'."""
    from src.predict import _print_nodes

    _print_nodes([{"node": 0, "split": "", "label": None, "prediction": 1, "probabilities": [0.25, 0.75]},
                  {"node": 1, "split": "test", "label": 0, "prediction": 0, "probabilities": [0.5, 0.5]}], False)
    assert capsys.readouterr().out.splitlines() == ["node,split,label,prediction,probability", "0,,,1,0.7500",
                                                    "1,test,0,0,0.5000"]
    _print_nodes([{"node": 0, "split": "train", "label": [0, 2], "prediction": [2], "probabilities": [0.1, 0.2, 0.9]},
                  {"node": 1, "split": "", "label": None, "prediction": [], "probabilities": [0.1, 0.2, 0.3]}], False)
    assert capsys.readouterr().out.splitlines() == ["node,split,labels,predictions", "0,train,0;2,2", "1,,,"]


@pytest.mark.parametrize("multilabel, y, said", [
    (False, [0, 1, 2, 3, 1, -1], "'y' holds class 3; the run's models have 3 classes (0 to 2; -1 for an unlabelled node)"),
    (False, [0, 1, 2, 2, 1, -1], None),
    (True, [0, 1, 2, 0, 1, 2], "'y' holds (N,) class ids; the run's models give label sets, (N, 3)"),
    (True, [[0, 1]] * 6, "'y' has 2 labels per node; the run's models give 3"),
    (True, [[0, 1, 1, 0]] * 6, "'y' has 4 labels per node; the run's models give 3"),
    (True, [[0, 1, 1]] * 6, None)])
def test_the_labels_of_a_graph_to_classify_are_of_the_runs_kind_and_range(tmp_path, multilabel, y, said):
    """``--graph``'s ``y`` is shown beside the predictions: below the run's classes (class 3 of a 3-class run
    is not), label sets of the run's width for a multi-label run, class ids for a single-label one."""
    import numpy as np

    from src.predict import predict_nodes

    run_dir = tmp_path / "run"
    _graph_run(run_dir, seeds=(0,), multilabel=multilabel)
    new = tmp_path / "new.npz"
    _graph_file(new, y=np.array(y))
    if said is None:
        assert len(predict_nodes(run_dir, graph=new)[1]) == 6
        return
    with pytest.raises(AutoAttendError) as err:
        predict_nodes(run_dir, graph=new)
    assert str(err.value) == f"{new}: {said}"


def test_a_graph_to_classify_without_nodes_gives_no_rows(tmp_path):
    """A ``--graph`` file of no node (its ``y`` empty) is classified into no row, not a traceback of ``y``'s max."""
    import numpy as np

    from src.predict import predict_nodes

    run_dir = tmp_path / "run"
    _graph_run(run_dir, seeds=(0,), multilabel=False)
    np.savez(tmp_path / "empty.npz", x=np.zeros((0, 5), np.float32), edge_index=np.zeros((2, 0), np.int64),
             y=np.zeros(0, np.int64))
    assert predict_nodes(run_dir, graph=tmp_path / "empty.npz")[1] == []


def test_predict_on_another_graph_says_nothing_of_the_runs_data_folder(tmp_path, monkeypatch, capsys):
    """With ``--graph`` the run's data are not read: no "note: reading the data from <the folder the run
    read>", though the run's invocation names one other than its config's ``paths.data_dir``."""
    from src.predict import predict_nodes

    monkeypatch.delenv("AUTOATTEND_DATA_DIR", raising=False)
    run_dir = tmp_path / "run"
    _graph_run(run_dir, seeds=(0,), multilabel=False)
    (tmp_path / "elsewhere").mkdir()
    (run_dir / "invocations.json").write_text(json.dumps({"invocations": [
        {"argv": ["+task=graph_file", "task.path=g.npz"], "data_dir": str(tmp_path / "elsewhere")}]}))
    _graph_file(tmp_path / "new.npz")
    assert len(predict_nodes(run_dir, graph=tmp_path / "new.npz")[1]) == 6
    assert "note: reading" not in capsys.readouterr().err

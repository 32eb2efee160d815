"""Classify new text with a retrained model (or, for a graph run, every node of its graph).

    python -m src.predict outputs/sst5/search/2026-12-04_10-00-00 "A gripping, funny film."
    python -m src.predict RUN_DIR --file reviews.txt --jsonl > predictions.jsonl
    python -m src.predict RUN_DIR/retrain/seed_3/model.pt "..."      # one kept model file
    python -m src.predict RUN_DIR --ensemble "..."                    # every seed, probabilities averaged

The target is a run directory of a text task (``src.search`` or ``src.retrain``: its kept
``retrain/seed_<s>/model.pt``, by default the seed with the best recorded validation score, ties
to the lower seed; ``--seed`` picks one, ``--ensemble`` averages the class probabilities of all
finished seeds) or a ``model.pt`` file itself. Each text is tokenised as the task's training data
was (``src/data/raw_text.py``: Penn-Treebank tokens for SST, the CSV reader's own tokenizer for
the Zhang et al. tasks, whose title and body fields training joined with a space), mapped to the
run's vocabulary (unknown words counted in the output) and cut to its ``max_len``. The model file
holds all of that; a file kept before it did (no ``text_input``) has it rebuilt from the run's
``.hydra/config.yaml`` (``--override key=value``, e.g. where the data now lies). Exit status 0,
or 2 on bad input. Writes nothing but the predictions to stdout.

A graph run's models classify the nodes of the run's graph (Cora, CiteSeer, PubMed, a graph_file) or
graphs (PPI, a graph_file with several): given no texts, ``src.predict <graph run dir>`` rebuilds
the data from the run's config and prints a CSV row per node (``node,split,label,prediction,probability``;
``--jsonl``: every class's probability), the split being the task's ``train`` / ``val`` / ``test``
(Planetoid's public split) or empty. Nodes are numbered as the file's rows for a graph_file, and for
PPI in the order of its training, validation and test graphs.
A multi-label graph's rows are ``node,split,labels,predictions``, label sets joined by ``;`` (a label
is predicted where its sigmoid probability, averaged over the models, is above one half; ``--jsonl``:
each label's probability). ``--graph FILE`` classifies the nodes of another graph instead (a
``.npz`` / ``.pt`` file as ``+task=graph_file`` reads, of which only ``x`` and ``edge_index`` are
needed; ``y`` and masks, where given, fill the label and split columns): its features go through
the run's task preprocessing (Planetoid's row normalisation; a graph_file run's ``task.row_normalize``
and ``task.to_undirected``), and the run's own data are not read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from src.utils.errors import AutoAttendError

BATCH_SIZE = 256
TEXT_SHOWN = 70  # characters of each text in the table (--jsonl gives it whole)


def choose_models(target: Path, seed: int | None = None, ensemble: bool = False) -> list[Path]:
    """The model file(s) ``target`` names: the file itself, or a run's retrain seed (``seed``, else
    the finished seed of best recorded validation score, ties to the lower seed), or with
    ``ensemble`` every finished seed, by seed."""
    if target.is_file():
        if seed is not None or ensemble:
            raise AutoAttendError(f"{target}: --seed and --ensemble choose among a run's seeds; give the run directory")
        return [target]
    if not target.is_dir():
        raise AutoAttendError(f"{target}: no such run directory or model file")
    from src.evaluate import finished_seeds, seed_paths
    from src.utils.io import read_seed_record

    retrain = target / "retrain"
    kept = {s: path for folder, s, path in seed_paths(target, "seed_*/model.pt") if folder == "retrain"}
    if not kept and (target / ".hydra").is_dir() and not retrain.is_dir():
        raise AutoAttendError(f"{target}: nothing retrained (no retrain/ folder: the run stopped before its retrain "
                              "stage, or ran with retrain.seeds=0; graph tasks: graph.retrain.seeds=0)")
    if not kept:
        what = "not a run directory" if not (target / ".hydra").is_dir() else "no kept models"
        raise AutoAttendError(f"{target}: {what} (expected retrain/seed_<s>/model.pt, which a run's retrain keeps; "
                              "runs retrained before models were kept have none)")
    if seed is not None:
        if seed not in kept:
            raise AutoAttendError(f"{retrain}: no model for seed {seed} (kept: {', '.join(map(str, sorted(kept)))})")
        return [kept[seed]]
    records = {s: path for folder, s, path in finished_seeds(target) if folder == "retrain"}
    finished = {s: float(read_seed_record(records[s])["val_acc"]) for s in kept if s in records}
    if not finished:
        raise AutoAttendError(f"{retrain}: no seed has finished (retrain/seed_<s>.json); choose an unfinished "
                              f"one with --seed ({', '.join(map(str, sorted(kept)))})")
    # said, not silent: the choice (or the ensemble) is over fewer seeds than the run's record
    lost = sorted(s for s in records if s not in kept)
    if lost:
        print(f"note: seed(s) {', '.join(map(str, lost))} finished but kept no model.pt (src.evaluate reports "
              f"them); {'the ensemble' if ensemble else 'the choice'} is among seeds "
              f"{', '.join(map(str, sorted(finished)))}", file=sys.stderr)
    if not (retrain / "results.json").is_file():
        print(f"note: {target} has not finished its retrain: {'the ensemble' if ensemble else 'the choice'} is "
              f"among the seeds finished so far ({', '.join(map(str, sorted(finished)))})", file=sys.stderr)
    if ensemble:
        return [kept[s] for s in sorted(finished)]
    best = min(finished, key=lambda s: (-finished[s], s))
    return [kept[best]]


def _encoder_and_names(path: Path, spec: dict[str, Any], overrides: Sequence[str]):
    """The model's :class:`TextEncoder` and class names: from its file, or for a file kept before
    they were stored, rebuilt from its run's config."""
    from src.data.raw_text import TextEncoder

    if "text_input" in spec:
        return TextEncoder.from_dict(spec["text_input"]), spec.get("label_names")
    from src.evaluate import run_config, settings_of_the_run
    from src.pipeline.common import build_datamodule, check_data_of_run

    run_dir = _run_dir_of(path)
    cfg = run_config(run_dir, list(overrides))
    print(f"predict: {path} predates stored text settings; rebuilding them from {run_dir / '.hydra/config.yaml'}",
          file=sys.stderr, flush=True)
    with settings_of_the_run(run_dir, cfg):
        dm = build_datamodule(cfg)
        check_data_of_run(run_dir, cfg, dm, graph=False)
        names = cfg.task.get("label_names")
    return dm.text_encoder(), None if names is None else list(names)


LABEL_NAMES = "task.label_names"


def _overridden(overrides: Sequence[str], key: str) -> bool:
    return any(o.split("=", 1)[0].lstrip("+~") == key for o in overrides)


def _names_given(path: Path, overrides: Sequence[str]) -> list[str] | None:
    """The class names ``--override task.label_names=[...]`` gives (checked as the run's config would be:
    one distinct name a class), which name the classes in place of the model file's; ``[]`` for
    ``task.label_names=null`` (class ids, whatever the file holds); None without the override."""
    if not _overridden(overrides, LABEL_NAMES):
        return None
    from src.evaluate import run_config
    from src.pipeline.checks import check_label_names

    cfg = run_config(_run_dir_of(path, "--override needs (it sets the run's config)"), list(overrides))
    check_label_names(cfg)
    names = cfg.task.get("label_names")
    return [] if names is None else list(names)


def _describe(path: Path, evaluation: dict[str, Any]) -> str:
    return (f"{path} (step {evaluation['step']}: validation {100 * evaluation['val_acc']:.2f} %, "
            f"test {100 * evaluation['test_acc']:.2f} %)")


def predict(target: str | Path, texts: Sequence[str], seed: int | None = None, ensemble: bool = False,
            overrides: Sequence[str] = ()) -> tuple[list[str], list[dict[str, Any]]]:
    """Classify ``texts``. Returns ``(descriptions of the models used, one row per text)``; a row
    holds the text, the ``prediction`` (the class index of the arg-max of the mean class
    probabilities; a graph run's rows name it so too, beside the node's true ``label``), its
    ``name``, every class's ``probabilities`` and the ``unknown_words`` among the ``words`` the
    model saw."""
    if not texts:
        raise AutoAttendError("no text to classify: give texts as arguments or --file PATH")
    return _text_rows(choose_models(Path(target), seed, ensemble), texts, overrides)


def _text_rows(paths: list[Path], texts: Sequence[str], overrides: Sequence[str]):
    import torch

    from src.data.raw_text import TextEncoder
    from src.data.text import UNK_ID
    from src.models.saved import TEXT_FORMAT, load_child

    encoder: TextEncoder | None = None
    names: list[str] | None = None
    given = _names_given(paths[0], overrides)
    ids: list[list[int]] = []
    probabilities = None
    described = []
    for path in paths:
        model, record = load_child(path)
        spec = record["spec"]
        if spec["format"] != TEXT_FORMAT:
            raise AutoAttendError(f"{path}: a graph model, which classifies the nodes of its run's graph "
                                  "(predict_nodes), not text")
        if encoder is None:
            encoder, names = _encoder_and_names(path, spec, overrides)
            ids = [encoder.ids(text) for text in texts]  # once, whatever the number of models
        elif "text_input" in spec and TextEncoder.from_dict(spec["text_input"]) != encoder:
            raise AutoAttendError(f"{path}: encodes text differently from {paths[0]}; cannot average them")
        described.append(_describe(path, record["evaluation"]))
        with torch.inference_mode():
            these = torch.cat([torch.softmax(model(*TextEncoder.pad(ids[i:i + BATCH_SIZE])).float(), dim=-1)
                               for i in range(0, len(ids), BATCH_SIZE)])
        probabilities = these if probabilities is None else probabilities + these
    probabilities = probabilities / len(paths)
    num_classes = probabilities.shape[1]
    if given and len(given) != num_classes:
        raise AutoAttendError(f"{LABEL_NAMES}: {len(given)} names for the model's {num_classes} classes")
    if given is not None:
        names = given or None
    names = names if names is not None and len(names) == num_classes else [f"class {c}" for c in range(num_classes)]
    rows = []
    for text, these_ids, probs, prediction in zip(texts, ids, probabilities.tolist(), probabilities.argmax(-1).tolist()):
        rows.append({"text": text, "prediction": prediction, "name": names[prediction],
                     "probabilities": dict(zip(names, probs)),
                     "unknown_words": sum(i == UNK_ID for i in these_ids), "words": len(these_ids)})
    return described, rows


def _run_dir_of(model_file: Path, needed_by: str = "a graph model needs for its graph") -> Path:
    """The run directory holding a kept model file (the nearest folder above with .hydra/)."""
    for folder in model_file.resolve().parents:
        if (folder / ".hydra" / "config.yaml").is_file():
            return folder
    raise AutoAttendError(f"{model_file}: not inside a run directory (no .hydra/config.yaml above it), which "
                          f"{needed_by}")


def predict_nodes(target: str | Path, seed: int | None = None, ensemble: bool = False,
                  overrides: Sequence[str] = (), graph: str | Path | None = None
                  ) -> tuple[list[str], list[dict[str, Any]]]:
    """Classify every node of a graph run's graph or graphs (``graph``: of that graph file instead,
    as ``--graph``). Returns ``(descriptions of the models used, one row per node)``: ``node``
    index, ``split`` (train / val / test / ""), true ``label`` (None where the file gives none),
    ``prediction`` (arg-max of the mean class probabilities), ``probabilities``; for a multi-label
    task ``label`` and ``prediction`` are lists of label indices (those whose mean sigmoid
    probability is above one half)."""
    target = Path(target)
    run_dir = target if target.is_dir() else _run_dir_of(target)
    paths = choose_models(target, seed, ensemble)
    if graph is not None:
        return _new_graph_rows(paths, run_dir, Path(graph), overrides)
    return _node_rows(paths, run_dir, overrides)


def _node_rows(paths: list[Path], run_dir: Path, overrides: Sequence[str]):
    from src.evaluate import run_config, settings_of_the_run
    from src.pipeline.common import build_datamodule, check_data_of_run

    cfg = run_config(run_dir, list(overrides))
    with settings_of_the_run(run_dir, cfg):
        dm = build_datamodule(cfg)
        check_data_of_run(run_dir, cfg, dm, graph=True)
    return _classified_nodes(paths, dm.node_batches(), lambda spec: dm.multilabel)


def _new_graph_rows(paths: list[Path], run_dir: Path, graph_file: Path, overrides: Sequence[str]):
    """``--graph``: the nodes of another graph file, made what the run's models were trained on by
    its task's preprocessing (Planetoid's row normalisation, a graph_file's settings); the run's
    own data are not read."""
    import torch
    from src.data.graph_file import SPLITS, read_graph_to_classify
    from src.evaluate import run_config, settings_of_the_run
    from src.pipeline.common import instantiate_datamodule

    cfg = run_config(run_dir, list(overrides), reads_data=False)
    arrays = read_graph_to_classify(graph_file)
    with settings_of_the_run(run_dir, cfg):
        dm = instantiate_datamodule(cfg)
    x, edge_index = dm.prepare_graph(arrays["x"], arrays["edge_index"], str(graph_file))
    n = x.size(0)
    batch = {"x": x, "edge_index": edge_index, "y": arrays.get("y"),
             **{name: arrays[name].bool() if name in arrays else None for name in SPLITS}}

    def multilabel(spec: dict) -> bool:
        if spec["in_dim"] != x.size(1):
            raise AutoAttendError(f"{graph_file}: 'x' has {x.size(1)} features per node; the run's models take "
                                  f"{spec['in_dim']} (the features of its training data)")
        multi = bool(spec["multilabel"]) if "multilabel" in spec else _run_was_multilabel(run_dir, dm)
        _check_labels_shown(arrays.get("y"), multi, int(spec["num_classes"]), graph_file)
        return multi

    return _classified_nodes(paths, [(torch.arange(n), batch)], multilabel)


def _run_was_multilabel(run_dir: Path, dm) -> bool:
    """For model files saved before their spec said it: the run's recorded metric (micro-F1: a
    multi-label task), else the task's DataModule (PPI)."""
    for record in (run_dir / "retrain" / "results.json", run_dir / "summary.json"):
        try:
            return json.loads(record.read_text())["metric"] == "micro_f1"
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return bool(dm.multilabel)


def _check_labels_shown(y, multilabel: bool, classes: int, graph_file: Path) -> None:
    """A ``--graph`` file's ``y`` (shown beside the predictions) is of the run's kind and range: (N,)
    class ids below ``classes`` (-1: unlabelled), or (N, ``classes``) label sets for a multi-label run.
    Another was printed as labels without a word (class 7 beside a 3-class run's predictions)."""
    if y is None:
        return
    if multilabel != (y.dim() == 2):
        given, wanted = (("(N, C) label sets", "class ids, (N,)") if y.dim() == 2 else
                         ("(N,) class ids", f"label sets, (N, {classes})"))
        raise AutoAttendError(f"{graph_file}: 'y' holds {given}; the run's models give {wanted}")
    if y.dim() == 2 and y.size(1) != classes:
        raise AutoAttendError(f"{graph_file}: 'y' has {y.size(1)} labels per node; the run's models give {classes}")
    if y.dim() == 1 and y.numel() and int(y.max()) >= classes:
        raise AutoAttendError(f"{graph_file}: 'y' holds class {int(y.max())}; the run's models have {classes} "
                              f"classes (0 to {classes - 1}; -1 for an unlabelled node)")


def _classified_nodes(paths: list[Path], pieces: list[tuple[Any, dict]], multilabel_of):
    """Rows for every node of ``pieces`` ((node ids (n,), batch dict) pairs; ``y`` and the masks may
    be None) with the models of ``paths``, probabilities averaged; ``multilabel_of(spec)`` says
    (and may check) how a model's outputs are read. Rows sorted by node id."""
    import torch

    from src.models.saved import GRAPH_FORMAT, load_child

    described, probabilities, multilabel = [], None, None
    for path in paths:
        model, record = load_child(path)
        if record["spec"]["format"] != GRAPH_FORMAT:
            raise AutoAttendError(f"{path}: a text model; give texts to classify")
        multilabel = multilabel_of(record["spec"])
        # multi-label (a graph_file with (N, C) targets, PPI): each label's own probability, a sigmoid,
        # and the labels above one half, as the run scored them (a logit > 0)
        squash = torch.sigmoid if multilabel else (lambda logits: torch.softmax(logits, dim=-1))
        described.append(_describe(path, record["evaluation"]))
        with torch.inference_mode():
            these = torch.cat([squash(model(batch["x"], batch["edge_index"]).float()) for _, batch in pieces])
        probabilities = these if probabilities is None else probabilities + these
    probabilities = probabilities / len(paths)
    ids = torch.cat([nodes for nodes, _ in pieces])
    split = [""] * probabilities.shape[0]
    labels: list = []
    offset = 0
    for _, batch in pieces:
        n = batch["x"].size(0)
        for name in ("train", "val", "test"):
            if batch.get(f"{name}_mask") is not None:
                for node in batch[f"{name}_mask"].nonzero().flatten().tolist():
                    split[offset + node] = name
        y = batch.get("y")
        if y is None:
            labels += [None] * n
        elif y.dim() == 2:
            labels += [row.nonzero().flatten().tolist() for row in y > 0.5]
        else:
            labels += [int(label) for label in y.tolist()]
        offset += n
    if multilabel:
        predictions = [row.nonzero().flatten().tolist() for row in probabilities > 0.5]
    else:
        predictions = probabilities.argmax(-1).tolist()
    rows = [{"node": node, "split": split[i], "label": label, "prediction": prediction, "probabilities": probs}
            for i, (node, probs, label, prediction) in enumerate(zip(ids.tolist(), probabilities.tolist(), labels,
                                                                     predictions))]
    rows.sort(key=lambda row: row["node"])
    return described, rows


def read_texts(path: str) -> list[str]:
    """One text per line of ``path`` (``-``: standard input); blank lines at the end (an editor's
    extra newline) are dropped, a blank line between texts is an error naming it. Lines end at
    ``\n``, ``\r\n`` or ``\r`` only: ``str.splitlines`` also broke a text at
    U+2028, U+0085 or a form feed, so the rows no longer matched the file's lines. A UTF-8
    byte-order mark (Notepad's, Excel's "UTF-8 with BOM") is not part of the first text."""
    if path == "-" and sys.stdin is None:  # `<&-`: Python's sys.stdin is None
        raise AutoAttendError("--file -: standard input is closed; give the texts there, or a file with --file F")
    try:
        # standard input as strictly UTF-8 as a file (its text stream lets other bytes through as unknown words)
        stdin = getattr(sys.stdin, "buffer", None)
        text = (Path(path).read_text(encoding="utf-8") if path != "-" else
                stdin.read().decode("utf-8") if stdin is not None else sys.stdin.read())
    except (OSError, UnicodeDecodeError) as exc:
        raise AutoAttendError(f"{path}: cannot read ({type(exc).__name__}: {exc}); expected a UTF-8 text file, "
                              "one text per line") from None
    # a file read in text mode has \r\n and \r made into \n already; standard input has not
    lines = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    blank = next((i for i, line in enumerate(lines, 1) if not line.strip()), None)
    if blank is not None:
        raise AutoAttendError(f"{path}, line {blank}: blank; expected one text per line")
    return lines


def _print_nodes(rows: list[dict[str, Any]], jsonl: bool) -> None:
    """CSV (or JSON lines) of node rows; a graph given without labels leaves the label column empty."""
    if jsonl:
        for row in rows:
            print(json.dumps(row))
        return
    if rows and isinstance(rows[0]["prediction"], list):  # multi-label: label sets, ';'-separated
        print("node,split,labels,predictions")
        for row in rows:
            labels = "" if row["label"] is None else ";".join(map(str, row["label"]))
            print(f"{row['node']},{row['split']},{labels},{';'.join(map(str, row['prediction']))}")
        return
    print("node,split,label,prediction,probability")
    for row in rows:
        label = "" if row["label"] is None else row["label"]
        print(f"{row['node']},{row['split']},{label},{row['prediction']},"
              f"{row['probabilities'][row['prediction']]:.4f}")


def _shown(text: str) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= TEXT_SHOWN else text[:TEXT_SHOWN - 3] + "..."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.predict", description=__doc__.split("\n\n")[0],
                                     epilog="Texts come from the arguments, or --file (one per line); a graph run's "
                                            "nodes are printed as CSV.")
    # a leading ~ is the home folder, as for the paths of a run's config (zsh passes DIR=~/... unexpanded to make)
    parser.add_argument("target", type=os.path.expanduser,
                        help="a run's directory, or a kept model file (retrain/seed_<s>/model.pt)")
    parser.add_argument("texts", nargs="*", default=[], help="texts to classify (none for a graph run: its nodes)")
    parser.add_argument("--file", type=os.path.expanduser,
                        help="read the texts from this file, one per line ('-': standard input)")
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--seed", type=int, help="use this retrain seed's model (default: best validation score)")
    choice.add_argument("--ensemble", action="store_true", help="average the probabilities of every finished seed")
    parser.add_argument("--jsonl", action="store_true", help="one JSON object per text, every class's probability")
    parser.add_argument("--graph", metavar="FILE", type=os.path.expanduser,
                        help="a graph run: classify the nodes of this graph file (.npz / .pt: x, edge_index; y and "
                             "masks optional) instead of its own")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting of the run's config, for model files kept without their text settings")
    args = parser.parse_intermixed_args(argv)  # options may come between the target and the texts
    try:
        if args.file is not None and args.texts:
            raise AutoAttendError("give texts as arguments or --file, not both")
        texts, file_error = args.texts, None
        for number, text in enumerate(texts, 1):  # bytes that are not UTF-8 (Latin-1) reach argv as surrogates
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise AutoAttendError(f"text {number}: not UTF-8 ({exc.reason} at character {exc.start}); give "
                                      "texts in UTF-8") from None
        if args.file is not None and args.file != "-":  # standard input: read once the run takes text
            try:
                texts = read_texts(args.file)
            except AutoAttendError as exc:  # raised once the run is known to classify text (a graph run takes none)
                file_error = exc
        target = Path(args.target)
        try:
            paths = choose_models(target, args.seed, args.ensemble)
            if args.override:  # checked whether or not the model needs its run's config: never silently ignored
                from src.evaluate import run_config

                from src.pipeline.checks import check_label_names

                check_label_names(run_config(target if target.is_dir() else _run_dir_of(
                    target, "--override needs (it sets the run's config)"), args.override))
            from src.models.saved import GRAPH_FORMAT, read_saved  # torch: after the cheap checks of the input

            graph = read_saved(paths[0])["spec"]["format"] == GRAPH_FORMAT
        except AutoAttendError:
            if file_error is not None:  # both wrong: the file is named first, as when it was read first
                raise file_error from None
            raise
        nodes = None
        if graph:
            if texts or args.file is not None:
                raise AutoAttendError(f"{args.target}: a graph run's models classify the nodes of its graph; "
                                      f"give no texts{' (no --file)' if args.file is not None else ''}")
            run_dir = target if target.is_dir() else _run_dir_of(target)
            if args.graph is not None:
                described, nodes = _new_graph_rows(paths, run_dir, Path(args.graph), args.override)
            else:
                described, nodes = _node_rows(paths, run_dir, args.override)
        else:
            if args.graph is not None:
                raise AutoAttendError(f"{args.target}: a text run's models classify text; --graph is for a graph run")
            if file_error is not None:
                raise file_error
            if args.file == "-":
                texts = read_texts("-")
            if not texts:
                if args.file is not None:
                    raise AutoAttendError(f"{'standard input' if args.file == '-' else args.file}: no text to "
                                          "classify in it (expected one text per line)")
                raise AutoAttendError("no text to classify: give texts as arguments or --file PATH")
            described, rows = _text_rows(paths, texts, args.override)
    except AutoAttendError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in described:
        print(f"predict: {line}", file=sys.stderr)
    if nodes is not None:
        _print_nodes(nodes, args.jsonl)
        return 0
    if args.jsonl:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return 0
    print("| # | prediction | probability | unknown words | text |")
    print("| --- | --- | --- | --- | --- |")
    for i, row in enumerate(rows, 1):
        print(f"| {i} | {row['name']} | {row['probabilities'][row['name']]:.3f} | "
              f"{row['unknown_words']} of {row['words']} | {_shown(row['text'])} |")
    return 0


if __name__ == "__main__":
    from src.utils.errors import exit_status_of
    from src.utils.restart import entry_point_utf8

    entry_point_utf8()
    sys.exit(exit_status_of(main))

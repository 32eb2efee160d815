"""``python -m src.show``: the layer table, the priors verdict, the layers reaching the output,
the Graphviz drawing and the comparison of two architectures."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys

import pytest
import yaml

from src.show import main
from src.space import GRAPH_OPS, Architecture, FunctionalSpace, Layer, live_layers
from tests.helpers import ROOT

CELL = re.compile(r"^(\w+)\(x(\d+)\)$")


def table_rows(out: str) -> list[list[str]]:
    """The cells of the Markdown table's body rows."""
    rows = [line.strip("|").split("|") for line in out.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row] for row in rows[1:] if not row[0].strip().startswith("---")]


def layers_from_table(rows: list[list[str]]) -> list[Layer]:
    """Rebuild each layer from its row: ``op(x<src>)`` cells, ``-`` for an add layer's V."""
    layers = []
    for _, kind, *cells, _ in rows:
        parsed = [CELL.match(c).groups() if c != "-" else (None, None) for c in cells]
        (q_op, q), (k_op, k), (v_op, v) = parsed
        layers.append(Layer(kind, int(q), q_op, int(k), k_op, None if v is None else int(v), v_op))
    return layers


def run(capsys, *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("ops, priors", [(None, True), (None, False), (GRAPH_OPS, True), (GRAPH_OPS, False)])
def test_the_table_holds_every_layer_and_the_verdicts(tmp_path, capsys, ops, priors):
    """The table gives back each layer exactly (text and graph, with and without the priors), the
    reaching column is :func:`live_layers`, and the priors verdict is the space's."""
    space = FunctionalSpace(6, priors=priors, **({"ops": ops} if ops else {}))
    for seed in range(8):
        arch = space.sample(random.Random(seed))
        arch.save(tmp_path / "arch.yaml")
        status, out, _ = run(capsys, str(tmp_path / "arch.yaml"))
        assert status == 0
        rows = table_rows(out)
        assert tuple(layers_from_table(rows)) == arch.layers
        assert [r[-1] == "yes" for r in rows] == list(live_layers(arch))
        kept = FunctionalSpace(6, ops=space.ops, priors=True).is_valid(arch)
        assert ("design priors: kept\n" in out) == kept
        if kept:
            assert "layers reaching the output: 6 of 6\n" in out  # under the priors every layer is live


def test_the_published_architecture_breaks_the_priors_and_computes_five_layers(capsys):
    status, out, _ = run(capsys, "published_sst5")
    data = yaml.safe_load((ROOT / "src/space/archs/published_sst5.yaml").read_text())
    kinds = [("add", "attn")[row[4]] for row in data["arch"]]  # the authors' [o1, prev, o2, o3, kind] rows
    lines = out.splitlines()
    assert status == 0
    assert lines[0].endswith(f": 24 layers of text ops ({kinds.count('attn')} attn, {kinds.count('add')} add); "
                             "ops used: zero, identity, conv1, conv3, maxpool3")
    # layer 0's Q is maxpool3 on x0, allowed; layer 1 adds zero as addend 1, which prior 3 forbids
    assert lines[1] == ("design priors: not kept; the first rule broken: layer 1, field 'q_op': prior 3: 'zero' is "
                        "not allowed here")
    assert lines[2] == "layers reaching the output: 5 of 24 (not computed: 0, 3-20)"
    assert [i for i, r in enumerate(table_rows(out)) if r[-1] == "yes"] == [1, 2, 21, 22, 23]


def test_a_run_directory_shows_its_winner_with_its_score(tmp_path, capsys):
    arch = FunctionalSpace(2, ops=GRAPH_OPS).sample(random.Random(3))
    (tmp_path / "search").mkdir()
    # a graph search that re-ranked its top candidates records which one won, and its score
    (tmp_path / "search" / "best_arch.yaml").write_text(yaml.safe_dump(
        {"val_acc_supernet": 0.7935779816513762, "rerank_rank": 2, "rerank_val_acc": 0.81, **arch.to_dict()},
        sort_keys=False))
    status, out, _ = run(capsys, str(tmp_path))
    assert status == 0 and out.startswith(f"{tmp_path / 'search' / 'best_arch.yaml'}: 2 layers of graph ops")
    # to 4 digits, as the run's log said it (not the file's 0.7935779816513762)
    assert "\nval_acc_supernet: 0.7936\nrerank_rank: 2\nrerank_val_acc: 0.81\n" in out
    assert tuple(layers_from_table(table_rows(out))) == arch.layers


def test_a_retrain_run_directory_shows_the_architecture_it_retrained(tmp_path, capsys):
    """``src.show <src.retrain run dir>`` said "a directory without search/best_arch.yaml": the
    architecture is in its retrain/results.json, with the settings it trained with."""
    arch = FunctionalSpace(2, ops=GRAPH_OPS).sample(random.Random(4))
    (tmp_path / "retrain").mkdir()
    (tmp_path / "retrain" / "results.json").write_text(json.dumps({"arch": arch.to_dict(), "hparams": {"hidden": 16},
                                                                   "test_acc_mean": 0.8}))
    status, out, _ = run(capsys, str(tmp_path))
    assert status == 0 and out.startswith(f"{tmp_path / 'retrain' / 'results.json'}: 2 layers of graph ops"), out
    assert tuple(layers_from_table(table_rows(out))) == arch.layers and "hidden" in out


def test_a_retrain_run_still_training_shows_the_architecture_it_retrains(tmp_path, capsys):
    """Before its results.json exists the run's run_settings.json holds the architecture's content:
    ``src.show`` said "a directory without search/best_arch.yaml (a search's run directory ...)"."""
    arch = FunctionalSpace(2, ops=GRAPH_OPS).sample(random.Random(5))
    (tmp_path / "run_settings.json").write_text(json.dumps({"entry": "retrain", "seed": 0, "architecture":
                                                            arch.to_dict(), "arch_hparams": {"hidden": 32}}))
    status, out, _ = run(capsys, str(tmp_path))
    assert status == 0 and out.startswith(f"{tmp_path / 'run_settings.json'}: 2 layers of graph ops"), out
    assert tuple(layers_from_table(table_rows(out))) == arch.layers and "hidden" in out


def test_a_search_run_not_yet_searched_says_so(tmp_path, capsys):
    """A search stopped in its supernet stage has a run_settings.json and no search/best_arch.yaml:
    ``src.show`` said "run_settings.json: holds no architecture (KeyError); ...", as if the file were
    damaged (the branch for a src.retrain run still training)."""
    (tmp_path / "run_settings.json").write_text(json.dumps({"entry": "search", "seed": 0}))
    # refused at its data stage (a resume with the same command would be refused again): its log says why
    status, out, err = run(capsys, str(tmp_path))
    assert (status, out, err) == (2, "", f"error: {tmp_path}: a `python -m src.search` run that stopped before its "
                                         "first stage (no supernet/ folder); its log (search.log) says why\n")
    (tmp_path / "supernet").mkdir()
    for partial in (False, True):  # stopped in the supernet; stopped in the search (search/state.json)
        if partial:
            (tmp_path / "search").mkdir()
            (tmp_path / "search" / "state.json").write_text("{}")
        status, out, err = run(capsys, str(tmp_path))
        assert status == 2 and out == "" and err.count("\n") == 1, err
        assert err.startswith(f"error: {tmp_path}: a `python -m src.search` run whose search has not finished"), err


def test_a_kept_model_shows_its_architecture_and_evaluation(tmp_path, capsys):
    from src.models.graph import GraphNet
    from src.models.saved import graph_child_spec, save_child, weights_of

    arch = FunctionalSpace(2, ops=GRAPH_OPS).sample(random.Random(5))
    model = GraphNet.child(5, 3, arch, hidden=16, heads=2)
    save_child(tmp_path / "model.pt", weights_of(model), graph_child_spec(arch, 5, 3, hidden=16, heads=2),
               {"step": 7, "val_acc": 0.5, "test_acc": 0.25})
    status, out, _ = run(capsys, str(tmp_path / "model.pt"))
    assert status == 0 and "\nevaluation: step 7, val_acc 0.5, test_acc 0.25\n" in out
    assert tuple(layers_from_table(table_rows(out))) == arch.layers


def test_the_drawing_has_an_edge_per_op(capsys):
    """Every op of the published architecture is one edge of the drawing, from its source node to
    its layer's node, ``zero`` edges dotted; exactly the 19 layers that do not reach the output are
    grey."""
    arch = Architecture.load(ROOT / "src/space/archs/published_sst5.yaml")
    status, out, _ = run(capsys, "published_sst5", "--dot")
    assert status == 0 and out.startswith("digraph architecture {") and out.endswith("}\n")
    edges = re.findall(r'^  x(\d+) -> x(\d+) \[label="[^:]+: (\w+)"(.*)\];$', out, re.M)
    expected = [(src, i + 1, op) for i, layer in enumerate(arch) for _, src, op, _ in layer.edges()]
    assert [(int(a), int(b), op) for a, b, op, _ in edges] == expected
    assert [("dotted" in style) for *_, style in edges] == [op == "zero" for *_, op in expected]
    grey_nodes = re.findall(r'^  x(\d+) \[label="x\d+: \w+", color=grey', out, re.M)
    assert [int(n) - 1 for n in grey_nodes] == [i for i, alive in enumerate(live_layers(arch)) if not alive]
    assert len(grey_nodes) == 19


def test_diff_names_the_layers_that_differ(tmp_path, capsys):
    space = FunctionalSpace(5)
    arch = space.sample(random.Random(0))
    changed = Layer("add", 3, "conv1", 0, "zero") if arch[3] != Layer("add", 3, "conv1", 0, "zero") \
        else Layer("add", 3, "gru", 0, "zero")
    other = Architecture(arch.layers[:3] + (changed,) + arch.layers[4:])
    arch.save(tmp_path / "a.yaml")
    other.save(tmp_path / "b.json")
    status, out, _ = run(capsys, str(tmp_path / "a.yaml"), "--diff", str(tmp_path / "b.json"))
    assert status == 0 and "\n1 of 5 layers differ (layers 3)\n" in out
    (row,) = table_rows(out)
    assert row[0] == "3" and tuple(layers_from_table([row[:5] + ["x"]])) == (arch[3],)
    assert tuple(layers_from_table([[row[0]] + row[5:] + ["x"]])) == (changed,)
    status, out, _ = run(capsys, str(tmp_path / "a.yaml"), "--diff", str(tmp_path / "a.yaml"))
    assert status == 0 and "\n0 of 5 layers differ\n" in out and "| layer |" not in out


BAD_SOURCE = "layers:\n  - {kind: attn, q_src: 0, q_op: identity, k_src: 7, k_op: gru, v_src: 0, v_op: conv1}\n"


@pytest.mark.parametrize("content, args, line", [
    ("layers:\n  - {kind: add, q_src: 0, q_op: conv7, k_src: 0, k_op: zero}\n", ["{f}"],
     "error: {f}: unknown op 'conv7'; text ops are zero, identity, conv1"),
    ("layers:\n  - {kind: add, q_src: 0, q_op: gru, k_src: 0, k_op: gcn}\n", ["{f}"],
     "error: {f}: mixes text ops (gru) and graph ops (gcn)"),
    ("layers:\n  - {kind: add, q_src: 0, q_op: gru, k_src: 0, k_op: zero}\n", ["{f}", "--diff", "published_sst5"],
     "error: {root}/src/space/archs/published_sst5.yaml: 24 layers, {f} has 1; only architectures of the same depth"),
    ("layers: [", ["{f}"], "error: {f}: not valid YAML, line 1"),
    # sources that do not exist: refused as a retrain refuses them (they were drawn, priors "not kept")
    *((BAD_SOURCE, args, "error: {f}: invalid architecture (layer 0, field 'k_src'): source must be a node in 0..0, "
                         "got 7") for args in (["{f}"], ["{f}", "--dot"], ["published_sst5", "--diff", "{f}"])),
    ("", ["{f}.missing"], "error: {f}.missing: no such file and no built-in architecture of that name"),
])
def test_bad_input_is_one_line(tmp_path, capsys, content, args, line):
    path = tmp_path / "arch.yaml"
    path.write_text(content)
    status, out, err = run(capsys, *(a.format(f=path) for a in args))
    assert status == 2 and out == "" and err.startswith(line.format(f=path, root=ROOT)) and err.count("\n") == 1, err


def test_shows_a_file_without_importing_torch():
    code = "import sys; from src.show import main; main(['gat']); assert 'torch' not in sys.modules, 'torch imported'"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith(f"{ROOT / 'src/space/archs/gat.yaml'}: 2 layers"), proc.stderr


def test_the_drawing_greys_the_edges_into_dead_layers_and_quotes_its_title():
    """Protects ``dot``: an edge into a layer that does not reach the output is grey (its node alone
    was checked), and quotes and backslashes in the title are escaped for Graphviz."""
    from src.show import dot

    arch = Architecture.load(ROOT / "src/space/archs/published_sst5.yaml")
    live = live_layers(arch)
    out = dot(arch, 'C:\\runs\\"best"')
    assert '  label="C:\\\\runs\\\\\\"best\\"";' in out.splitlines()
    edges = re.findall(r'^  x\d+ -> x(\d+) \[label="[^"]+"(.*)\];$', out, re.M)
    assert len(edges) == sum(len(list(layer.edges())) for layer in arch)
    assert [("color=grey" in style) for _, style in edges] == [not live[int(i) - 1] for i, _ in edges]
    assert any(not live[int(i) - 1] for i, _ in edges)


def test_an_architecture_of_zero_and_identity_only_is_text_or_graph(tmp_path, capsys):
    """Protects ``family``'s case of an architecture whose ops are all in both op sets."""
    path = tmp_path / "plain.yaml"
    Architecture((Layer("add", 0, "identity", 0, "zero"),)).save(path)
    status, out, _ = run(capsys, str(path))
    assert status == 0 and out.startswith(f"{path}: 1 layers of text or graph ops (0 attn, 1 add); "
                                          "ops used: zero, identity\n"), out


def test_an_unreadable_run_settings_file_is_one_line(tmp_path, capsys):
    """Protects ``_entry``'s handling of a damaged ``run_settings.json`` (not JSON): one error line
    naming the file, not a traceback."""
    (tmp_path / "run_settings.json").write_text("{")
    status, out, err = run(capsys, str(tmp_path))
    assert status == 2 and out == ""
    assert err == f"error: {tmp_path / 'run_settings.json'}: holds no architecture (JSONDecodeError); a search's " \
                  "run directory holds search/best_arch.yaml once its search has finished\n", err


def test_a_directory_with_a_search_folder_but_no_winner_is_not_read_as_a_retrain(tmp_path, capsys):
    """Protects ``load``'s rule that a run directory with a ``search/`` folder is a search's: with no
    ``search/best_arch.yaml`` yet (and a run_settings.json naming no entry) it says the winner is
    missing, rather than reading run_settings.json as a retrain's record."""
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "state.json").write_text("{}")
    (tmp_path / "run_settings.json").write_text(json.dumps({"seed": 0}))
    status, out, err = run(capsys, str(tmp_path))
    assert status == 2 and out == ""
    assert err == (f"error: {tmp_path}: a directory without search/best_arch.yaml (a search's run directory holds "
                   "it once its search has finished)\n"), err

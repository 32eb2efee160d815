"""Search space: validity, sampling, mutation, size, serialisation, the authors' format."""

import json
import random
from pathlib import Path

import pytest
import yaml

from src.space import Architecture, FunctionalSpace, Layer, arch_contexts, from_authors, op_families, to_authors
from src.utils.errors import AutoAttendError, InvalidArchitectureError, SpaceExhaustedError

PUBLISHED = Path(__file__).resolve().parents[1] / "src" / "space" / "archs" / "published_sst5.yaml"


def test_size_matches_design_note():
    # per layer (i + 1) * (5 * 6 + 5 * 5 * 5): about 2e76 for 24 layers
    space = FunctionalSpace(24)
    expected = 1
    for i in range(24):
        expected *= (i + 1) * (5 * 6 + 5 * 5 * 5)
    assert space.size() == expected
    assert 1e76 < space.size() < 3e76


def test_size_counts_every_architecture_of_a_tiny_space():
    for priors in (True, False):
        space = FunctionalSpace(2, ops=("zero", "identity", "conv1") if priors else ("zero", "conv1"), priors=priors)
        rng = random.Random(0)
        seen = {space.sample(rng) for _ in range(60_000)}
        assert len(seen) == space.size()


@pytest.mark.parametrize("priors", [True, False])
def test_samples_are_valid_and_cover_the_choices(priors):
    space = FunctionalSpace(6, priors=priors)
    rng = random.Random(1)
    archs = [space.sample(rng) for _ in range(500)]
    for a in archs:
        space.validate(a)
    last = [a[5] for a in archs]
    assert {l.kind for l in last} == {"add", "attn"}
    assert {l.k_src for l in last} == set(range(6))
    q_ops = {l.q_op for l in last}
    assert ("zero" in q_ops) == (not priors)
    if priors:
        assert all(l.q_src == 5 for l in last)
        assert all(l.v_src == l.k_src for l in last if l.kind == "attn")
    else:
        assert {l.q_src for l in last} == set(range(6))
        assert any(l.v_src != l.k_src for l in last if l.kind == "attn")


@pytest.mark.parametrize("layer, field", [
    (Layer("add", 1, "conv1", 0, "zero"), None),  # valid: zero as addend 2
    (Layer("add", 0, "conv1", 0, "zero"), "q_src"),  # prior 1
    (Layer("add", 1, "zero", 0, "conv1"), "q_op"),  # prior 3
    (Layer("attn", 1, "conv1", 0, "zero", 0, "gru"), "k_op"),  # prior 3
    (Layer("attn", 1, "conv1", 0, "gru", 1, "gru"), "v_src"),  # prior 2
    (Layer("attn", 1, "conv1", 0, "gru", 0, "zero"), "v_op"),  # prior 3 on V too
    (Layer("attn", 1, "conv1", 2, "gru", 2, "gru"), "k_src"),  # future node
    (Layer("attn", 1, "conv1", -1, "gru", -1, "gru"), "k_src"),  # no node before the stem
    (Layer("add", 1, "conv99", 0, "gru"), "q_op"),  # unknown op (not conv5: docs/extending.md adds that one)
    (Layer("add", 1, "conv1", 0, "gru", 0, "gru"), "v_op"),  # add layers have no V
    (Layer("mix", 1, "conv1", 0, "gru"), "kind"),
])
def test_validate_names_layer_and_field(layer, field):
    space = FunctionalSpace(2)
    arch = Architecture((Layer("add", 0, "conv3", 0, "identity"), layer))
    if field is None:
        space.validate(arch)
        return
    with pytest.raises(InvalidArchitectureError) as err:
        space.validate(arch)
    assert err.value.layer == 1 and err.value.field == field
    assert "layer 1" in str(err.value) and field in str(err.value)


def test_validate_checks_layer_count_kinds_and_op_set():
    arch = Architecture((Layer("add", 0, "conv3", 0, "identity"), Layer("attn", 1, "conv1", 0, "gru", 0, "gru")))
    with pytest.raises(InvalidArchitectureError, match="expected 3 layers, got 2") as err:
        FunctionalSpace(3).validate(arch)
    assert err.value.field == "layers"
    with pytest.raises(InvalidArchitectureError) as err:
        FunctionalSpace(2, kinds=("add",)).validate(arch)  # an add-only space has no attn layer
    assert err.value.layer == 1 and err.value.field == "kind"
    no_zero = FunctionalSpace(2, ops=("identity", "conv3", "conv1", "gru"), priors=False)
    no_zero.validate(arch)
    with pytest.raises(InvalidArchitectureError) as err:  # zero is an op like any other: not in this op set
        no_zero.validate(Architecture((Layer("add", 0, "conv3", 0, "zero"), arch[1])))
    assert err.value.layer == 0 and err.value.field == "k_op"


@pytest.mark.parametrize("kwargs", [dict(num_layers=0), dict(num_layers=2, kinds=()), dict(num_layers=2, kinds=("mix",))])
def test_space_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        FunctionalSpace(**kwargs)


def test_sample_distinct_is_distinct_honours_exclude_and_fails_when_the_space_runs_out():
    space = FunctionalSpace(1, ops=("zero", "identity", "conv1"), kinds=("add",))  # 2 x 3 = 6 architectures
    assert space.size() == 6
    every = space.sample_distinct(6, random.Random(0))
    assert len(set(every)) == 6
    rest = space.sample_distinct(4, random.Random(1), exclude=set(every[:2]))
    assert set(rest) == set(every[2:])
    with pytest.raises(SpaceExhaustedError, match=r"could not draw 5 new distinct .* holds 6 \(2 excluded\)"):
        space.sample_distinct(5, random.Random(2), exclude=set(every[:2]))  # at once, not after 50,000 draws
    outside = Architecture((Layer("add", 0, "gru", 0, "zero"),))  # not of this space: excludes nothing from it
    assert set(space.sample_distinct(4, random.Random(3), exclude={*every[:2], outside})) == set(every[2:])


def test_sample_distinct_leaves_the_callers_exclude_set_as_it_was_and_tries_per_candidate():
    """``exclude`` is the caller's (the strategies pass their scored candidates): the draws are not
    added to it. ``max_tries`` bounds the draws per candidate asked for, not the whole call."""
    space = FunctionalSpace(1, ops=("zero", "identity", "conv1"), kinds=("add",))
    exclude = set(space.sample_distinct(2, random.Random(0)))
    before = set(exclude)
    drawn = space.sample_distinct(3, random.Random(1), exclude=exclude)
    assert exclude == before and not set(drawn) & before
    # five candidates of a 1e16-architecture space at one try each: five draws, each new
    assert len(set(FunctionalSpace(6).sample_distinct(5, random.Random(0), max_tries=1))) == 5


@pytest.mark.parametrize("priors", [True, False])
def test_mutation_redraws_every_source_decision(priors):
    # one kind, so no kind flip re-samples a layer: every change below comes from a per-decision redraw
    space = FunctionalSpace(3, priors=priors, kinds=("attn",))
    parent = Architecture((Layer("attn", 0, "conv1", 0, "conv1", 0, "conv1"),
                           Layer("attn", 1, "conv1", 0, "conv1", 0, "conv1"),
                           Layer("attn", 2, "conv1", 0, "conv1", 0, "conv1")))
    rng = random.Random(6)
    last = []
    for _ in range(300):
        child = space.mutate(parent, rng, rate=0.3)
        space.validate(child)
        assert child != parent and all(l.kind == "attn" for l in child)
        last.append(child[2])
    assert {l.k_src for l in last} == {0, 1, 2}
    if priors:
        assert {l.q_src for l in last} == {2} and all(l.v_src == l.k_src for l in last)
    else:
        assert {l.q_src for l in last} == {0, 1, 2} and {l.v_src for l in last} == {0, 1, 2}
        assert any(l.v_src != l.k_src for l in last)


def test_priors_off_accepts_what_priors_reject():
    arch = Architecture((Layer("add", 0, "zero", 0, "conv1"), Layer("attn", 0, "zero", 1, "gru", 0, "zero")))
    FunctionalSpace(2, priors=False).validate(arch)
    assert not FunctionalSpace(2, priors=True).is_valid(arch)


def test_mutation_rate_and_kind_flip():
    space = FunctionalSpace(24)
    rng = random.Random(2)
    parent = space.sample(rng)
    changed_layers, flips = [], 0
    for _ in range(300):
        child = space.mutate(parent, rng, rate=0.05)
        space.validate(child)
        assert child != parent
        diff = [i for i in range(24) if child[i] != parent[i]]
        changed_layers.append(len(diff))
        flips += sum(child[i].kind != parent[i].kind for i in diff)
    # ~5 decisions per layer at rate 0.05: most children change only a few layers
    assert 1 <= sum(changed_layers) / len(changed_layers) < 6
    assert flips > 0


def test_mutation_at_rate_one_redraws_every_layer_kind():
    space = FunctionalSpace(5)
    rng = random.Random(3)
    parent = space.sample(rng)
    child = space.mutate(parent, rng, rate=1.0)
    assert all(c.kind != p.kind for c, p in zip(child, parent))


def test_yaml_and_json_round_trip():
    space = FunctionalSpace(8, priors=False)
    rng = random.Random(4)
    for _ in range(20):
        a = space.sample(rng)
        assert Architecture.from_yaml(a.to_yaml()) == a
        assert Architecture.from_json(a.to_json()) == a
        assert hash(Architecture.from_json(a.to_json())) == hash(a)


def test_save_and_load(tmp_path):
    a = FunctionalSpace(4).sample(random.Random(5))
    a.save(tmp_path / "a.yaml")
    a.save(tmp_path / "a.json")
    assert Architecture.load(tmp_path / "a.yaml") == a
    assert Architecture.load(tmp_path / "a.json") == a
    json.loads((tmp_path / "a.json").read_text())


@pytest.mark.parametrize("text, field", [
    ("layers: [{kind: add, q_src: 0, q_op: conv1}]", "k_src"),
    ("layers: [{kind: add, q_src: true, q_op: conv1, k_src: 0, k_op: gru}]", "q_src"),  # a bool is no node index
    ("layers: [{kind: add, q_src: 0, q_op: conv1, k_src: 0, k_op: 3}]", "k_op"),
    ("layers: [{kind: add, q_src: 0, q_op: conv1, k_src: 0, k_op: gru, v_op: gru}]", "v_op"),
    ("layers: [{kind: add, q_src: zero, q_op: conv1, k_src: 0, k_op: gru}]", "q_src"),
    ("layers: [{kind: add, q_src: 0, q_op: conv1, k_src: 0, k_op: gru, colour: red}]", "colour"),
    ("layers: [{kind: sum, q_src: 0, q_op: conv1, k_src: 0, k_op: gru}]", "kind"),
    ("layers: [{kind: attn, q_src: 0, q_op: conv1, k_src: 0, k_op: gru}]", "v_src"),  # an attn layer has a V
    ("layers: [{kind: attn, q_src: 0, q_op: conv1, k_src: 0, k_op: gru, v_src: 0}]", "v_op"),
])
def test_malformed_files_name_layer_and_field(text, field):
    with pytest.raises(InvalidArchitectureError, match=f"layer 0.*{field}"):
        Architecture.from_yaml(text, source="x.yaml")


def test_a_layer_that_is_no_mapping_names_the_keys_and_the_authors_rows():
    """``layers: [[1, 0, 2, 3, 0]]`` said only "expected a mapping": the keys a layer needs, and
    that the authors' rows go at the top level (or under ``arch:``), are named now."""
    with pytest.raises(InvalidArchitectureError) as err:
        Architecture.from_yaml("layers: [[1, 0, 2, 3, 0]]", source="x.yaml")
    assert "layer 0" in str(err.value) and "kind, q_src, q_op, k_src, k_op" in str(err.value)
    assert "the authors' format: give it as the top-level list or under arch:" in str(err.value)
    assert Architecture.from_yaml("arch: [[1, 0, 2, 3, 0]]") == Architecture.from_yaml("[[1, 0, 2, 3, 0]]")
    with pytest.raises(InvalidArchitectureError) as err:
        Architecture.from_yaml("layers: [add]", source="x.yaml")
    assert "got 'add'" in str(err.value) and "authors' format" not in str(err.value)


@pytest.mark.parametrize("text", ["layers: []", "layers: {kind: add}", "[]", "kind: add"])
def test_files_without_a_layer_list_are_rejected(text):
    with pytest.raises(InvalidArchitectureError, match="x.yaml|empty"):
        Architecture.from_yaml(text, source="x.yaml")


def test_published_sst5_import():
    rows = yaml.safe_load(PUBLISHED.read_text())["arch"]
    arch = from_authors(rows)
    assert len(arch) == 24
    assert arch[0] == Layer("add", 0, "maxpool3", 0, "identity")
    assert arch[2] == Layer("attn", 2, "identity", 0, "conv3", 0, "identity")
    assert arch[5] == Layer("attn", 5, "conv1", 5, "identity", 5, "conv3")
    assert to_authors(arch) == rows
    assert Architecture.load(PUBLISHED) == arch
    # it uses `zero` as Q / addend 1, which prior 3 forbids, but keeps priors 1 and 2
    FunctionalSpace(24, priors=False).validate(arch)
    with pytest.raises(InvalidArchitectureError, match="prior 3"):
        FunctionalSpace(24, priors=True).validate(arch)


def test_authors_format_errors():
    with pytest.raises(InvalidArchitectureError, match="layer 1.*o2"):
        from_authors([[1, 0, 2, -1, 0], [1, 0, 9, -1, 0]])
    with pytest.raises(InvalidArchitectureError, match="layer 0.*kind"):
        from_authors([[1, 0, 2, -1, 3]])
    with pytest.raises(InvalidArchitectureError, match="layer 0.*o1"):
        from_authors([[6, 0, 2, -1, 0]])  # one past the last op index
    with pytest.raises(InvalidArchitectureError, match="layer 0.*o3"):
        from_authors([[1, 0, 2, 6, 1]])  # o3 is checked in attn layers
    from_authors([[1, 0, 2, 9, 0]])  # ... and ignored in add layers
    with pytest.raises(InvalidArchitectureError, match="layer 0"):
        from_authors([[1, 0, 2, -1]])
    with pytest.raises(InvalidArchitectureError, match="layer 0"):
        from_authors([[1, 0, 2, -1, 0, 0]])
    for row in ([1, 0, "2", -1, 0], [1.0, 0, 2, -1, 0]):  # indices only: not a TypeError from the op lookup
        with pytest.raises(InvalidArchitectureError, match=r"layer 0.*expected \[o1, prev, o2, o3, kind\] integers"):
            from_authors([row])


@pytest.mark.parametrize("layer", [Layer("add", 0, "conv1", 1, "zero"),  # q_src is not the preceding node
                                   Layer("attn", 1, "conv1", 0, "gru", 1, "gru")])  # v_src != k_src
def test_authors_export_refuses_architectures_outside_its_priors(layer):
    arch = Architecture((Layer("add", 0, "conv3", 0, "identity"), layer))
    with pytest.raises(InvalidArchitectureError, match="layer 1"):
        to_authors(arch)


@pytest.mark.parametrize("kwargs, message", [
    ({"num_layers": "3"}, "num_layers must be an integer >= 1, got '3'"),
    ({"num_layers": True}, "num_layers must be an integer >= 1"),
    ({"num_layers": 2, "ops": "conv1"}, "ops must be distinct names"),  # five ops of one letter each
    ({"num_layers": 2, "ops": ()}, "ops must be distinct names"),
    ({"num_layers": 2, "ops": ("conv1", "conv1")}, "ops must be distinct names"),
    ({"num_layers": 2, "ops": ("conv1", "bogus")}, "ops must be distinct names"),
    ({"num_layers": 2, "kinds": ("add", "add")}, "kinds must be distinct names"),  # mutate raised StopIteration
    ({"num_layers": 2, "ops": ("zero",)}, "the priors need an op other than 'zero'"),  # IndexError at sample
])
def test_a_space_of_bad_arguments_is_refused_when_built(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FunctionalSpace(**kwargs)
    FunctionalSpace(2, ops=("zero",), priors=False)  # without the priors zero may stand anywhere


def test_validate_checks_types_not_only_values():
    """``q_src="0"`` raised a TypeError from a comparison, ``False`` and ``0.0`` passed as node 0 (and
    broke the YAML round trip and the models), a list of layers was unhashable, a string gave an
    AttributeError."""
    space = FunctionalSpace(1, priors=False)
    for src in ("0", False, 0.0, None):
        arch = Architecture((Layer("add", src, "conv1", 0, "zero"),))
        with pytest.raises(InvalidArchitectureError, match=r"layer 0, field 'q_src'\): source must be a node in 0..0"):
            space.validate(arch)
        assert not space.is_valid(arch)
    with pytest.raises(InvalidArchitectureError, match="expected an Architecture, got str"):
        space.validate("abc")
    listed = Architecture([Layer("add", 0, "conv1", 0, "zero")])
    assert hash(listed) == hash(Architecture((Layer("add", 0, "conv1", 0, "zero"),))) and space.is_valid(listed)
    with pytest.raises(InvalidArchitectureError, match="expected Layer objects, got dict"):
        Architecture(({"kind": "add"},))


def test_reading_and_exporting_errors_are_one_clear_line():
    """``from_json`` on bad JSON raised a JSONDecodeError (``from_yaml`` a one-line error); ``to_authors``
    of a graph architecture a bare "tuple.index(x): x not in tuple"; a message without a file
    said "architecture" twice."""
    with pytest.raises(AutoAttendError, match=r"^arch.json: not valid JSON \(Expecting"):
        Architecture.from_json("{bad", source="arch.json")
    with pytest.raises(InvalidArchitectureError, match="op 'gcn' has no number in the authors' format"):
        to_authors(Architecture((Layer("add", 0, "gcn", 0, "zero"),)))
    with pytest.raises(InvalidArchitectureError) as err:
        Architecture.from_dict({"layers": [{"kind": "add"}]})
    assert str(err.value) == "invalid architecture (layer 0, field 'q_src'): missing"


LONG = "x" * 100_000


@pytest.mark.parametrize("bad", [
    lambda: Architecture.from_dict({"layers": [{"kind": LONG}]}),
    lambda: Architecture.from_dict({"layers": [[LONG]]}),
    lambda: Architecture.from_dict({"layers": [{"kind": "add", "q_src": LONG, "q_op": "c", "k_src": 0, "k_op": "c"}]}),
    lambda: Architecture.from_dict({"layers": [{"kind": "add", "q_src": 0, "q_op": list(range(10 ** 5)), "k_src": 0,
                                                "k_op": "c"}]}),
    lambda: from_authors([[0, 0, 0, 0, LONG]]),
    lambda: FunctionalSpace(num_layers=1).validate(Architecture((Layer(LONG, 0, "conv1", 0, "zero"),))),
    lambda: FunctionalSpace(num_layers=1).validate(Architecture((Layer("add", 10 ** 5000, "conv1", 0, "zero"),))),
    lambda: FunctionalSpace(num_layers=1).validate(Architecture((Layer("add", 0, LONG, 0, "zero"),))),
    lambda: arch_contexts(Architecture((Layer("add", -10 ** 5000, "conv1", 0, "zero"),))),
])
def test_a_bad_value_is_quoted_cut_short(bad):
    """An error quotes a bad value of an architecture (a layer, a kind, a source, an op) to some 60 characters or 8
    items: a 100,000-character string, a 5,000-digit number or a 100,000-item list in a file made a line as long."""
    with pytest.raises(InvalidArchitectureError) as err:
        bad()
    assert len(str(err.value)) < 350, len(str(err.value))
    assert any(cut in str(err.value) for cut in ("...", "an integer of some 5000 digits")), str(err.value)


@pytest.mark.parametrize("content, rest", [
    ("layers:\n  - {kind: atn, q_src: 0, q_op: conv1, k_src: 0, k_op: zero}\n",
     "invalid architecture (layer 0, field 'kind'): expected one of ('add', 'attn'), got 'atn'"),
    ("layers:\n  - {kind: add, q_src: 0, q_op: conv1, k_src: 0, k_op: zero, extra: 3}\n",
     "invalid architecture (layer 0, field 'extra'): unknown key; a layer's keys are kind, q_src, q_op, k_src, "
     "k_op (attn: also v_src, v_op)"),
    ('layers:\n  - {kind: add, q_src: "0", q_op: conv1, k_src: 0, k_op: zero}\n',
     "invalid architecture (layer 0, field 'q_src'): expected an integer node index, got '0'"),
    ("just text\n", "invalid architecture: expected a mapping with a 'layers' list"),
    ("- {arch: {layers: []}}\n- {arch: {layers: []}}\n", "invalid architecture: a list of 2 candidates"),
])
def test_an_architecture_file_error_names_the_file_first(tmp_path, content, rest):
    """A malformed file said "invalid architecture (layer 0, field 'kind'): /path/a.yaml: expected ...",
    the file in the middle, where every other error (an unknown op, a source out of range, the
    authors' format) starts with it: "/path/a.yaml: invalid architecture (layer 0, ...): ..."."""
    path = tmp_path / "a.yaml"
    path.write_text(content)
    with pytest.raises(AutoAttendError) as err:
        Architecture.load(path)
    assert str(err.value).startswith(f"{path}: {rest}"), str(err.value)


def test_mutate_refuses_a_parent_outside_the_space_and_a_rate_that_changes_nothing():
    """An invalid parent gave an invalid child (the decisions not re-drawn are kept); rate 0 spun
    10,000 draws, then a RuntimeError."""
    space = FunctionalSpace(2)
    outside = Architecture((Layer("add", 0, "conv1", 0, "zero"), Layer("add", 0, "conv1", 1, "zero")))  # prior 1
    with pytest.raises(InvalidArchitectureError, match="prior 1"):
        space.mutate(outside, random.Random(0))
    with pytest.raises(ValueError, match=r"rate must be in \(0, 1\], got 0"):
        space.mutate(space.sample(random.Random(0)), random.Random(0), rate=0)


@pytest.mark.parametrize("ops, families", [
    (("zero", "identity"), ["text", "graph"]),  # the ops both families have
    (("conv1", "identity"), ["text"]),
    (("gat8", "zero"), ["graph"]),
    (("conv1", "gcn"), []),  # a mix
    (("conv7", "identity"), []),  # unknown
])
def test_op_families_name_the_op_sets_holding_every_op(ops, families):
    arch = Architecture((Layer("add", 0, ops[0], 0, ops[1]),))
    assert op_families(arch) == families


def test_an_attn_layers_v_op_counts_among_the_architectures_ops():
    arch = Architecture((Layer("attn", 0, "conv1", 0, "identity", 0, "gcn"),))
    assert arch.ops() == {"conv1", "identity", "gcn"}
    assert op_families(arch) == []  # a graph op in V makes a text architecture a mix


@pytest.mark.parametrize("priors", [True, False])
def test_contexts_are_exactly_those_the_spaces_architectures_apply_ops_in(priors):
    """The supernet builds a module per context of :meth:`FunctionalSpace.contexts`: one missing
    (V from the preceding node, say) left some architectures without a module, one too many was
    never trained."""
    space = FunctionalSpace(3, ops=("zero", "identity", "conv1"), priors=priors)
    rng = random.Random(0)
    applied = {ctx for _ in range(3000) for _, _, ctx in arch_contexts(space.sample(rng))}
    assert set(space.contexts()) == applied


def test_read_gives_the_architecture_and_what_the_file_records_beside_it(tmp_path):
    arch = Architecture((Layer("add", 0, "conv1", 0, "identity"),))
    path = tmp_path / "best_arch.yaml"
    path.write_text(yaml.safe_dump({"arch": arch.to_dict(), "val_acc_supernet": 0.5}))
    read, data = Architecture.read(path)
    assert read == arch == Architecture.load(path)
    assert data == {"arch": arch.to_dict(), "val_acc_supernet": 0.5}
    # a file in our format keeps its layers even when it also records an `arch` entry (a name, say)
    path.write_text(yaml.safe_dump({"arch": "published_sst5", **arch.to_dict()}))
    assert Architecture.load(path) == arch
    path.write_text("arch: {layers: [")
    with pytest.raises(AutoAttendError, match=rf"^{path}: not valid YAML, line 1"):
        Architecture.read(path)


@pytest.mark.parametrize("priors", [True, False])
def test_last_layer_ops_keep_an_op_out_of_the_last_layer_alone(priors):
    """``last_layer_ops`` (a graph child reading out with its last layer cannot put ``identity``
    there): sampling, mutation, validity, size and contexts all leave the op out of the last layer
    and keep it in the others."""
    ops = ("zero", "identity", "conv1")
    space = FunctionalSpace(3, ops=ops, priors=priors, last_layer_ops=("zero", "conv1"))
    assert space.last_layer_ops == ("zero", "conv1") and "last_layer_ops=('zero', 'conv1')" in repr(space)
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(3000)]
    assert all("identity" not in (a[2].q_op, a[2].k_op, a[2].v_op) for a in archs)
    assert any("identity" in (a[1].q_op, a[1].k_op, a[1].v_op) for a in archs)
    children = [space.mutate(a, rng, rate=0.5) for a in archs[:500]]
    assert all("identity" not in (c[2].q_op, c[2].k_op, c[2].v_op) for c in children)
    assert any("identity" in (c[1].q_op, c[1].k_op, c[1].v_op) for c in children)
    bad = archs[0].layers[:2] + (Layer("add", 2, "identity", 0, "conv1"),)
    with pytest.raises(InvalidArchitectureError, match="op 'identity' is not allowed in the last layer") as err:
        space.validate(Architecture(bad))
    assert (err.value.layer, err.value.field) == (2, "q_op")
    FunctionalSpace(3, ops=ops, priors=priors).validate(Architecture(bad))  # the same layer without the restriction
    small = FunctionalSpace(2, ops=ops, priors=priors, last_layer_ops=("zero", "conv1"))
    assert len({small.sample(rng) for _ in range(60_000)}) == small.size() < FunctionalSpace(2, ops, priors).size()
    applied = {ctx for a in archs for _, _, ctx in arch_contexts(a)}
    assert set(space.contexts()) == applied and not any(c.layer == 2 and c.op == "identity" for c in applied)


def test_all_ops_in_the_last_layer_is_the_plain_space_draw_for_draw():
    """``last_layer_ops`` naming every op is the space without it: the same samples and children
    from the same seed (a search with it reproduces the runs recorded without it)."""
    plain, same = FunctionalSpace(4), FunctionalSpace(4, last_layer_ops=("gru", "conv3", "identity", "maxpool3",
                                                                         "conv1", "zero"))
    assert same.last_layer_ops == plain.ops and repr(same) == repr(plain)
    a, b = random.Random(3), random.Random(3)
    for _ in range(200):
        x, y = plain.sample(a), same.sample(b)
        assert x == y and plain.mutate(x, a) == same.mutate(y, b)
    assert plain.size() == same.size()


@pytest.mark.parametrize("last, message", [
    (("gcn",), "last_layer_ops must be some of ops"),
    ("conv1", "last_layer_ops must be some of ops"),
    ((), "last_layer_ops must be some of ops"),
    (("zero",), "the priors need an op other than 'zero'"),
])
def test_last_layer_ops_outside_the_ops_or_leaving_no_op_are_refused(last, message):
    with pytest.raises(ValueError, match=message):
        FunctionalSpace(2, last_layer_ops=last)
    if last == ("zero",):
        FunctionalSpace(2, priors=False, last_layer_ops=last)  # without the priors zero is an op

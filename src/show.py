"""Show an architecture: a table of its layers, whether it keeps the design priors, which layers
reach the output, and (``--dot``) a Graphviz drawing; ``--diff`` compares it with another.

    python -m src.show outputs/sst2/search/2026-12-03_10-00-00       # a search's winner
    python -m src.show published_sst5                                  # a built-in architecture
    python -m src.show retrain/seed_0/model.pt                         # the architecture of a kept model
    python -m src.show gat --dot | dot -Tsvg > gat.svg                 # a drawing (Graphviz)
    python -m src.show RUN_A --diff RUN_B                              # the layers two winners differ in

The architecture is named as ``arch=`` names it (a YAML/JSON file, in this project's format or the
authors' ``[o1, prev, o2, o3, kind]`` rows; a search's run directory or ``search/`` folder, whose
``best_arch.yaml`` is read; a built-in name), by a ``src.retrain`` run directory (its
``retrain/results.json``), or by a kept model file (``model.pt``). Whether it is
a text or a graph architecture follows from its ops. Exit status 0, or 2 on bad input. Writes
nothing but to stdout; reads no data and imports torch only for a model file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from src.space import GRAPH_OPS, OP_FAMILIES, TEXT_OPS, Architecture, FunctionalSpace, Layer, live_layers, op_families
from src.utils.errors import AutoAttendError, InvalidArchitectureError

# what a search's best_arch.yaml and a baseline's file record beside the layers, shown as they are
RECORDED_KEYS = ("val_acc_supernet", "rerank_rank", "rerank_val_acc", "hparams")


def _recorded_arch(path: Path, key: str, unreadable: str, hint: str = "") -> tuple[dict[str, Any], Architecture]:
    """A run's JSON record and the architecture under its ``key``, or one error line saying why not."""
    try:
        record = json.loads(path.read_text())
        return record, Architecture.from_dict(record[key], source=str(path))
    except (ValueError, KeyError, TypeError) as exc:
        raise AutoAttendError(f"{path}: {unreadable} ({type(exc).__name__}){hint}") from None


def _entry(settings_file: Path) -> str | None:
    """The entry point a run directory's ``run_settings.json`` names, or ``None`` (no such file, or
    unreadable: the callers say why)."""
    try:
        record = json.loads(settings_file.read_text())
    except (OSError, ValueError):
        return None
    return record.get("entry") if isinstance(record, dict) else None


def load(spec: str) -> tuple[Architecture, Path, dict[str, Any]]:
    """The architecture ``spec`` names, the file it was read from and what that file records
    beside the layers (:data:`RECORDED_KEYS`; the evaluation of a model file)."""
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".pt":
        from src.models.saved import read_saved

        record = read_saved(path)
        arch = Architecture.from_dict(record["spec"]["architecture"], source=str(path))
        return arch, path, {"evaluation": dict(record.get("evaluation", {}))}
    retrained = path / "retrain" / "results.json"
    if path.is_dir() and not (path / "search" / "best_arch.yaml").is_file() and retrained.is_file():
        # a src.retrain run: its architecture and settings are in its results
        record, arch = _recorded_arch(retrained, "arch", "unreadable as a retrain's results")
        return arch, retrained, {k: record[k] for k in RECORDED_KEYS if k in record}
    settings_file = path / "run_settings.json"
    if path.is_dir() and not (path / "search" / "best_arch.yaml").is_file() and _entry(settings_file) == "search":
        if not (path / "supernet").exists():  # refused or stopped before its first stage: a resume would be too
            raise AutoAttendError(f"{path}: a `python -m src.search` run that stopped before its first stage "
                                  "(no supernet/ folder); its log (search.log) says why")
        raise AutoAttendError(f"{path}: a `python -m src.search` run whose search has not finished (no "
                              "search/best_arch.yaml yet); resume it with the same command and hydra.run.dir")
    if path.is_dir() and not (path / "search").is_dir() and settings_file.is_file():
        # a src.retrain run still training: its record of settings holds the architecture's content
        settings, arch = _recorded_arch(settings_file, "architecture", "holds no architecture",
                                        "; a search's run directory holds search/best_arch.yaml once its search "
                                        "has finished")
        hparams = settings.get("arch_hparams")
        return arch, settings_file, {} if hparams is None else {"hparams": hparams}
    from src.pipeline.config import arch_file

    path = arch_file(spec, key=None)  # a command argument, not the arch= setting
    arch, data = Architecture.read(path)
    extras = {k: data[k] for k in RECORDED_KEYS if k in data} if isinstance(data, dict) else {}
    return arch, path, extras


def family(arch: Architecture, source: Path) -> tuple[str, tuple[str, ...]]:
    """``("text", TEXT_OPS)`` or ``("graph", GRAPH_OPS)``: the op set holding every op of ``arch``,
    which must be one a retrain accepts (sources that exist, fields its kinds need): the priors are
    the only rules that may be broken, and :func:`priors_verdict` reports them."""
    families = op_families(arch)
    if len(families) == 2:
        return _well_formed(arch, source, "text or graph", TEXT_OPS)  # zero/identity only: same priors either way
    if families:
        return _well_formed(arch, source, families[0], OP_FAMILIES[families[0]])
    ops = arch.ops()
    unknown = sorted(ops - set(TEXT_OPS) - set(GRAPH_OPS))
    if unknown:
        raise AutoAttendError(f"{source}: unknown op {unknown[0]!r}; text ops are {', '.join(TEXT_OPS)}, "
                              f"graph ops {', '.join(GRAPH_OPS)}")
    raise AutoAttendError(f"{source}: mixes text ops ({', '.join(sorted(ops - set(GRAPH_OPS)))}) and graph ops "
                          f"({', '.join(sorted(ops - set(TEXT_OPS)))})")


def _well_formed(arch: Architecture, source: Path, name: str, ops: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    try:
        FunctionalSpace(len(arch), ops=ops, priors=False).validate(arch)
    except InvalidArchitectureError as exc:
        raise AutoAttendError(f"{source}: {exc}") from None
    return name, ops


def priors_verdict(arch: Architecture, ops: tuple[str, ...]) -> str:
    """``"kept"``, or the first rule ``arch`` breaks (the search samples only architectures that keep
    them; a retrain accepts any)."""
    try:
        FunctionalSpace(len(arch), ops=ops, priors=True).validate(arch)
    except InvalidArchitectureError as exc:
        rule = str(exc).split(": ", 1)[1]  # the message after "invalid architecture (layer i, field f)"
        return f"not kept; the first rule broken: layer {exc.layer}, field '{exc.field}': {rule}"
    return "kept"


def _applied(op: str, src: int | None) -> str:
    return "-" if op is None else f"{op}(x{src})"


def _cells(layer: Layer) -> list[str]:
    return [layer.kind, _applied(layer.q_op, layer.q_src), _applied(layer.k_op, layer.k_src),
            _applied(layer.v_op, layer.v_src)]


def _ranges(numbers: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"``."""
    parts, start = [], None
    for i, n in enumerate(numbers):
        start = n if start is None else start
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            parts.append(f"{start}" if start == n else f"{start}-{n}")
            start = None
    return ", ".join(parts)


def _number(value: Any) -> Any:
    """A float to 4 significant digits; anything else as it is."""
    return f"{value:.4g}" if isinstance(value, float) else value


def describe(arch: Architecture, source: Path, extras: dict[str, Any]) -> str:
    """The header lines and the Markdown table of ``arch`` (layer ``i`` writes node ``x{i+1}``;
    ``x0`` is the stem's output, the last node the model's)."""
    name, ops = family(arch, source)
    kinds = [layer.kind for layer in arch]
    live = live_layers(arch)
    dead = [i for i, alive in enumerate(live) if not alive]
    used = sorted(arch.ops(), key=ops.index)
    lines = [f"{source}: {len(arch)} layers of {name} ops ({kinds.count('attn')} attn, {kinds.count('add')} add); "
             f"ops used: {', '.join(used)}",
             f"design priors: {priors_verdict(arch, ops)}",
             f"layers reaching the output: {sum(live)} of {len(arch)}"
             + (f" (not computed: {_ranges(dead)})" if dead else "")]
    for key, value in extras.items():
        # to 4 significant digits (0.7936), not as the file holds it (0.7935779816513762)
        shown = (", ".join(f"{k} {_number(v)}" for k, v in value.items()) if isinstance(value, dict)
                 else _number(value))
        lines.append(f"{key}: {shown}")
    lines += ["", "| layer | kind | Q / addend 1 | K / addend 2 | V | reaches output |",
              "| --- | --- | --- | --- | --- | --- |"]
    for i, layer in enumerate(arch):
        lines.append(f"| {i} | " + " | ".join(_cells(layer)) + f" | {'yes' if live[i] else 'no'} |")
    return "\n".join(lines) + "\n"


def dot(arch: Architecture, title: str) -> str:
    """Graphviz DOT: a node per ``x_i``, an edge per op labelled ``<slot>: <op>``; ``zero`` edges
    dotted, layers that do not reach the output grey and dashed."""
    live = live_layers(arch)
    quoted = title.replace("\\", "\\\\").replace('"', '\\"')
    lines = ["digraph architecture {", f'  label="{quoted}";', "  rankdir=TB;",
             "  node [shape=box, style=rounded];", '  x0 [label="x0: stem"];']
    for i, layer in enumerate(arch):
        style = "" if live[i] else ", color=grey, fontcolor=grey, style=\"rounded,dashed\""
        lines.append(f'  x{i + 1} [label="x{i + 1}: {layer.kind}"{style}];')
    for i, layer in enumerate(arch):
        slots = {"q": "addend 1", "k": "addend 2"} if layer.kind == "add" else {"q": "Q", "k": "K", "v": "V"}
        for slot, src, op, _ in layer.edges():
            style = ", style=dotted" if op == "zero" else ""
            style += "" if live[i] else ", color=grey, fontcolor=grey"
            lines.append(f'  x{src} -> x{i + 1} [label="{slots[slot]}: {op}"{style}];')
    return "\n".join(lines + ["}"]) + "\n"


def diff(arch: Architecture, other: Architecture, names: tuple[str, str]) -> str:
    """The layers in which two architectures of the same depth differ, side by side."""
    if len(arch) != len(other):
        raise AutoAttendError(f"{names[1]}: {len(other)} layers, {names[0]} has {len(arch)}; only architectures "
                              "of the same depth compare layer by layer")
    differ = [i for i in range(len(arch)) if arch[i] != other[i]]
    lines = [f"{len(differ)} of {len(arch)} layers differ" + (f" (layers {_ranges(differ)})" if differ else "")]
    if differ:
        lines += ["", "| layer | A: kind | A: Q / addend 1 | A: K / addend 2 | A: V "
                      "| B: kind | B: Q / addend 1 | B: K / addend 2 | B: V |",
                  "| --- " * 9 + "|"]
        lines += [f"| {i} | " + " | ".join(_cells(arch[i]) + _cells(other[i])) + " |" for i in differ]
    return f"A: {names[0]}\nB: {names[1]}\n" + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.show", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="examples:\n" + "\n".join(__doc__.split("\n\n")[1].splitlines()))
    parser.add_argument("arch", help="an architecture file, a search's run directory, a built-in name, or a model.pt")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--dot", action="store_true", help="print a Graphviz drawing instead of the table")
    shown.add_argument("--diff", metavar="OTHER", help="print the layers in which OTHER (named the same ways) differs")
    args = parser.parse_args(argv)
    try:
        arch, path, extras = load(args.arch)
        if args.diff is not None:
            other, other_path, _ = load(args.diff)
            family(arch, path)  # both well-formed before they are compared
            family(other, other_path)
            text = diff(arch, other, (str(path), str(other_path)))
        elif args.dot:
            family(arch, path)
            text = dot(arch, str(path))
        else:
            text = describe(arch, path, extras)
    except AutoAttendError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(text, end="")
    return 0


if __name__ == "__main__":
    from src.utils.errors import exit_status_of
    from src.utils.restart import entry_point_utf8

    entry_point_utf8()
    sys.exit(exit_status_of(main))

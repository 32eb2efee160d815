"""Re-evaluate a run's retrained models and check them against its recorded numbers.

    python -m src.evaluate outputs/sst2/search/2026-12-03_10-00-00
    python -m src.evaluate RUN_DIR paths.data_dir=/data hardware.threads=1

For every ``retrain/seed_<s>/model.pt`` of a text run (``src.search`` or ``src.retrain``), the
saved weights (those of the seed's selected evaluation, ``src/models/saved.py``) are loaded, the
run's data is rebuilt from its ``.hydra/config.yaml`` (the same vocabulary and splits; ``key=value``
arguments override that config, e.g. where the data now lies), and the validation and test accuracy
are computed again and printed beside those in ``retrain/seed_<s>.json``. Exit status 0 when every
seed reproduces its record, 1 when one does not, 2 on bad input. Writes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from src.utils.errors import AutoAttendError

TOLERANCE = 1e-6  # the accuracies are fractions of whole examples; this allows float rounding only


def _run_config(run_dir: Path, overrides: list[str]):
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    config = run_dir / ".hydra" / "config.yaml"
    if not config.is_file():
        raise AutoAttendError(f"{run_dir}: not a run directory (no .hydra/config.yaml)")
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise AutoAttendError(f"{bad[0]}: expected key=value (a setting of the run's config to override)")
    try:
        cfg = OmegaConf.merge(OmegaConf.load(config), OmegaConf.from_dotlist(overrides))
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as exc:
        raise AutoAttendError(f"{config}: {str(exc).splitlines()[0]}") from None
    if str(cfg.get("task", {}).get("family", "text")) != "text":
        raise AutoAttendError(f"{run_dir}: a {cfg.task.name} run; only text runs keep their retrained models")
    return cfg


def saved_models(run_dir: Path) -> list[tuple[int, Path]]:
    """``(seed, retrain/seed_<seed>/model.pt)`` of a run, by seed."""
    found = []
    for path in (run_dir / "retrain").glob("seed_*/model.pt"):
        suffix = path.parent.name.removeprefix("seed_")
        if suffix.isdigit():
            found.append((int(suffix), path))
    if not found:
        raise AutoAttendError(f"{run_dir / 'retrain'}: no saved models (retrain/seed_<s>/model.pt; runs retrained "
                              "before models were kept have none)")
    return sorted(found)


def accuracy(model, dataset, batch_size: int) -> float:
    """The fraction of ``dataset``'s examples whose arg-max logit is their label."""
    import torch

    from src.pipeline.common import make_loader

    correct = total = 0
    with torch.inference_mode():
        for batch in make_loader(dataset, batch_size, False, 0):
            predicted = model(batch["tokens"], batch["mask"]).argmax(dim=-1)
            correct += int((predicted == batch["labels"]).sum())
            total += len(batch["labels"])
    return correct / total


def evaluate(run_dir: str | Path, overrides: list[str] | None = None) -> list[dict]:
    """Each saved seed's recorded and recomputed validation and test accuracy."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise AutoAttendError(f"{run_dir}: no such directory")
    cfg = _run_config(run_dir, list(overrides or []))
    models = saved_models(run_dir)
    from src.models.saved import load_text_child
    from src.pipeline.common import build_datamodule, setup_hardware

    setup_hardware(cfg)
    dm = build_datamodule(cfg)
    rows = []
    for seed, path in models:
        model, record = load_text_child(path)
        seed_file = path.parent.parent / f"seed_{seed}.json"
        recorded = json.loads(seed_file.read_text()) if seed_file.exists() else None
        saved = record["evaluation"]
        if recorded is not None and recorded["step"] != saved["step"]:
            raise AutoAttendError(f"{path}: holds step {saved['step']}, while {seed_file.name} selected step "
                                  f"{recorded['step']} (the file is from another training)")
        batch_size = int(cfg.retrain.eval_batch_size)
        row = {"seed": seed, "step": saved["step"], "finished": recorded is not None,
               "val_recorded": saved["val_acc"], "val": accuracy(model, dm.val_set, batch_size),
               "test_recorded": saved["test_acc"], "test": accuracy(model, dm.test_set, batch_size)}
        row["reproduced"] = (abs(row["val"] - row["val_recorded"]) <= TOLERANCE
                             and abs(row["test"] - row["test_recorded"]) <= TOLERANCE)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a text run's directory (src.search or src.retrain)")
    parser.add_argument("overrides", nargs="*", help="key=value settings of the run's config to override")
    args = parser.parse_args(argv)
    try:
        rows = evaluate(args.run_dir, args.overrides)
    except AutoAttendError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("| seed | step | val recorded | val now | test recorded | test now | reproduced |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        note = "" if r["finished"] else " (seed unfinished)"
        print(f"| {r['seed']}{note} | {r['step']} | {100 * r['val_recorded']:.2f} | {100 * r['val']:.2f} | "
              f"{100 * r['test_recorded']:.2f} | {100 * r['test']:.2f} | {'yes' if r['reproduced'] else 'NO'} |")
    failed = [r["seed"] for r in rows if not r["reproduced"]]
    if failed:
        print(f"error: seed(s) {', '.join(map(str, failed))} do not reproduce their recorded accuracy", file=sys.stderr)
        return 1
    print(f"all {len(rows)} seed(s) reproduce their recorded validation and test accuracy")
    return 0


if __name__ == "__main__":
    sys.exit(main())

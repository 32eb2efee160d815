"""Probe how far the graph space goes on Cora: retrain hand-written architectures for a few seeds.

usage: python experiments/runs/cora_space_probe/probe.py specs.yaml SEEDS
(``AUTOATTEND_DATA_DIR`` must hold planetoid/Cora). Each spec: ``name``, ``layers`` (an
architecture's layers) and optional ``hp`` overriding the base settings below (GAT's published
recipe); early stopping and the selection rule are the pipeline's (conf/graph/default.yaml).
Prints mean best-validation accuracy and test accuracy at that epoch (mean +- population std).
A diagnosis tool: it looks at test accuracy, so nothing it prints may select a reported model.
"""
import logging
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import yaml  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

from src.pipeline.common import build_datamodule  # noqa: E402
from src.pipeline.graph_stages import _child_settings, fit_child  # noqa: E402
from src.space import Architecture  # noqa: E402

BASE = dict(hidden=64, dropout=0.6, attn_dropout=0.6, act="elu", readout="last", stem="none", lr=5e-3,
            weight_decay=5e-4, epochs=300)

def main(specs_file: str, seeds: int, own_keys: tuple[str, ...] = (), on_spec=None) -> None:
    """Each spec's line. ``own_keys``: keys of a caller's ``hp`` kept from the pipeline and handed,
    with their values, to ``on_spec`` before the spec's seeds run (``probe_recipe.py``)."""
    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("retrain", ["+task=cora", f"paths.data_dir={os.environ['AUTOATTEND_DATA_DIR']}", "hardware=cpu"])
    dm = build_datamodule(cfg)
    for spec in yaml.safe_load(open(specs_file)):
        arch = Architecture.from_dict({"layers": spec["layers"]})
        given = spec.get("hp", {})
        if on_spec is not None:
            on_spec({k: given[k] for k in own_keys if k in given})
        hp = {**_child_settings(cfg, None), **BASE, **{k: v for k, v in given.items() if k not in own_keys}}
        start, vals, tests = time.time(), [], []
        for seed in range(seeds):
            chosen = fit_child(cfg, arch, dm, hp, seed, Path("/tmp/cora_probe"), f"s{seed}").selected()
            vals.append(chosen["val_acc"])
            tests.append(chosen["test_acc"])
        print(f"{spec['name']:40s} val {100 * statistics.mean(vals):.2f} test {100 * statistics.mean(tests):.2f} "
              f"+- {100 * statistics.pstdev(tests):.2f}  ({time.time() - start:.0f}s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))

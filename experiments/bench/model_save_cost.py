"""Cost of writing retrained models (README "The retrained models"): for two finished run
directories, how many times their seeds' selected evaluation changed (each change was a write of
``model.pt`` before graph seeds held the weights in memory) and the median time of one write of
the run's ``retrain/seed_0/model.pt``.

Run: ``.venv/bin/python experiments/bench/model_save_cost.py`` after the SST-2 quick run into
``/tmp/sst2q_eval`` and the default Cora run into ``/tmp/cora_models`` (experiments/README.md).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from src.models.saved import load_child, save_child, weights_of  # noqa: E402

RUNS = (("/tmp/sst2q_eval", ["retrain"]), ("/tmp/cora_models", ["retrain", "baselines/gcn", "baselines/gat"]))


def selection_changes(history: list[dict]) -> int:
    """How often the selected evaluation changed: a higher validation score, or (graph runs) the
    same score with a lower validation loss."""
    changes, best = 0, None
    for h in history:
        key = (h["val_acc"], -h["val_loss"]) if "val_loss" in h else (h["val_acc"],)
        if best is None or key > best:
            best, changes = key, changes + 1
    return changes


def main() -> None:
    torch.set_num_threads(2)
    for run, folders in RUNS:
        changes = sum(selection_changes(json.loads(f.read_text())["history"])
                      for folder in folders for f in sorted(Path(run, folder).glob("seed_*.json")))
        path = Path(run, "retrain", "seed_0", "model.pt")
        model, record = load_child(path)
        times = []
        for _ in range(10):
            start = time.perf_counter()
            save_child(Path("/tmp/model_save_cost.pt"), weights_of(model), record["spec"], record["evaluation"])
            times.append(time.perf_counter() - start)
        med = statistics.median(times)
        print(f"{run}: {path.stat().st_size / 1e6:.2f} MB a file, one write (copy + save) median {med * 1e3:.1f} ms; "
              f"{changes} selection changes in the run's seeds -> about {changes * med:.2f} s if each were written")


if __name__ == "__main__":
    main()

"""Does the Cora supernet's ranking predict from-scratch validation accuracy? (validation data only)

usage: python experiments/runs/cora_space_probe/supernet_correlation.py RUN_DIR N SEEDS [overrides]
(``AUTOATTEND_DATA_DIR`` must hold planetoid/Cora; RUN_DIR a finished ``python -m src.search
+task=cora`` run with ``supernet/last.ckpt`` and ``search/population.jsonl``). Takes N distinct
candidates of the run's population at evenly spaced ranks of their supernet score, computes each
one's supernet validation accuracy and cross-entropy, trains each from scratch with the retrain
settings (``graph.retrain``) for SEEDS seeds (2000, 2001, ...: never reported seeds) and prints
the Spearman correlation of the mean best validation accuracy with each supernet measure, and the
same within the supernet's top quarter. Reads no test figure.
"""
import json
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from src.pipeline import graph_stages  # noqa: E402
from src.space import Architecture  # noqa: E402
from supernet_rank import load_run  # noqa: E402  (this script's folder is on sys.path)


def main() -> None:
    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    run, n, n_seeds = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    cfg, dm, space, model = load_run(run, sys.argv[4:])

    distinct: dict[Architecture, float] = {}
    with open(run / "search" / "population.jsonl") as f:
        for line in f:
            row = json.loads(line)
            distinct.setdefault(Architecture.from_dict(row["arch"]), row["score"])
    ordered = sorted(distinct.items(), key=lambda kv: -kv[1])
    picked = [ordered[round(i * (len(ordered) - 1) / (n - 1))] for i in range(n)]

    g, m = dm.graph, dm.graph["val_mask"]
    sn_acc, sn_loss = [], []
    with torch.inference_mode():
        for arch, _ in picked:
            logits = model(g["x"], g["edge_index"], arch)[m]
            sn_acc.append((logits.argmax(-1) == g["y"][m]).float().mean().item())
            sn_loss.append(F.cross_entropy(logits, g["y"][m]).item())

    hp = graph_stages._child_settings(cfg, None)
    seeds = [int(cfg.seed) + 2000 + j for j in range(n_seeds)]
    jobs = [(arch, hp, s, Path("/tmp/cora_correlation"), f"c{i}_s{s}") for i, (arch, _) in enumerate(picked) for s in seeds]
    print(f"{n} of {len(ordered)} distinct candidates, {n_seeds} seed(s) each, retrain settings {hp}")
    print(f"{'rank':>5} {'supernet acc':>12} {'supernet loss':>13} {'scratch val':>11}  architecture", flush=True)
    fitted, scratch = graph_stages.fit_children(cfg, dm, jobs), []
    for (arch, _), a, lo in zip(picked, sn_acc, sn_loss):
        scratch.append(sum(next(fitted)["selected"]["val_acc"] for _ in seeds) / n_seeds)
        print(f"{ordered.index((arch, distinct[arch])) + 1:5d} {100 * a:12.2f} {lo:13.4f} {100 * scratch[-1]:11.2f}  "
              f"{arch}", flush=True)
    top = max(2, n // 4)
    for label, sl in (("all", slice(None)), (f"supernet top {top}", slice(0, top))):
        print(f"Spearman, {label}: scratch val vs supernet acc {spearmanr(scratch[sl], sn_acc[sl]).statistic:+.3f}, "
              f"vs -supernet loss {spearmanr(scratch[sl], [-x for x in sn_loss[sl]]).statistic:+.3f}")


if __name__ == "__main__":  # the seeds train in spawned worker processes
    main()

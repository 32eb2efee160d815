"""95 % bootstrap intervals of the Spearman correlations in the recorded ranking runs.

The records under ``experiments/runs/*ranking_sharing*`` were written before ``ranking/results.json``
carried ``spearman_ci95``; this recomputes every correlation of each record from its per-candidate
rows with :func:`src.pipeline.ranking.rank_correlations` (the stage's own code), checks the point
estimates against the recorded ones (the Cora records have no ``seed_agreement`` yet: computed
here from their per-seed scores) and prints them with their intervals.

    python experiments/ranking_intervals.py > experiments/runs/ranking_intervals_<date>.txt
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.pipeline.ranking import format_with_interval, rank_correlations  # noqa: E402


def main() -> None:
    for path in sorted(ROOT.glob("experiments/runs/*ranking_sharing*/*/ranking/results.json")):
        recorded = json.loads(path.read_text())
        rows = recorded["candidates"]
        top = next(key for key in recorded if key.startswith("supernet_top_"))
        n_top = int(top.rsplit("_", 1)[1])
        supernet, scratch = [r["supernet_score"] for r in rows], [r["scratch_val_mean"] for r in rows]
        figures = {"all": rank_correlations(supernet, scratch),
                   top: rank_correlations(supernet[:n_top], scratch[:n_top])}
        if all(len(r["scratch_val_per_seed"]) > 1 for r in rows):  # older records lack the key: computed here
            figures["seed_agreement"] = rank_correlations([r["scratch_val_per_seed"][0] for r in rows],
                                                          [r["scratch_val_per_seed"][1] for r in rows])
        print(f"{path.parent.parent.parent.name} / {recorded['sharing']} ({len(rows)} candidates)")
        for key, result in figures.items():
            if key in recorded and not math.isclose(result["spearman"], recorded[key]["spearman"], abs_tol=1e-6):
                raise SystemExit(f"{path}: {key} Spearman {result['spearman']} differs from the recorded "
                                 f"{recorded[key]['spearman']}")
            print(f"  {key:<16} Spearman {format_with_interval(result)}")


if __name__ == "__main__":
    main()

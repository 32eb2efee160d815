"""Where the probe's hand-written architectures rank under a trained Cora supernet.

usage: python experiments/runs/cora_space_probe/supernet_rank.py RUN_DIR SPECS.yaml[,MORE.yaml] [overrides]
(``AUTOATTEND_DATA_DIR`` must hold planetoid/Cora; RUN_DIR is a finished ``python -m src.search
+task=cora`` run with its ``supernet/last.ckpt`` and ``search/population.jsonl``; overrides must
match that run's supernet settings). Each spec is scored as the search scores a candidate: the
supernet's shared weights, validation accuracy. Prints the spec's score and its rank among the
run's 1,000 scored candidates. Specs the space's priors reject are reported, not scored.
"""
import json
import logging
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import yaml  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

from src.estimator import SupernetEstimator  # noqa: E402
from src.lit.graph_modules import graph_score_batch  # noqa: E402
from src.pipeline import graph_stages  # noqa: E402
from src.pipeline.common import build_datamodule  # noqa: E402
from src.pipeline.config import search_space  # noqa: E402
from src.space import Architecture  # noqa: E402


def load_run(run: Path, overrides: list[str]):
    """(cfg, dm, space, supernet in eval mode) of a finished Cora search run; the supernet is
    reloaded by the pipeline's own stage, which only reads a run whose supernet is DONE."""
    if not (run / "supernet" / "DONE").is_file():
        sys.exit(f"{run}: no finished supernet (supernet/DONE is missing)")
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("search", ["+task=cora", f"paths.data_dir={os.environ['AUTOATTEND_DATA_DIR']}", "hardware=cpu",
                                 *overrides])
    dm = build_datamodule(cfg)
    dm.prepare_data()
    dm.setup("fit")
    space = search_space(cfg)
    model = graph_stages.train_supernet(cfg, dm, space, run)
    model.eval()
    return cfg, dm, space, model


def main() -> None:
    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    run = Path(sys.argv[1])
    _, dm, space, model = load_run(run, sys.argv[3:])
    estimator = SupernetEstimator(model, dm.split_batches("val"), "cpu", score_batch=graph_score_batch(False))
    with open(run / "search" / "population.jsonl") as f:
        scores = sorted((json.loads(line)["score"] for line in f), reverse=True)
    print(f"population {len(scores)}: best {100 * scores[0]:.2f}, 100th {100 * scores[min(99, len(scores) - 1)]:.2f}, "
          f"median {100 * statistics.median(scores):.2f}, worst {100 * scores[-1]:.2f}")
    for path in sys.argv[2].split(","):
        for spec in yaml.safe_load(open(path)):
            arch = Architecture.from_dict({"layers": spec["layers"]})
            if not space.is_valid(arch):
                print(f"{spec['name']:40s} not in the searched space (priors)")
                continue
            score = estimator(arch)
            print(f"{spec['name']:40s} supernet val {100 * score:.2f}  rank {sum(s > score for s in scores) + 1}"
                  f"/{len(scores)}", flush=True)


if __name__ == "__main__":
    main()

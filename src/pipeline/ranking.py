"""How well the supernet ranks candidates: the paper's claim for context-aware sharing, measured.

The paper argues that context-aware sharing makes the supernet's estimates of candidates agree
better with how they train on their own. After a search, ``ranking.candidates`` = N distinct
candidates of ``search/population.jsonl``, at evenly spaced ranks of their supernet score (the
best, the worst and N - 2 between), are trained from scratch with the run's retrain settings
(text: ``retrain``; graph: ``graph.retrain``, without the HPO) for ``ranking.seeds`` seeds each
(``seed + 3000 + j``: never a reported seed), and the rank correlations (Spearman, Kendall) between
the supernet's validation score and the mean best validation score from scratch are written to
``ranking/results.json``: over all N, and within the supernet's best quarter of them. With two
or more seeds it also correlates the first two seeds' from-scratch scores with each other
(``seed_agreement``): how much ranking the seed noise leaves to detect. Each Spearman comes with
a 95 % bootstrap interval over the candidates (``spearman_ci95``). Validation data only
(the test figures the text retrain computes are not read). Resumable per candidate and seed;
adding ``ranking.candidates=N`` to a finished run's command resumes it and runs only this.
"""

from __future__ import annotations

import json
import logging
from contextlib import closing
from pathlib import Path

import torch
from omegaconf import DictConfig
from torchmetrics.functional import kendall_rank_corrcoef, spearman_corrcoef

from src.pipeline import graph_stages, stages
from src.pipeline.ranking_plan import picked_ranks, ranking_seeds
from src.space import Architecture
from src.utils.errors import AutoAttendError
from src.utils.io import atomic_write_json, read_record

log = logging.getLogger(__name__)


def distinct_ranked(population: Path) -> list[tuple[Architecture, float]]:
    """The distinct architectures of a search's ``population.jsonl`` with their (first) supernet
    score, best first; ties keep the order in which they were scored."""
    if not population.is_file():
        raise AutoAttendError(f"{population} does not exist: the ranking stage needs a finished search")
    scores: dict[Architecture, float] = {}
    with open(population) as f:
        for line in f:
            row = json.loads(line)
            scores.setdefault(Architecture.from_dict(row["arch"]), float(row["score"]))
    return sorted(scores.items(), key=lambda kv: -kv[1])


def rank_correlations(supernet: list[float], scratch: list[float]) -> dict:
    """Spearman's rho and Kendall's tau (tau-b, ties counted) of two score lists, with a 95 %
    bootstrap interval of rho (:func:`spearman_interval`); None below 3 points or when either
    list is constant (no ranking to compare)."""
    if len(supernet) < 3 or len(set(supernet)) < 2 or len(set(scratch)) < 2:
        return {"spearman": None, "spearman_ci95": None, "kendall": None, "n": len(supernet)}
    a = torch.tensor(supernet, dtype=torch.float64)
    b = torch.tensor(scratch, dtype=torch.float64)
    return {"spearman": float(spearman_corrcoef(a, b)), "spearman_ci95": spearman_interval(a, b),
            "kendall": float(kendall_rank_corrcoef(a, b, variant="b")), "n": len(supernet)}


INTERVAL_MIN_POINTS = 8  # 6,435 distinct resamples of 8 pairs, more than the 2,000 drawn


def spearman_interval(a: torch.Tensor, b: torch.Tensor, level: float = 0.95, resamples: int = 2000,
                      seed: int = 0) -> list[float] | None:
    """Percentile bootstrap interval of Spearman's rho between ``a`` and ``b`` (both shape (N,)):
    the N (a, b) pairs are resampled with replacement ``resamples`` times (a seeded generator, so
    the interval is reproducible) and rho is computed for each resample at once (ties get average
    ranks); resamples in which either side is constant have no rho and are left out. None when
    fewer than half of the resamples have one, and None below :data:`INTERVAL_MIN_POINTS` pairs:
    3 pairs have 10 distinct resamples, and a perfectly ranked handful gives rho = 1 in every one,
    an interval of zero width that claimed a certainty the sample cannot give. With a few dozen
    candidates the interval is wide: it says how much one ranking measurement can tell."""
    if len(a) < INTERVAL_MIN_POINTS:
        return None
    generator = torch.Generator().manual_seed(seed)
    index = torch.randint(0, len(a), (len(a), resamples), generator=generator)  # (N, resamples)
    x, y = a[index], b[index]
    varied = (x.amin(0) < x.amax(0)) & (y.amin(0) < y.amax(0))
    if int(varied.sum()) < resamples // 2:
        return None
    rho = spearman_corrcoef(x[:, varied], y[:, varied]).to(torch.float64)
    tail = (1 - level) / 2
    low, high = torch.quantile(rho, torch.tensor([tail, 1 - tail], dtype=torch.float64)).tolist()
    return [low, high]


def format_correlation(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.3f}"


def format_with_interval(result: dict) -> str:
    """``+0.040 (95 % CI -0.36..+0.44)`` from a :func:`rank_correlations` result."""
    interval = result.get("spearman_ci95")
    text = format_correlation(result["spearman"])
    return text if interval is None else f"{text} (95 % CI {interval[0]:+.2f}..{interval[1]:+.2f})"


def measure(cfg: DictConfig, dm, run_dir: Path, graph: bool) -> dict:
    """Train the picked candidates from scratch and correlate; writes and returns ``ranking/results.json``."""
    k = cfg.ranking
    ranked = distinct_ranked(run_dir / "search" / "population.jsonl")
    picked = [(rank, *ranked[rank - 1]) for rank in picked_ranks(len(ranked), int(k.candidates))]
    seeds = ranking_seeds(cfg.seed, k.seeds)
    out = run_dir / "ranking"
    out.mkdir(parents=True, exist_ok=True)
    log.info("ranking: %d of %d distinct candidates at evenly spaced supernet ranks, trained from scratch "
             "for %d seed(s) each (validation only)", len(picked), len(ranked), len(seeds))
    rows = []
    if graph:
        hp = graph_stages._child_settings(cfg, None)
        done = {}
        for rank, _, _ in picked:  # candidates an earlier run of this stage finished, with these seeds
            path = out / f"rank_{rank}" / "result.json"
            saved = read_record(path, "the candidate's from-scratch scores") if path.exists() else None
            if saved is not None and saved["seeds"] == seeds:
                done[rank] = saved["val_per_seed"]
        jobs = [(arch, hp, seed, out / f"rank_{rank}", f"seed_{seed}") for rank, arch, _ in picked if rank not in done
                for seed in seeds]
        with closing(graph_stages.fit_children(cfg, dm, jobs, label="ranking", unit="candidate seeds",
                                               done_before=len(done) * len(seeds))) as fitted:
            for n, (rank, arch, score) in enumerate(picked, 1):
                vals = done.get(rank)
                if vals is None:
                    vals = [next(fitted)["selected"]["val_acc"] for _ in seeds]
                    (out / f"rank_{rank}").mkdir(parents=True, exist_ok=True)
                    atomic_write_json(out / f"rank_{rank}" / "result.json", {"val_per_seed": vals, "seeds": seeds})
                rows.append(_row(n, len(picked), rank, arch, score, vals))
    else:
        for n, (rank, arch, score) in enumerate(picked, 1):
            folder = out / f"rank_{rank}"
            folder.mkdir(parents=True, exist_ok=True)
            vals = [stages.train_child(cfg, arch, dm, folder, seed,
                                       f"ranking {n}/{len(picked)} (supernet rank {rank}) seed {seed}")["val_acc"]
                    for seed in seeds]
            rows.append(_row(n, len(picked), rank, arch, score, vals))
    supernet, scratch = [r["supernet_score"] for r in rows], [r["scratch_val_mean"] for r in rows]
    top = max(3, len(rows) // 4)
    results = {
        "what": "rank correlation between the supernet's validation score and the mean best validation score "
                "of the same candidates trained from scratch",
        "sharing": str(cfg.graph.space.sharing if graph else cfg.space.sharing),
        "candidates": rows, "seeds": seeds, "population_distinct": len(ranked),
        "all": rank_correlations(supernet, scratch),
        f"supernet_top_{top}": rank_correlations(supernet[:top], scratch[:top]),
    }
    if len(seeds) > 1:
        # how far one seed's ranking agrees with another's: the noise ceiling of the correlation above
        results["seed_agreement"] = rank_correlations([r["scratch_val_per_seed"][0] for r in rows],
                                                      [r["scratch_val_per_seed"][1] for r in rows])
        log.info("ranking: the from-scratch rankings of seeds %d and %d agree with Spearman %s, Kendall %s",
                 seeds[0], seeds[1], format_correlation(results["seed_agreement"]["spearman"]),
                 format_correlation(results["seed_agreement"]["kendall"]))
    atomic_write_json(out / "results.json", results)
    overall, best = results["all"], results[f"supernet_top_{top}"]
    log.info("ranking (sharing %s): Spearman %s, Kendall %s over %d candidates; within the supernet's top %d: "
             "Spearman %s, Kendall %s", results["sharing"], format_with_interval(overall),
             format_correlation(overall["kendall"]), len(rows), top, format_correlation(best["spearman"]),
             format_correlation(best["kendall"]))
    return results


def _row(n: int, total: int, rank: int, arch: Architecture, score: float, vals: list[float]) -> dict:
    mean = sum(vals) / len(vals)
    log.info("ranking %d/%d: supernet rank %d (score %.4f) -> from scratch, validation %.4f", n, total, rank, score,
             mean)
    return {"supernet_rank": rank, "supernet_score": score, "scratch_val_mean": mean, "scratch_val_per_seed": vals,
            "arch": arch.to_dict()}

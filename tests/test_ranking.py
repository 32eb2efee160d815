"""The ranking analysis (``ranking.candidates``): which candidates it trains from scratch, the rank
correlations it reports, its resume, and the stage through the command line."""

from __future__ import annotations

import json
import random

import pytest
import torch
from torchmetrics.functional import spearman_corrcoef

from src.pipeline import ranking
from src.pipeline.ranking import distinct_ranked, rank_correlations, spearman_interval
from src.pipeline.ranking_plan import evenly_spaced, picked_ranks, ranking_seeds
from src.space import FunctionalSpace
from src.utils.errors import AutoAttendError
from tests.conftest import compose_config
from tests.helpers import cli, fake_graph_fits, write_tiny_planetoid

GRAPH_OPS = ("zero", "identity", "gcn", "sage", "gat1", "linear", "sgc")


def approx_correlations(expected: dict) -> dict:
    """``expected`` (a :func:`rank_correlations` result) for ``==`` up to float rounding."""
    return {key: None if value is None else pytest.approx(value) for key, value in expected.items()}


def test_evenly_spaced_takes_the_best_the_worst_and_between():
    assert evenly_spaced(10, 4) == [0, 3, 6, 9]
    assert evenly_spaced(1000, 32)[:3] == [0, 32, 64] and evenly_spaced(1000, 32)[-1] == 999
    assert len(evenly_spaced(1000, 32)) == 32
    assert evenly_spaced(5, 9) == [0, 1, 2, 3, 4] and evenly_spaced(7, 1) == [0]


def test_rank_correlations_against_hand_computed_values():
    assert rank_correlations([1, 2, 3, 4], [10, 20, 30, 40]) == {
        "spearman": pytest.approx(1.0), "spearman_ci95": None, "kendall": pytest.approx(1.0),
        "n": 4}  # too few pairs for an interval: every resample is perfectly ranked too, a width of 0
    assert rank_correlations([1, 2, 3, 4], [4, 3, 2, 1])["kendall"] == pytest.approx(-1.0)
    # ranks (5, 4, 2.5, 2.5, 1) vs (3, 5, 4, 1, 2): Spearman = Pearson of the ranks = 0.4617;
    # Kendall tau-b = (6 - 3) / sqrt(9 * 10) = 0.3162 (one tie among the 10 pairs of the first list)
    r = rank_correlations([0.162, 0.122, 0.114, 0.114, 0.072], [0.170, 0.344, 0.288, 0.058, 0.162])
    assert r["spearman"] == pytest.approx(0.46169, abs=1e-4) and r["kendall"] == pytest.approx(0.31623, abs=1e-4)
    assert rank_correlations([1, 2], [2, 1])["spearman"] is None  # too few points
    assert rank_correlations([1, 2, 3], [5, 5, 5])["kendall"] is None  # no ranking on one side


def test_the_bootstrap_interval_of_spearman_is_reproducible_and_narrows_with_more_candidates():
    generator = torch.Generator().manual_seed(5)

    def noisy_ranking(n):  # true Spearman about 0.5
        a = torch.rand(n, generator=generator, dtype=torch.float64)
        return a, a + 0.5 * torch.rand(n, generator=generator, dtype=torch.float64) * 2

    widths = {}
    for n in (16, 400):
        a, b = noisy_ranking(n)
        rho = float(spearman_corrcoef(a, b))
        low, high = spearman_interval(a, b)
        assert low < rho < high and spearman_interval(a, b) == [low, high]
        widths[n] = high - low
    assert widths[16] > 3 * widths[400] and 0.05 < widths[400] < 0.3  # width shrinks about as 1 / sqrt(n)
    low, high = spearman_interval(torch.rand(400, generator=generator), torch.rand(400, generator=generator))
    assert low < 0 < high  # unrelated lists: the interval holds zero
    assert spearman_interval(torch.tensor([1.0, 1.0, 2.0]), torch.tensor([3.0, 3.0, 3.0])) is None
    # under 8 pairs no interval (3 pairs have 10 distinct resamples); from 8 on, one that is not a point
    a, b = noisy_ranking(7)
    assert spearman_interval(a, b) is None
    low, high = spearman_interval(*noisy_ranking(8))
    assert low < high
    assert ranking.format_with_interval({"spearman": 0.0412, "spearman_ci95": [-0.361, 0.449]}) == (
        "+0.041 (95 % CI -0.36..+0.45)")
    assert ranking.format_with_interval({"spearman": None, "spearman_ci95": None}) == "n/a"


def _population(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"index": i, "score": s, "arch": a.to_dict()}) + "\n"
                            for i, (a, s) in enumerate(rows)))


def test_distinct_ranked_keeps_each_architecture_once_best_first(tmp_path):
    archs = FunctionalSpace(2, GRAPH_OPS, priors=True, kinds=("add", "attn")).sample_distinct(4, random.Random(1))
    _population(tmp_path / "population.jsonl",
                [(archs[0], 0.5), (archs[1], 0.7), (archs[0], 0.9), (archs[2], 0.7), (archs[3], 0.1)])
    # archs[0] keeps its first score; the tie at 0.7 keeps the order of scoring
    assert distinct_ranked(tmp_path / "population.jsonl") == [(archs[1], 0.7), (archs[2], 0.7), (archs[0], 0.5),
                                                             (archs[3], 0.1)]
    with pytest.raises(AutoAttendError, match="needs a finished search"):
        distinct_ranked(tmp_path / "nope.jsonl")


def test_graph_ranking_trains_the_picked_candidates_and_resumes(tmp_path, monkeypatch):
    archs = FunctionalSpace(2, GRAPH_OPS, priors=True, kinds=("add", "attn")).sample_distinct(9, random.Random(0))
    scores = [0.9 - 0.1 * i for i in range(9)]
    _population(tmp_path / "search" / "population.jsonl", list(zip(archs, scores)))
    scratch = {a: v for a, v in zip(archs, (0.5, 0.6, 0.7, 0.4, 0.8, 0.3, 0.2, 0.9, 0.1))}
    trained = fake_graph_fits(monkeypatch, scratch)  # seeds 3000, 3001: mean = scratch + 0.005
    cfg = compose_config("search", ["+task=cora", "ranking.candidates=5", "ranking.seeds=2", "space.sharing=none"])
    result = ranking.measure(cfg, None, tmp_path, graph=True)
    picked = [0, 2, 4, 6, 8]
    assert trained == [(archs[i], s) for i in picked for s in (3000, 3001)]
    rows = result["candidates"]
    assert [r["supernet_rank"] for r in rows] == [i + 1 for i in picked]
    assert [r["scratch_val_mean"] for r in rows] == pytest.approx([scratch[archs[i]] + 0.005 for i in picked])
    assert result["sharing"] == "none" and result["seeds"] == [3000, 3001]
    expected = rank_correlations([scores[i] for i in picked], [scratch[archs[i]] for i in picked])
    assert result["all"] == approx_correlations(expected)
    assert result["supernet_top_3"] == approx_correlations(rank_correlations(
        [scores[i] for i in picked[:3]], [scratch[archs[i]] for i in picked[:3]]))
    assert json.loads((tmp_path / "ranking" / "results.json").read_text())["all"] == approx_correlations(expected)
    # the stand-in's two seeds differ by a constant: their rankings agree perfectly
    assert result["seed_agreement"]["spearman"] == pytest.approx(1.0)
    # again: nothing is trained, the same figures; with more candidates only the new ones train
    trained.clear()
    assert ranking.measure(cfg, None, tmp_path, graph=True)["all"] == approx_correlations(expected) and trained == []
    cfg.ranking.candidates = 9
    ranking.measure(cfg, None, tmp_path, graph=True)
    assert [a for a, _ in trained[::2]] == [archs[i] for i in (1, 3, 5, 7)]


@pytest.mark.slow  # measured and resumed: the test above, tests/test_run_entry.py; through the command line:
# tests/test_docs_claims_findings.py's graph run
def test_ranking_through_the_command_line_added_to_a_finished_run(tmp_path):
    data = write_tiny_planetoid(tmp_path / "data")
    run_dir = tmp_path / "run"
    args = ("+task=cora", "budget=smoke", "hardware=cpu", "graph.baselines=[]")
    first = cli("src.search", *args, data_dir=data, tmp=tmp_path, run_dir=run_dir)
    assert first.returncode == 0, first.stderr[-3000:]
    retrained = (run_dir / "retrain" / "results.json").read_text()
    again = cli("src.search", *args, "ranking.candidates=4", data_dir=data, tmp=tmp_path, run_dir=run_dir)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (run_dir / "retrain" / "results.json").read_text() == retrained  # reused, not run again
    result = json.loads((run_dir / "ranking" / "results.json").read_text())
    ranked = distinct_ranked(run_dir / "search" / "population.jsonl")
    rows = result["candidates"]
    assert len(rows) == 4 and rows[0]["supernet_rank"] == 1 and rows[-1]["supernet_rank"] == len(ranked)
    assert [r["supernet_score"] for r in rows] == [ranked[r["supernet_rank"] - 1][1] for r in rows]
    assert result["all"] == approx_correlations(rank_correlations([r["supernet_score"] for r in rows],
                                                                [r["scratch_val_mean"] for r in rows]))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["ranking"]["all"] == result["all"] and "ranking: Spearman" in again.stdout
    assert "seed_agreement" not in result  # one seed: nothing to agree with
    # the first command again (without ranking.candidates): the run's summary keeps its ranking
    third = cli("src.search", *args, data_dir=data, tmp=tmp_path, run_dir=run_dir)
    assert third.returncode == 0, third.stderr[-3000:]
    assert json.loads((run_dir / "summary.json").read_text())["ranking"] == summary["ranking"]
    assert "ranking: Spearman" in third.stdout


def test_evenly_spaced_rounds_to_the_nearest_rank_and_ranks_count_from_one():
    # 8 / 3 = 2.67 between picks: 0, 2.67, 5.33, 8 round to 0, 3, 5, 8 (not floored to 0, 2, 5, 8)
    assert evenly_spaced(9, 4) == [0, 3, 5, 8]
    assert evenly_spaced(1000, 32)[3] == 97  # 3 * 999 / 31 = 96.68
    assert picked_ranks(10, 4) == [1, 4, 7, 10] and picked_ranks(3, 5) == [1, 2, 3]
    assert ranking_seeds(7, 2) == [3007, 3008]


def test_rank_correlations_from_three_points_and_none_for_a_constant_supernet_side():
    # ranks (1, 2, 3) vs (1, 3, 2): d^2 = 2, rho = 1 - 6 * 2 / (3 * 8) = 0.5; tau = (2 - 1) / 3
    r = rank_correlations([1, 2, 3], [1, 3, 2])
    assert r["spearman"] == pytest.approx(0.5, abs=1e-5) and r["kendall"] == pytest.approx(1 / 3, abs=1e-5) and r["n"] == 3
    assert rank_correlations([5, 5, 5], [1, 2, 3]) == {"spearman": None, "spearman_ci95": None, "kendall": None,
                                                       "n": 3}


def test_the_bootstrap_interval_is_the_central_95_percent_of_the_resampled_rhos():
    generator = torch.Generator().manual_seed(3)
    a = torch.rand(30, generator=generator, dtype=torch.float64)
    b = a + torch.rand(30, generator=generator, dtype=torch.float64)
    low, high = spearman_interval(a, b)
    # the same resamples as the interval's (seed 0): about 95 % of their rhos lie inside it
    index = torch.randint(0, 30, (30, 2000), generator=torch.Generator().manual_seed(0))
    rho = spearman_corrcoef(a[index], b[index]).to(torch.float64)
    inside = float(((rho >= low) & (rho <= high)).double().mean())
    assert 0.94 <= inside <= 0.96


def test_the_bootstrap_interval_leaves_out_resamples_with_one_constant_side():
    # one pair of 8 differs on the scratch side: about 1 - (7/8)^8 = 66 % of the resamples vary on
    # both sides, more than half: an interval from those alone. The differing pair has the largest
    # supernet score, so every such resample has rho > 0 (the ~34 % with a constant side, which
    # have no rho, would pull the interval down to 0)
    a = torch.arange(8, dtype=torch.float64)
    b = torch.tensor([0.0] * 7 + [1.0], dtype=torch.float64)
    interval = spearman_interval(a, b)
    assert interval is not None and 0 < interval[0] <= interval[1] <= 1


def _fits_by_seed(monkeypatch, by_seed):
    from src.pipeline import graph_stages

    trained = []

    class Fitted:
        history: list = []

        def __init__(self, score):
            self.score = score

        def selected(self):
            return {"val_acc": self.score}

    def fake_fit(cfg, arch, dm, hp, seed, out, name, model_file=None):
        trained.append((arch, seed))
        return Fitted(by_seed[seed][arch])

    monkeypatch.setattr(graph_stages, "fit_child", fake_fit)
    return trained


def test_seed_agreement_correlates_the_first_seed_with_the_second_and_new_seeds_retrain(tmp_path, monkeypatch):
    archs = FunctionalSpace(2, GRAPH_OPS, priors=True, kinds=("add", "attn")).sample_distinct(5, random.Random(0))
    _population(tmp_path / "search" / "population.jsonl", [(a, 0.9 - 0.1 * i) for i, a in enumerate(archs)])
    first = {a: 0.1 * i for i, a in enumerate(archs)}
    by_seed = {3000: first, 3001: {a: -v for a, v in first.items()}, 3002: first}  # seed 3001 ranks them backwards
    trained = _fits_by_seed(monkeypatch, by_seed)
    cfg = compose_config("search", ["+task=cora", "ranking.candidates=5", "ranking.seeds=2", "space.sharing=none"])
    result = ranking.measure(cfg, None, tmp_path, graph=True)
    assert result["seed_agreement"]["spearman"] == pytest.approx(-1.0)
    # three seeds instead of two: every candidate's saved result is for other seeds, so all train again
    trained.clear()
    cfg.ranking.seeds = 3
    result = ranking.measure(cfg, None, tmp_path, graph=True)
    assert trained == [(a, s) for a in archs for s in (3000, 3001, 3002)] and result["seeds"] == [3000, 3001, 3002]
    assert [r["scratch_val_per_seed"] for r in result["candidates"]] == [
        [by_seed[s][a] for s in (3000, 3001, 3002)] for a in archs]


def test_text_ranking_trains_each_picked_candidate_for_every_seed_in_its_rank_folder(tmp_path, monkeypatch):
    from src.pipeline import stages

    archs = FunctionalSpace(3).sample_distinct(7, random.Random(0))
    _population(tmp_path / "search" / "population.jsonl", [(a, 0.9 - 0.1 * i) for i, a in enumerate(archs)])
    calls = []

    def train_child(cfg, arch, dm, out, seed, label, save_model=False, say_done=True):
        calls.append((archs.index(arch), out.name, seed))
        return {"val_acc": 0.1 * archs.index(arch) + 0.01 * (seed - 3000)}

    monkeypatch.setattr(stages, "train_child", train_child)
    cfg = compose_config("search", ["+task=sst2", "ranking.candidates=3", "ranking.seeds=2"])
    result = ranking.measure(cfg, None, tmp_path, graph=False)
    # ranks 1, 4, 7: each in the folder of its supernet rank (so a run with other candidates resumes it)
    assert calls == [(i, f"rank_{i + 1}", s) for i in (0, 3, 6) for s in (3000, 3001)]
    assert [r["scratch_val_mean"] for r in result["candidates"]] == pytest.approx([0.005, 0.305, 0.605])

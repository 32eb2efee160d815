"""Experiment configs (``experiments/conf/experiment/<name>.yaml``, ``make reproduce EXP=<name>``):
each composes with its entry point, computes what its recorded run computed, and names that record."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from src.pipeline.checks import check_config
from src.pipeline.run_settings import flatten, run_settings
from src.utils.errors import AutoAttendError
from tests.conftest import compose_config

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted((ROOT / "experiments" / "conf" / "experiment").glob("*.yaml"))


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch):
    # the primary configs' search path for experiment configs is relative to the working directory
    monkeypatch.chdir(ROOT)


def _settings(cfg, entry: str) -> dict:
    """What determines the results (the resume rule's keys), without the entry's name."""
    settings = run_settings(cfg, entry)
    settings.pop("entry")
    return settings


def test_there_are_experiments():
    assert {p.stem for p in EXPERIMENTS} >= {"sst2_quick", "cora_default", "sst5_published_quick"}


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_composes_with_its_entry_and_names_its_record(path):
    raw = OmegaConf.load(path)
    entry = raw.experiment.entry
    assert entry in ("search", "retrain") and raw.experiment.name == path.stem
    cfg = compose_config(entry, [f"+experiment={path.stem}"])
    check_config(cfg, entry)
    assert cfg.task.name and cfg.experiment.name == path.stem
    if entry == "retrain":
        assert cfg.arch, f"{path.name}: a retrain experiment names its architecture"
    record = ROOT / cfg.experiment.record
    assert record.parent == ROOT / "experiments" / "runs" and record.is_dir(), f"{path.name}: no record at {record}"
    assert record.name in (ROOT / "experiments" / "README.md").read_text(), \
        f"{record.name} is not described in experiments/README.md"


def _record_jobs(raw, record: Path) -> list[tuple[Path, list[str]]]:
    """The recorded run(s) of an experiment config and, for each, the overrides its sweep set
    (``hydra.sweeper.params``; none for a single run)."""
    params = OmegaConf.to_container(OmegaConf.select(raw, "hydra.sweeper.params") or OmegaConf.create({}))
    if not params:
        return [(record, [])]
    jobs = sorted(p for p in record.iterdir() if (p / ".hydra" / "overrides.yaml").is_file())
    expected = 1
    for values in params.values():
        expected *= len(str(values).split(","))
    assert len(jobs) == expected, f"{record.name}: {len(jobs)} job folders for a sweep of {expected}"
    swept = []
    for job in jobs:
        overrides = OmegaConf.to_container(OmegaConf.load(job / ".hydra" / "overrides.yaml"))
        swept.append((job, [o for o in overrides if o.split("=")[0] in params]))
    return swept


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_computes_what_its_recorded_run_computed(path):
    """The record's command-line overrides and the experiment config give the same settings under
    today's code, and today's settings equal those the record ran with wherever both have the key
    (keys added since are new options at their defaults). A default changed since the record fails
    here: re-run the experiment, or point the config at a new record. A sweep's record is checked
    job by job, with that job's values of the swept keys."""
    raw = OmegaConf.load(path)
    entry, record = raw.experiment.entry, ROOT / raw.experiment.record
    for job, swept in _record_jobs(raw, record):
        hydra_dir = job / ".hydra"
        if not (hydra_dir / "config.yaml").is_file():
            pytest.skip(f"{job.name} keeps no .hydra/config.yaml")
        composed = compose_config(entry, [f"+experiment={path.stem}", *swept])
        now = _settings(composed, entry)
        overrides = [o for o in OmegaConf.to_container(OmegaConf.load(hydra_dir / "overrides.yaml"))
                     if not o.startswith("hydra.")]
        assert _settings(compose_config(entry, overrides), entry) == now, job.name
        recorded = flatten(OmegaConf.to_container(OmegaConf.load(hydra_dir / "config.yaml"), resolve=False))
        unresolved = {k: v for k, v in flatten(OmegaConf.to_container(composed, resolve=False)).items() if k in now}
        differ = {k: (recorded[k], unresolved[k]) for k in sorted(set(recorded) & set(unresolved))
                  if recorded[k] != unresolved[k]}
        assert not differ, f"{path.stem}: settings changed since the record {job.name} (recorded, now): {differ}"


def test_experiment_run_by_the_other_entry_point_is_refused():
    cfg = compose_config("retrain", ["+experiment=cora_default", "arch=gcn"])
    with pytest.raises(AutoAttendError, match=r"experiment cora_default is run by `python -m src.search`, not "
                                              r"src.retrain"):
        check_config(cfg, "retrain")


def test_experiment_settings_may_be_overridden_and_resume_as_the_plain_command():
    cfg = compose_config("search", ["+experiment=sst2_quick", "supernet.dim=16"])
    assert (cfg.supernet.dim, cfg.space.num_layers) == (16, 4)  # the budget's 4 layers, the override's D
    plain = compose_config("search", ["+task=sst2", "budget=quick", "supernet.dim=16"])
    # the experiment's name and record do not change results: either command resumes the other's run
    assert run_settings(cfg, "search") == run_settings(plain, "search")


def test_experiment_run_dir_is_named_after_the_experiment():
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        for entry in ("search", "retrain"):
            cfg = compose(config_name=entry, overrides=["+experiment=cora_default"], return_hydra_config=True)
            assert cfg.hydra.run.dir.startswith(f"{cfg.paths.output_dir}/cora_default/{entry}/")
            cfg = compose(config_name=entry, overrides=["+task=cora"], return_hydra_config=True)
            assert cfg.hydra.run.dir.startswith(f"{cfg.paths.output_dir}/cora/{entry}/")


def test_an_experiment_composes_from_another_working_directory(tmp_path):
    """The experiment configs are on the search path through the plugin in hydra_plugins/ (absolute): from another
    working directory ``+experiment=<name>`` composes the experiment's task and settings. (Before, the search path
    was ``file://experiments/conf`` in conf/search.yaml, relative: found from the repository root only.)"""
    import os

    env = {**os.environ, "PYTHONPATH": str(ROOT), "AUTOATTEND_DATA_DIR": str(tmp_path / "nowhere")}
    proc = subprocess.run([sys.executable, "-m", "src.search", "+experiment=cora_rerank10", "--cfg", "job"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    composed = OmegaConf.create(proc.stdout)
    assert composed.task.name == "cora" and composed.experiment.name == "cora_rerank10"


@pytest.mark.parametrize("args", [("+experiment=cora_default",), ("+task=cora", "+experiment=cora_rerank10")])
def test_an_experiment_without_the_search_path_plugin_is_one_error_line(tmp_path, args):
    """Without the plugin (an install from before it, run outside the repository root) Hydra took
    ``+experiment=<name>`` for a plain value: "no task selected", or with a task an AttributeError traceback
    (``cfg.experiment.get``); now one line saying where the configs are and what provides them."""
    import os

    hide_plugins = ("import runpy, sys, types; empty = types.ModuleType('hydra_plugins'); empty.__path__ = []; "
                    "sys.modules['hydra_plugins'] = empty; sys.argv[0] = 'src.search'; "
                    "runpy.run_module('src.search', run_name='__main__', alter_sys=True)")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AUTOATTEND_DATA_DIR": str(tmp_path / "nowhere")}
    proc = subprocess.run([sys.executable, "-c", hide_plugins, *args, f"hydra.run.dir={tmp_path / 'r'}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    name = args[-1].split("=", 1)[1]
    assert proc.returncode == 2 and proc.stderr.startswith(
        f"error: +experiment={name}: no experiment configs found: they are read from "
        f"{ROOT / 'experiments' / 'conf' / 'experiment'} through the Hydra plugin hydra_plugins/autoattend_experiments"
        ), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("exp, message", [("", "make reproduce needs EXP=<name>"),
                                          ("nope", "no experiment nope")])
def test_make_reproduce_refuses_unknown_experiments(exp, message):
    # a stand-in interpreter that make must not build (-o): the target fails before using it
    py = "/nonexistent/python"
    proc = subprocess.run(["make", "--no-print-directory", "-o", py, f"PY={py}", "reproduce", f"EXP={exp}"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and message in proc.stderr


@pytest.mark.parametrize("target, message", [
    (["reproduce"], "error: make reproduce needs EXP=<name>"),
    (["evaluate"], "error: make evaluate needs DIR=<a run directory>"),
    # it retrained SST-5's published architecture on SST-2 in silence
    (["retrain"], "error: make retrain needs ARCH=<built-in name"),
    (["predict", "DIR=outputs/x"], "error: make predict needs DIR=<a text run directory> FILE="),
])
def test_make_targets_check_their_arguments_before_installing(target, message, tmp_path):
    """Without its arguments a target stops at once: it does not first create the virtual
    environment (here one in a folder of the test's)."""
    proc = subprocess.run(["make", "--no-print-directory", f"VENV={tmp_path / 'venv'}", *target], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith(message), proc.stderr
    assert not (tmp_path / "venv").exists()


def test_make_experiments_lists_every_config():
    proc = subprocess.run(["make", "--no-print-directory", "experiments"], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    # a name, then the first sentence of the config's header, wrapped onto indented lines
    entries = re.split(r"\n(?=\S)", proc.stdout.strip())
    assert [entry.split()[0] for entry in entries] == [p.stem for p in EXPERIMENTS]
    for entry, path in zip(entries, EXPERIMENTS):
        name, text = entry.split(maxsplit=1)
        sentence = " ".join(text.split())
        header = " ".join(line[1:].strip() for line in path.read_text().splitlines()[1:] if line.startswith("#"))
        assert sentence.endswith(".") and header.startswith(sentence), (name, sentence)


def test_make_experiments_does_not_end_a_sentence_at_an_abbreviation(tmp_path):
    """The listing shows a config's first sentence: it was cut after "e.g."."""
    (tmp_path / "one.yaml").write_text("# @package _global_\n# Cora with a prior, e.g. the paper's, i.e. more\n"
                                       "# layers vs. fewer. A second sentence.\nseed: 0\n")
    proc = subprocess.run(["make", "--no-print-directory", "experiments", f"EXP_DIR={tmp_path}"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    assert " ".join(proc.stdout.split()) == "one Cora with a prior, e.g. the paper's, i.e. more layers vs. fewer."


def test_the_readmes_section_links_lead_to_headings():
    text = (ROOT / "README.md").read_text()
    # GitHub's anchors: lower case, punctuation other than '-' and '_' dropped, spaces as '-'
    anchors = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
               for h in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}
    links = re.findall(r"\]\(#([^)]+)\)", text)
    assert len(links) >= 10 and set(links) <= anchors, sorted(set(links) - anchors)


def _outside_code(text: str, spans: bool = True) -> str:
    """Markdown text less its fenced code blocks (and, with ``spans``, its inline code spans)."""
    text = re.sub(r"^ *```.*?^ *```[^\n]*$", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`]*`", "", text) if spans else text


def _heading_anchors(page: Path) -> set[str]:
    # GitHub's anchors, as above: lower case, punctuation other than '-' and '_' dropped, spaces as '-'
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#{1,6} (.+)$", _outside_code(page.read_text(), spans=False), flags=re.M)}


def _relative_links(page: Path) -> list[str]:
    links = re.findall(r"\]\(([^)\s]+)\)", _outside_code(page.read_text()))
    return [link for link in links if not re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", link)]  # not http:, mailto:, ...


def _broken_links(pages: list[Path]) -> list[str]:
    """Each relative link of the pages whose file does not exist or whose ``#anchor`` is no heading of that file."""
    broken = []
    for page in pages:
        for link in _relative_links(page):
            target, _, anchor = link.partition("#")
            file = (page.parent / target).resolve() if target else page
            if not file.exists():
                broken.append(f"{page.name}: {link}: no such file")
            elif anchor and (file.suffix != ".md" or anchor not in _heading_anchors(file)):
                broken.append(f"{page.name}: {link}: no such heading in {file.name}")
    return broken


def test_the_readme_and_docs_links_lead_to_files_and_headings():
    """Every relative link of README.md and docs/*.md leads to a file that exists and, with ``#anchor``, to one of
    its headings (the README's detail moved to docs/ with links both ways)."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert len(pages) >= 5
    links = [(page, link) for page in pages for link in _relative_links(page)]
    assert sum("docs/" in link for page, link in links if page.name == "README.md") >= 10
    assert all(any(link.startswith("../README.md") for link in _relative_links(page)) for page in pages[1:])
    assert _broken_links(pages) == []


def test_the_link_check_finds_a_missing_file_and_a_missing_heading(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## `make bench`\n\n[back](../README.md#quick-start)\n")
    (tmp_path / "README.md").write_text(
        "# Title\n\n## Quick start\n\n```bash\n# a comment, not a heading\n```\n\n"
        "[ok](docs/a.md#make-bench) [ok](#quick-start) [web](https://example.org/x.md#y) `[code](nothing.md)`\n"
        "[gone](docs/b.md) [no heading](docs/a.md#a-comment-not-a-heading) [nor here](#a-page)\n")
    assert _broken_links([tmp_path / "README.md", tmp_path / "docs" / "a.md"]) == [
        "README.md: docs/b.md: no such file",
        "README.md: docs/a.md#a-comment-not-a-heading: no such heading in a.md",
        "README.md: #a-page: no such heading in README.md"]


def test_make_retrain_passes_a_sweep_job_folder_to_hydra_quoted(tmp_path):
    """A sweep job's folder (``+task=sst2,budget=smoke``) given as ``ARCH=`` did not parse as a
    Hydra override; quoted, it reaches the project's own check of the architecture."""
    folder = tmp_path / "+task=sst2,budget=smoke"
    proc = subprocess.run(["make", "--no-print-directory", "-o", sys.executable, f"PY={sys.executable}", "PRELOAD=",
                           "retrain", "TASK=sst2", f"ARCH={folder}", f"ARGS=hydra.run.dir={tmp_path / 'r'}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[0] == (
        f"error: arch={folder}: no such file and no built-in architecture of that name (built-ins: gat, gcn, "
        "published_sst5)"), proc.stderr[-2000:]


def test_the_search_path_plugin_adds_the_experiments_to_autoattend_configs_only(tmp_path):
    """The plugin (hydra_plugins/autoattend_experiments) appends ``<repository>/experiments/conf`` once, after
    autoattend's ``conf/`` however Hydra names it (a plain path for ``@hydra.main``'s folder, ``file://`` for
    ``initialize_config_dir``), and leaves another Hydra application's search path as it was."""
    from hydra._internal.utils import create_config_search_path

    def entries(primary):
        return [(entry.provider, entry.path) for entry in create_config_search_path(primary).get_path()]

    experiments = ("autoattend-experiments", f"file://{ROOT / 'experiments' / 'conf'}")
    for primary in (str(ROOT / "conf"), f"file://{ROOT / 'conf'}", str(ROOT / "src" / ".." / "conf")):
        found = entries(primary)
        assert found.count(experiments) == 1 and found.index(experiments) == found.index(("main", primary)) + 1
    (tmp_path / "conf").mkdir()
    for primary in (str(tmp_path / "conf"), "pkg://hydra.conf", None):
        assert all(provider != "autoattend-experiments" for provider, _ in entries(primary))

"""Findings of an environment walk (2026-12-07, session 48): the entry points under a researcher's machine's
environment rather than the test suite's: an ASCII locale (``LANG=C`` / ``LC_ALL=C`` with Python's
UTF-8 mode off, as a legacy non-UTF-8 locale also gives), paths holding non-ASCII characters, ``${``,
a leading ``~`` or over-long names, a cache folder linked to a missing folder, a full disk, standard
output or input closed or read by a reader that goes away, ``HYDRA_FULL_ERROR=0``, read-only data
and run folders.

Each finding was a strict xfail and is mended (its docstring says "Was: ... Now: ..."); the others guard
behaviour that was checked and works. Every run is a ``budget=smoke`` one on tiny data with
``hardware.kernels=torch`` (no kernel build), as subprocesses through the command line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, write_tiny_planetoid, write_tiny_sst

# Words the tiny SST files are given in place of fillers: accents, CJK and an emoji (a symbol
# outside the Basic Multilingual Plane), so the vocabulary holds them.
NON_ASCII = {" movie)": " café)", " film)": " 電影)", " plot)": " 🎬)", " story)": " naïve)"}
SMOKE = ("budget=smoke", "hardware=cpu", "hardware.kernels=torch")


def _env(tmp: Path, data: Path, ascii_locale: bool = False, **extra: str) -> dict:
    """The environment of a command: offline, data from ``data``, cache and outputs under ``tmp``;
    ``ascii_locale``: ``LANG=C LC_ALL=C`` with Python's UTF-8 mode off (a C locale turns it on
    otherwise), as on a server whose locale is not set."""
    env = {**os.environ, "AUTOATTEND_DATA_DIR": str(data), "AUTOATTEND_CACHE_DIR": str(tmp / "cache"),
           "AUTOATTEND_OUTPUT_DIR": str(tmp / "out"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "OMP_NUM_THREADS": "1", **extra}
    env.pop("PYTHONIOENCODING", None)
    if ascii_locale:
        env.update(LANG="C", LC_ALL="C", PYTHONUTF8="0")
    else:
        env.update(LANG="C.UTF-8", LC_ALL="C.UTF-8")
    return env


def _run(module: str, *args: str, env: dict, stdin=None, input: str | None = None,
         timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, encoding="utf-8", errors="backslashreplace", stdin=stdin, input=input,
                          timeout=timeout)


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The refusal's line: status 2, one ``error:`` line, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    return lines[0]


@pytest.fixture(scope="module")
def data_folder(tmp_path_factory) -> Path:
    """A tiny SST whose sentences hold non-ASCII words, and a tiny Cora, in one folder."""
    root = tmp_path_factory.mktemp("data")
    write_tiny_sst(root, n_train=300, n_dev=60, n_test=60)
    for path in (root / "sst" / "trees").glob("*.txt"):
        text = path.read_text(encoding="utf-8")
        for old, new in NON_ASCII.items():
            text = text.replace(old, new)
        path.write_text(text, encoding="utf-8")
    write_tiny_planetoid(root)
    return root


@pytest.fixture(scope="module")
def sst_run(tmp_path_factory, data_folder) -> tuple[Path, Path]:
    """``(tmp, run dir)`` of a finished ``budget=smoke`` SST-2 search (UTF-8 locale, an ASCII path)."""
    tmp = tmp_path_factory.mktemp("sst_run")
    run_dir = tmp / "run"
    proc = _run("src.search", "+task=sst2", *SMOKE, f"hydra.run.dir={run_dir}", env=_env(tmp, data_folder))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, run_dir


# ---- an ASCII locale ---------------------------------------------------------------------------

@pytest.mark.parametrize("jsonl", [pytest.param(False, marks=pytest.mark.slow), True], ids=["table", "jsonl"])
def test_predict_prints_non_ascii_texts_of_a_file_under_an_ascii_locale(sst_run, data_folder, tmp_path, jsonl):
    """Was: src.predict prints the texts of --file (read as UTF-8) to a stdout whose encoding is the locale's (ASCII):
    UnicodeEncodeError traceback, status 1. Now: every entry point restarts once in Python's UTF-8 mode where the
    locale's encoding is not UTF-8 (src/utils/restart.py)."""
    _, run_dir = sst_run
    texts = tmp_path / "texts.txt"
    texts.write_text("a café film\nthe 電影 is great 🎬\n", encoding="utf-8")
    proc = _run("src.predict", str(run_dir), "--file", str(texts), *(["--jsonl"] if jsonl else []),
                env=_env(tmp_path, data_folder, ascii_locale=True))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert len([line for line in proc.stdout.splitlines() if "café" in line or "caf\\xe9" in line]) == 1


@pytest.mark.slow  # printing non-ASCII under an ASCII locale: test_predict_prints_non_ascii_texts_of_a_file_...
@pytest.mark.parametrize("jsonl", [False, True], ids=["table", "jsonl"])
def test_predict_prints_non_ascii_label_names_under_an_ascii_locale(tmp_path_factory, data_folder, tmp_path, jsonl):
    """Was: src.predict prints a run's task.label_names (here French ones) to a stdout whose encoding is the locale's
    (ASCII): every prediction of such a run is a UnicodeEncodeError traceback, status 1, whatever the text. Now:
    every entry point restarts once in Python's UTF-8 mode where the locale's encoding is not UTF-8
    (src/utils/restart.py)."""
    run_dir = _csv_run_with_label_names(tmp_path_factory)
    proc = _run("src.predict", str(run_dir), "a good film", *(["--jsonl"] if jsonl else []),
                env=_env(tmp_path, data_folder, ascii_locale=True))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


_CSV_RUN: list[Path] = []


def _csv_run_with_label_names(tmp_path_factory) -> Path:
    """A finished ``budget=smoke`` CSV search whose classes are named ``négatif`` and ``positif``."""
    if _CSV_RUN:
        return _CSV_RUN[0]
    tmp = tmp_path_factory.mktemp("csv_run")
    corpus = tmp / "corpus"
    corpus.mkdir()
    for name, count in (("train", 120), ("test", 30)):
        rows = [f'"{1 + i % 2}","{"a good film" if i % 2 else "a bad film"} number {i}"\n' for i in range(count)]
        (corpus / f"{name}.csv").write_text("".join(rows), encoding="utf-8")
    proc = _run("src.search", "+task=csv", f"task.path={corpus}", "task.num_classes=2",
                "task.label_names=['négatif','positif']", *SMOKE, f"hydra.run.dir={tmp / 'run'}",
                env=_env(tmp, tmp / "no data"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    _CSV_RUN.append(tmp / "run")
    return tmp / "run"


@pytest.mark.parametrize("source", ["argv", pytest.param("stdin", marks=pytest.mark.slow)])
def test_predict_reads_non_ascii_text_alike_under_an_ascii_locale(sst_run, data_folder, tmp_path, source):
    """Was: under an ASCII locale Python decodes argv and stdin with surrogateescape: 'café' reaches the tokenizer as
    'caf\\udcc3\\udca9', split into pieces that are all unknown words, so the prediction silently differs from a UTF-8
    locale's (and from --file's, which reads UTF-8). Now: every entry point restarts once in Python's UTF-8 mode
    where the locale's encoding is not UTF-8 (src/utils/restart.py)."""
    _, run_dir = sst_run
    text = "the café 電影 is great"

    def predict(ascii_locale: bool) -> dict:
        env = _env(tmp_path, data_folder, ascii_locale=ascii_locale)
        if source == "argv":
            proc = _run("src.predict", str(run_dir), "--jsonl", text, env=env)
        else:
            proc = _run("src.predict", str(run_dir), "--jsonl", "--file", "-", input=text + "\n", env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        row = json.loads(proc.stdout.splitlines()[0])
        return {key: row[key] for key in ("words", "unknown_words", "prediction")} | {
            "p": [round(p, 5) for p in row["probabilities"].values()]}

    utf8 = predict(False)
    assert utf8["words"] == 5 and utf8["unknown_words"] == 0  # café and 電影 are in the vocabulary
    assert predict(True) == utf8


def test_the_log_keeps_lines_naming_a_non_ascii_run_folder_under_an_ascii_locale(data_folder, tmp_path):
    """Was: the run's log file (conf/hydra/job_logging/delayed_file.yaml, a logging.FileHandler without encoding) is
    written in the locale's encoding: under an ASCII locale every line naming a non-ASCII path is dropped from it,
    each with a '--- Logging error ---' traceback on stderr. Now: every entry point restarts once in Python's UTF-8
    mode where the locale's encoding is not UTF-8 (src/utils/restart.py)."""
    run_dir = tmp_path / "exécution 実行"
    proc = _run("src.search", "+task=cora", *SMOKE, f"hydra.run.dir='{run_dir}'",
                env=_env(tmp_path, data_folder, ascii_locale=True))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Logging error" not in proc.stderr and "Traceback" not in proc.stderr
    log = (run_dir / "search.log").read_text(encoding="utf-8", errors="surrogateescape")
    assert "summary: " in log and "run dir" in log


@pytest.mark.parametrize("module", ["src.predict", pytest.param("src.evaluate", marks=pytest.mark.slow)])
def test_a_run_in_a_non_ascii_folder_is_read_under_an_ascii_locale(sst_run, data_folder, tmp_path, module):
    """Was: torch.load(str path, mmap=True) in src/models/saved.py encodes the path as strict UTF-8: under an ASCII
    locale a run folder with a non-ASCII name (a surrogate-escaped str) is 'not a saved model (UnicodeEncodeError
    ...)'. Now: every entry point restarts once in Python's UTF-8 mode where the locale's encoding is not UTF-8
    (src/utils/restart.py)."""
    _, run_dir = sst_run
    moved = tmp_path / "rün 1"
    shutil.copytree(run_dir, moved)
    args = [str(moved), "good film"] if module == "src.predict" else [str(moved)]
    assert _run(module, *args, env=_env(tmp_path, data_folder)).returncode == 0  # a UTF-8 locale reads it
    proc = _run(module, *args, env=_env(tmp_path, data_folder, ascii_locale=True))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "not a saved model" not in proc.stderr


@pytest.mark.slow  # the same torch.load of a non-ASCII path as the read of a run folder above, in the fast suite
def test_a_run_in_a_non_ascii_folder_resumes_under_an_ascii_locale(data_folder, tmp_path):
    """Was: the supernet checkpoint is read with torch.load(str path, mmap=True) (src/pipeline/common.py): under an
    ASCII locale a run folder with a non-ASCII name cannot be resumed, and the error line calls the intact
    checkpoint damaged and advises deleting it. Now: every entry point restarts once in Python's UTF-8 mode where
    the locale's encoding is not UTF-8 (src/utils/restart.py)."""
    run_dir = tmp_path / "résumé"
    command = ("src.search", "+task=sst2", *SMOKE, f"hydra.run.dir='{run_dir}'")

    def back_to_the_supernet_checkpoint():  # as a run stopped after its last supernet checkpoint
        for done in ("supernet/DONE", "search", "retrain", "summary.json"):
            shutil.rmtree(run_dir / done) if (run_dir / done).is_dir() else (run_dir / done).unlink()

    assert _run(*command, env=_env(tmp_path, data_folder, ascii_locale=True)).returncode == 0
    back_to_the_supernet_checkpoint()
    assert _run(*command, env=_env(tmp_path, data_folder)).returncode == 0  # a UTF-8 locale resumes it
    back_to_the_supernet_checkpoint()
    proc = _run(*command, env=_env(tmp_path, data_folder, ascii_locale=True))
    assert proc.returncode == 0, [line for line in proc.stderr.splitlines() if line.startswith("error")]
    assert "damaged" not in proc.stderr


def test_a_library_mapped_from_a_non_ascii_folder_under_an_ascii_locale(data_folder, tmp_path):
    """Was: allocator.active() reads /proc/self/maps with Path.read_text() in the locale's encoding: under an ASCII
    locale any library mapped from a non-ASCII folder (a venv or checkout in ~/Thèse/, the fused kernels in a
    non-ASCII TORCH_EXTENSIONS_DIR) is a UnicodeDecodeError traceback, status 1 (at the end of the run, after its
    work, when only the kernels are mapped from there). Now: the restart in UTF-8 mode, and allocator.active() reads
    the maps as UTF-8 with surrogateescape."""
    from src.utils import allocator

    lib = allocator.preload()
    if not lib:
        pytest.skip("no allocator library to preload from a non-ASCII folder")
    folder = tmp_path / "bibliothèque"
    folder.mkdir()
    shutil.copy(lib, folder)
    proc = _run("src.search", "+task=cora", *SMOKE, f"hydra.run.dir={tmp_path / 'run'}",
                env=_env(tmp_path, data_folder, ascii_locale=True, LD_PRELOAD=str(folder / Path(lib).name)))
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert "Traceback" not in proc.stderr
    assert (tmp_path / "run" / "summary.json").is_file()


def test_a_search_under_an_ascii_locale_on_non_ascii_data_matches_a_utf8_one(sst_run, data_folder, tmp_path):
    """The SST files are read as UTF-8 whatever the locale: the same vocabulary and results."""
    tmp, run_dir = sst_run
    proc = _run("src.search", "+task=sst2", *SMOKE, f"hydra.run.dir={tmp_path / 'run'}",
                env=_env(tmp_path, data_folder, ascii_locale=True))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    for name in ("data.json", "retrain/results.json"):
        ours = json.loads((tmp_path / "run" / name).read_text())
        theirs = json.loads((run_dir / name).read_text())
        if name == "data.json":
            assert ours == theirs
        else:
            assert ours["per_seed"] == theirs["per_seed"]


# ---- paths -------------------------------------------------------------------------------------

@pytest.mark.parametrize("task", ["sst2", pytest.param("cora", marks=pytest.mark.slow)])
def test_a_data_folder_whose_name_holds_dollar_brace_works_or_is_one_line(data_folder, tmp_path, task):
    """Was: build_datamodule passes paths.data_dir to hydra.utils.instantiate, which resolves the config again: a
    folder named with '${' (escaped as Hydra asks, \${) is an InterpolationKeyError traceback, status 1, after the
    run folder was started. Now: the DataModule gets the run's folders as they are (instantiate_datamodule: Hydra's
    instantiate makes the partial, the values go to the class)."""
    folder = tmp_path / "data ${x}"
    shutil.copytree(data_folder, folder)
    escaped = str(folder).replace("${", "\\${")
    proc = _run("src.search", f"+task={task}", *SMOKE, f"paths.data_dir='{escaped}'",
                f"hydra.run.dir={tmp_path / 'run'}", env=_env(tmp_path, tmp_path / "elsewhere"))
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    if proc.returncode != 0:
        _one_error_line(proc)


@pytest.mark.parametrize("key", ["hydra.run.dir", "paths.data_dir", "paths.cache_dir"])
def test_a_folder_name_longer_than_the_file_system_allows_is_one_line(data_folder, tmp_path, key):
    """Was: ENAMETOOLONG is not among the machine's refusals (src/utils/errors.py _MACHINE_ERRORS), and
    checks._file_in_the_way's Path.exists() raises it: an OSError traceback, status 1. Now: ENAMETOOLONG is a
    machine refusal, and checks.unfit_folder says it for paths.*."""
    long = tmp_path / ("x" * 300)
    settings = {"hydra.run.dir": tmp_path / "run", "paths.data_dir": data_folder,
                "paths.cache_dir": tmp_path / "cache", key: long}
    proc = _run("src.search", "+task=sst2", *SMOKE, *(f"{k}={v}" for k, v in settings.items()),
                env=_env(tmp_path, data_folder))
    line = _one_error_line(proc)
    assert "x" * 300 in line or key in line


@pytest.mark.parametrize("task", ["sst2", "cora"])
def test_a_cache_folder_linked_to_a_missing_folder_is_one_line_naming_it(data_folder, tmp_path, task):
    """Was: checks._file_in_the_way follows links, so a cache folder that is a link to a missing folder (a scratch disk
    not mounted) passes the checks; its mkdir's FileExistsError is then reported by run.hydra_entry as 'a file
    stands where the run's folder goes: see hydra.run.dir', after Hydra's 'Error executing job' line, with the run
    folder already started. Now: checks.unfit_folder refuses a link to what is not there, naming it, before any
    work."""
    link = tmp_path / "cache"
    link.symlink_to(tmp_path / "unmounted" / "cache")
    proc = _run("src.search", f"+task={task}", *SMOKE, f"paths.cache_dir={link}", f"hydra.run.dir={tmp_path / 'run'}",
                env=_env(tmp_path, data_folder))
    line = _one_error_line(proc)
    assert "paths.cache_dir" in line or "unmounted" in line
    assert "hydra.run.dir" not in line
    assert not (tmp_path / "run" / "run_settings.json").exists()  # refused before any work, as a file there is


@pytest.mark.parametrize("setting", ["paths.output_dir", "hydra.run.dir", "AUTOATTEND_OUTPUT_DIR"])
def test_a_leading_tilde_in_the_output_folder_means_home_or_is_refused(data_folder, tmp_path, setting):
    """Was: paths.data_dir and paths.cache_dir expand a leading ~ to $HOME, but paths.output_dir and hydra.run.dir
    (AUTOATTEND_OUTPUT_DIR too, as a .env file or a systemd unit gives it) make a folder literally named '~' in the
    current folder: the run is not where the user looks, and `rm -r ~` removes their home. Now: a leading ~ in a
    folder setting (and AUTOATTEND_OUTPUT_DIR) is refused before Hydra makes the folder (run.unfit_folder_setting)."""
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    env = _env(tmp_path, data_folder, HOME=str(home), PYTHONPATH=str(ROOT))
    args = [sys.executable, "-m", "src.search", "+task=cora", *SMOKE]
    if setting == "AUTOATTEND_OUTPUT_DIR":
        env[setting] = "~/outs"
    else:
        args.append(f"{setting}='~/outs'")
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert not (cwd / "~").exists(), sorted(str(p.relative_to(cwd)) for p in cwd.rglob("*"))[:5]
    if proc.returncode == 0:
        assert (home / "outs").is_dir()
    else:
        _one_error_line(proc)


def test_paths_holding_spaces_equals_commas_and_non_ascii_work_when_quoted(sst_run, data_folder, tmp_path):
    """Data, cache and run folders and an architecture file whose names hold what Hydra's override
    grammar reads (``=`` and ``,``), spaces and non-ASCII characters, quoted as Hydra asks."""
    _, run_dir = sst_run
    base = tmp_path / "a=b,c d é"
    data = base / "data x=1,y"
    shutil.copytree(data_folder, data)
    arch = base / "my arch=1,2.yaml"
    shutil.copy(run_dir / "search" / "best_arch.yaml", arch)
    proc = _run("src.retrain", "+task=sst2", *SMOKE, f"arch='{arch}'", f"paths.data_dir='{data}'",
                f"paths.cache_dir='{base / 'cache q=1'}'", f"hydra.run.dir='{base / 'run q=1,2'}'",
                env=_env(tmp_path, tmp_path / "elsewhere"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (base / "run q=1,2" / "retrain" / "results.json").is_file()
    proc = _run("src.show", str(arch), env=_env(tmp_path, data))
    assert proc.returncode == 0 and "| layer |" in proc.stdout


def _no_write_override() -> list[str]:
    """A command prefix under which file permissions hold: none for a user, for root ``setpriv``
    dropping the capabilities that override them (root writes into a chmod a-w folder otherwise)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("root without setpriv: permissions cannot be made to hold")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner"]


def _read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)


def _snapshot(folder: Path) -> list:
    return sorted((str(p.relative_to(folder)), p.stat().st_mtime_ns) for p in folder.rglob("*"))


def test_a_run_reads_a_read_only_data_folder_and_leaves_it_as_it_was(data_folder, tmp_path):
    """Nothing is written into the data folder (a shared, read-only copy): caches go to paths.cache_dir."""
    prefix = _no_write_override()
    data = tmp_path / "data"
    shutil.copytree(data_folder, data)
    _read_only(data)
    before = _snapshot(data)
    for task in ("sst2", "cora"):
        proc = subprocess.run([*prefix, sys.executable, "-m", "src.search", f"+task={task}", *SMOKE,
                               f"hydra.run.dir={tmp_path / task}"], cwd=ROOT, env=_env(tmp_path, data),
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert _snapshot(data) == before


def test_a_read_only_run_folder_is_evaluated_predicted_and_reported(sst_run, data_folder, tmp_path):
    """A finished run kept on read-only storage (an archive, a colleague's folder): src.evaluate,
    src.predict, src.show and src.report read it and write nothing into it."""
    prefix = _no_write_override()
    _, run_dir = sst_run
    archive = tmp_path / "archive" / "run"
    shutil.copytree(run_dir, archive)
    _read_only(archive.parent)
    before = _snapshot(archive.parent)
    for module, args in (("src.evaluate", [str(archive)]), ("src.predict", [str(archive), "a great film"]),
                         ("src.show", [str(archive)]), ("src.report", [str(archive.parent)])):
        proc = subprocess.run([*prefix, sys.executable, "-m", module, *args], cwd=ROOT,
                              env=_env(tmp_path, data_folder), capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, (module, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr
    assert _snapshot(archive.parent) == before


# ---- standard streams --------------------------------------------------------------------------

@pytest.mark.parametrize("module, args", [("src.show", ["published_sst5"]),
                                          ("src.search", ["+task=cora", *SMOKE])], ids=["show", "search"])
def test_an_entry_point_with_standard_output_closed_does_not_crash(data_folder, tmp_path, module, args):
    """Was: with file descriptor 1 closed sys.stdout is None: allocator.reexec_with_preload's sys.stdout.flush() (and
    run.exit_after_the_run's) raise AttributeError, a traceback and status 1 in every entry point. Now: the entry
    points point a closed standard output at /dev/null first (restart.mend_closed_output)."""
    command = [sys.executable, "-m", module, *args, *([f"hydra.run.dir={tmp_path / 'run'}"]
                                                        if module == "src.search" else [])]
    proc = subprocess.run(["bash", "-c", 'exec >&-; exec "$@"', "bash", *command], cwd=ROOT,
                          env=_env(tmp_path, data_folder), stderr=subprocess.PIPE,
                          text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode in (0, 141), proc.stderr[-2000:]


def test_predict_from_a_closed_standard_input_is_one_line(sst_run, data_folder, tmp_path):
    """Was: src.predict --file - reads sys.stdin, None when standard input is closed: AttributeError traceback instead
    of one error line. Now: src.predict says standard input is closed in one line."""
    _, run_dir = sst_run
    command = [sys.executable, "-m", "src.predict", str(run_dir), "--file", "-"]
    proc = subprocess.run(["bash", "-c", 'exec <&-; exec "$@"', "bash", *command], cwd=ROOT,
                          env=_env(tmp_path, data_folder), capture_output=True, text=True, timeout=120)
    line = _one_error_line(proc)
    assert "standard input" in line


def test_a_search_whose_output_reader_goes_away_finishes_quietly(data_folder, tmp_path):
    """Was: when the reader of a search's output goes away (`| head -1`) every log line after is a '--- Logging error
    ---' traceback on stderr (the console handler writes to stdout), and the final print of the summary raises
    BrokenPipeError inside the job: the run's log ends 'crashed: BrokenPipeError'. Now: the console handler
    (src.utils.logs.ConsoleHandler) and the summary's print point standard output at /dev/null once its reader has
    gone, and the run goes on."""
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "src.search", "+task=sst2", *SMOKE, f"hydra.run.dir={run_dir}"]
    proc = subprocess.run(["bash", "-c", '"$@" | head -c 0; exit "${PIPESTATUS[0]}"', "bash", *command], cwd=ROOT,
                          env=_env(tmp_path, data_folder), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, timeout=120)
    assert (run_dir / "retrain" / "results.json").is_file()  # the work is done and recorded either way
    assert proc.returncode in (0, 141)
    assert "Logging error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-1500:]
    log = (run_dir / "search.log").read_text()
    assert "crashed" not in log and "summary: " in log


# ---- other environment variables ---------------------------------------------------------------

@pytest.mark.parametrize("override", ["+task=nope", "supernet.dimm=3"])
def test_a_config_error_is_one_line_with_hydra_full_error_turned_off(data_folder, tmp_path, override):
    """Was: run.hydra_entry sets HYDRA_FULL_ERROR=1 only when unset (os.environ.setdefault): a user's
    HYDRA_FULL_ERROR=0 makes Hydra print its own 20-line config error and exit 1, bypassing the one error: line and
    status 2. Now: hydra_entry sets HYDRA_FULL_ERROR=1 whatever the user set."""
    extra = [] if override.startswith("+task") else ["+task=sst2"]
    proc = _run("src.search", *extra, override, env=_env(tmp_path, data_folder, HYDRA_FULL_ERROR="0"))
    _one_error_line(proc)


# ---- a full disk (a small tmpfs mounted in a private mount namespace: root only) ---------------------------

def _on_a_full_disk(tmp_path: Path, size: str, command: list[str], env: dict) -> subprocess.CompletedProcess:
    """Run ``command`` with ``tmp_path/small`` a tmpfs of ``size`` (``unshare -m``: seen by this command only)."""
    small = tmp_path / "small"
    small.mkdir()
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0 or shutil.which("unshare") is None:
        pytest.skip("needs unshare -m (root) to mount a small tmpfs")
    script = f'mount -t tmpfs -o size={size} tmpfs "$1" && shift && exec "$@"'
    return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(small), *command], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("task", ["sst2", pytest.param("cora", marks=pytest.mark.slow)])
def test_a_run_folder_on_a_full_disk_is_one_line(data_folder, tmp_path, task):
    """Was: a full disk while the supernet checkpoint is written: torch.save raises RuntimeError ('unexpected pos' /
    'iostream error'), not an OSError, so it is no machine error (src/utils/errors.py machine_error); then
    Timer._record's write fails with an ENOSPC OSError without a file name: a traceback, status 1. Now:
    atomic_target turns a write's OSError without a file name, and torch.save's RuntimeError on a nearly full disk,
    into an OSError naming the file, which machine_error says in one line."""
    run_dir = tmp_path / "small" / "run"
    proc = _on_a_full_disk(tmp_path, "200k", [sys.executable, "-m", "src.search", f"+task={task}", *SMOKE,
                                              f"hydra.run.dir={run_dir}"], _env(tmp_path, data_folder))
    if proc.returncode == 0:
        pytest.fail("the run fitted in 200 KiB: make the disk smaller")
    line = _one_error_line(proc)
    assert "full" in line


def test_a_full_cache_disk_is_not_blamed_on_the_graph_data(data_folder, tmp_path):
    """Was: Planetoid processing into a full cache disk is reported as the data's fault: '<data>/planetoid/Cora/raw:
    not readable as Planetoid data (...): OSError: [Errno 28] No space left on device', naming neither the cache
    folder nor the full disk's advice (src/data/planetoid.py). Now: the Planetoid reader says a machine refusal as
    such, naming the cache folder (machine_error with where=)."""
    proc = _on_a_full_disk(tmp_path, "100k", [sys.executable, "-m", "src.search", "+task=cora", *SMOKE,
                                              f"paths.cache_dir={tmp_path / 'small' / 'cache'}",
                                              f"hydra.run.dir={tmp_path / 'run'}"], _env(tmp_path, data_folder))
    line = _one_error_line(proc)
    assert "not readable as Planetoid data" not in line
    assert str(tmp_path / "small") in line and "full" in line


@pytest.mark.parametrize("source", ["argv", "stdin"])
def test_predict_refuses_text_that_is_not_utf8_as_it_refuses_such_a_file(sst_run, data_folder, tmp_path, source):
    """Latin-1 bytes (``caf\\xe9``) under a UTF-8 locale: ``--file F`` refused them, while the same text on
    standard input or the command line reached the tokenizer as surrogates and was classified as unknown
    words. Now each is one error line, as the file is."""
    _, run_dir = sst_run
    latin1 = "café film".encode("latin-1")
    command = [sys.executable, "-m", "src.predict", str(run_dir)]
    env = {k: os.fsencode(v) for k, v in _env(tmp_path, data_folder).items()}
    if source == "argv":
        proc = subprocess.run([*map(os.fsencode, command), latin1], cwd=ROOT, env=env, capture_output=True,
                              timeout=120)
        expected = "error: text 1: not UTF-8 (surrogates not allowed at character 3); give texts in UTF-8"
    else:
        proc = subprocess.run([*command, "--file", "-"], cwd=ROOT, env=env, input=latin1 + b"\n",
                              capture_output=True, timeout=120)
        expected = "error: -: cannot read (UnicodeDecodeError: 'utf-8' codec can't decode byte 0xe9"
    lines = proc.stderr.decode("utf-8", "backslashreplace").strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith(expected), lines

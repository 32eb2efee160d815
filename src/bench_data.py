"""Data-preparation benchmark: a generated N-row CSV in the exact Zhang et al. format through
:class:`src.data.csv_text.CSVTextDataModule`, cold (empty cache) then warm (cache re-used).

    python -m src.bench_data --rows 1000000 --out experiments/bench_data.json

Each run is a fresh child process, so its peak resident memory (``ru_maxrss``) is its own.
Sizes (``peak_rss_mb``, ``csv_mb``, ``cache_mb``) are in MB of 10^6 bytes, as the output's
``memory_unit`` says (an output without it, such as ``experiments/bench/bench_data_1m.json``, holds
MiB of 2^20 bytes under those names).
Also provides :func:`write_zhang_csv`, the generator the tests use.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from src.utils.io import atomic_write_json
from src.utils.memory import MEMORY_UNIT, peak_rss_bytes, to_mb

# Class-indicative words (so a model can learn something) and filler; every row also gets a few
# random rare ids so the vocabulary grows with the corpus as a real one does.
CLASS_WORDS = ["world", "sports", "business", "science", "music", "travel", "food", "health", "art", "law",
               "film", "books", "games", "cars"]
FILLER = ("the a of to and in is was for on with as by at from it that this be are have has had not but "
          "or an will one all new more after about two people year said says state city team market "
          "company report government week first last time game season").split()


def _text(rng: random.Random, label: int, words: int) -> str:
    """About ``words`` tokens with the quirks of the format: commas, doubled quotes (written by
    the csv module), literal backslash-n line breaks, an apostrophe, a numeric entity."""
    parts = rng.choices(FILLER, k=words)
    for _ in range(max(1, words // 12)):
        parts[rng.randrange(words)] = CLASS_WORDS[label % len(CLASS_WORDS)]
    parts[rng.randrange(words)] = f"w{rng.randrange(300_000)}"
    parts[rng.randrange(words)] = 'said "hello, there"'
    parts[rng.randrange(words)] = "it's\\nnew"
    if rng.random() < 0.2:
        parts[rng.randrange(words)] = "#36;10"
    return " ".join(parts)


def write_zhang_csv(path: str | Path, rows: int, num_classes: int = 4, text_fields: int = 2, seed: int = 0,
                    mean_words: int = 40) -> Path:
    """Write ``rows`` records ``"label","field 1",...,"field text_fields"`` (labels 1..num_classes,
    cycling, every field quoted) in the exact layout of the Zhang et al. files. Returns ``path``."""
    rng = random.Random(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\n")
        for i in range(rows):
            label = i % num_classes
            fields = [_text(rng, label, max(4, int(rng.expovariate(1 / mean_words)) // text_fields + 3))
                      for _ in range(text_fields)]
            if text_fields > 2 and rng.random() < 0.1:
                fields[1] = ""  # Yahoo questions often have no content field
            writer.writerow([str(label + 1), *fields])
    return path


def _child(args: argparse.Namespace) -> None:
    """One preparation run; prints a JSON line with its wall time and peak memory."""
    from src.data.csv_text import CSVTextDataModule

    t0 = time.perf_counter()
    dm = CSVTextDataModule(data_dir=args.dir, cache_dir=args.cache, name="bench", path=args.dir,
                           num_classes=args.classes, text_fields=args.fields, max_len=args.max_len,
                           embedding_source=args.embedding_source, num_proc=args.num_proc, progress=args.progress)
    dm.prepare_data()
    dm.setup()
    # Touch every split end to end, as a training epoch would.
    n_tokens = sum(int(split.lengths.sum()) for split in (dm.train_set, dm.val_set, dm.test_set))
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": round(seconds, 1), "peak_rss_mb": round(to_mb(peak_rss_bytes()), 1),
                      "train": len(dm.train_set), "val": len(dm.val_set), "test": len(dm.test_set),
                      "vocab": len(dm.vocab), "tokens": n_tokens}))


def _folder_mb(folder: Path) -> float:
    """The size of the files under ``folder`` in MB of 10^6 bytes."""
    return round(to_mb(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())), 1)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="train.csv rows (test.csv gets rows/20)")
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--fields", type=int, default=2, help="text fields per row")
    parser.add_argument("--max-len", type=int, default=256)
    parser.add_argument("--num-proc", type=int, default=None)
    parser.add_argument("--embedding-source", default="random", choices=("auto", "kumo", "random"))
    parser.add_argument("--work", default=None, help="folder for the CSV and the cache (default: a temp dir, removed)")
    parser.add_argument("--out", default=None, help="write the figures to this JSON file")
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return {}
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="autoattend-bench-"))
    try:
        data, cache = work / "data", work / "cache"
        shutil.rmtree(cache, ignore_errors=True)
        t0 = time.perf_counter()
        write_zhang_csv(data / "train.csv", args.rows, args.classes, args.fields, seed=0)
        write_zhang_csv(data / "test.csv", max(1, args.rows // 20), args.classes, args.fields, seed=1)
        generate = time.perf_counter() - t0
        runs = []
        for run in ("cold", "warm"):
            cmd = [sys.executable, "-m", "src.bench_data", "--child", "--dir", str(data), "--cache", str(cache),
                   "--classes", str(args.classes), "--fields", str(args.fields), "--max-len", str(args.max_len),
                   "--embedding-source", args.embedding_source]
            cmd += ["--num-proc", str(args.num_proc)] if args.num_proc else []
            cmd += ["--progress"] if args.progress else []
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
            if proc.returncode != 0:  # its own error is above, on the shared standard error
                how = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
                       else f"exit status {proc.returncode}")
                print(f"error: the {run} run of the data preparation failed ({how}); no figures written",
                      file=sys.stderr)
                raise SystemExit(2)
            runs.append({"run": run, **json.loads(proc.stdout.strip().splitlines()[-1])})
            print(f"{run}: {runs[-1]['seconds']} s, peak RSS {runs[-1]['peak_rss_mb']} MB (10^6 bytes)", flush=True)
        result = {
            "rows": args.rows, "test_rows": max(1, args.rows // 20), "text_fields": args.fields,
            "max_len": args.max_len, "num_proc": args.num_proc,
            "memory_unit": MEMORY_UNIT,
            "csv_mb": round(to_mb((data / "train.csv").stat().st_size + (data / "test.csv").stat().st_size), 1),
            "generate_seconds": round(generate, 1), "cache_mb": _folder_mb(cache), "runs": runs,
            "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform()},
        }
        print(json.dumps(result, indent=2))
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(args.out, result)
        return result
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

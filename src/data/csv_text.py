"""Document classification from CSV files (the Zhang et al. 2015 benchmarks, or any corpus in
their format) or from the Hugging Face hub, as a Lightning DataModule, at the benchmarks' scale.

Sources, in order: ``<path>/train.csv`` + ``<path>/test.csv`` (+ optional ``valid.csv``); else the
hub dataset ``hub_name``. Without a validation file, one is carved from train with a seeded,
configurable fraction (``val_fraction``, ``val_seed``: independent of the run's seed, so every run
and every seed sees the same split; it is recorded in ``stats["val_split"]``).

Processing goes through ``datasets`` and Arrow files on disk, never through Python lists of the
whole corpus, in two cached stages under ``cache_dir`` (each built in a temporary folder and
renamed into place, so an interrupted or failed build leaves nothing a later run could pick up):

1. ``<name>-tok-<hash>/``: parsed, validated, cleaned, tokenised text (``map``, batched) per file,
   and the train word counts. Keyed by the source files and the tokeniser settings.
2. ``<name>-ids-<hash>/``: the vocabulary (``max_vocab`` / ``min_freq``), the train / val / test
   splits as token ids truncated to ``max_len`` (``map``, batched), and the word vectors. Keyed by
   stage 1 and those settings, so e.g. a new ``max_len`` re-uses stage 1.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from tqdm.auto import tqdm

from src.data.arrow_split import TokenIdSplit, read_arrow_table
from src.data.embeddings import EMBEDDING_SOURCES, load_word_vectors, word_vectors_key
from src.data.hub import hub_class_number, load_hub_dataset, local_files_complete
from src.data.text import PAD, UNK, UNK_ID, Vocabulary
from src.data.zhang_csv import count_fields, join_fields, read_rows, tokenize
from src.data.text_module import TextDataModule
from src.utils.errors import AutoAttendError, DataNotFoundError, user_error_behind
from src.utils.io import (build_prefix, file_stamp, remove_stale_builds, remove_superseded_files,
                          remove_superseded_folders)

log = logging.getLogger("src.data")

# Bump when the processing changes, so old caches are not reused.
CACHE_VERSION = 2
FILES = {"train": "train.csv", "valid": "valid.csv", "test": "test.csv"}
# Rows per ``map`` batch: large batches amortise the per-call cost of Arrow's vocabulary lookup.
TOKENIZE_BATCH = 1000
IDS_BATCH = 10_000
COUNT_ROWS = 100_000


def _digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


@contextmanager
def _user_errors() -> Iterator[None]:
    """Re-raise a user error that ``datasets`` wrapped (in a generator or ``map``) as itself."""
    try:
        yield
    except Exception as err:
        user = user_error_behind(err)
        if user is None:
            raise
        raise AutoAttendError(str(user)) from None


@contextmanager
def _building(final: Path) -> Iterator[Path]:
    """A temporary folder next to ``final``, renamed to ``final`` when the block succeeds and
    deleted when it fails: ``final`` exists only complete."""
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_builds(final.parent)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=build_prefix(final.name)))
    tmp.chmod(0o755)  # mkdtemp's 0700 would make a shared cache unreadable to other users
    try:
        yield tmp
        if final.exists():  # another process finished the same build first: keep its copy
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            try:
                os.rename(tmp, final)
            except OSError:
                if not final.exists():
                    raise
                # the other build's rename landed between the check and this one (ENOTEMPTY): keep its copy
                shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _read_meta(folder: Path, key: dict) -> dict | None:
    """``folder/meta.json`` when the folder is a finished build for ``key``."""
    meta = folder / "meta.json"
    if not meta.is_file():
        return None
    try:
        data = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    return data if data.get("key") == key else None


# ----------------------------------------------------------------------------- map functions
# Module-level (not methods) so that ``datasets`` can pickle them for ``num_proc`` > 1.


def _tokenize_batch(batch: dict, lowercase: bool) -> dict:
    """``text`` -> ``tokens`` (an empty document becomes ``[<unk>]``: every sequence has length >= 1)."""
    return {"tokens": [tokenize(text, lowercase) or [UNK] for text in batch["text"]]}


def _hub_batch(batch: dict, indices: list[int], label_column: str, text_columns: Sequence[str], label_base: int,
               num_classes: int, where: str) -> dict:
    """A hub batch -> ``label`` (0-based, checked) and ``text`` (the text columns joined)."""
    labels = []
    for idx, raw in zip(indices, batch[label_column]):
        number = hub_class_number(raw)
        label = -1 if number is None else number - label_base
        if not 0 <= label < num_classes:
            raise AutoAttendError(
                f"{where}, row {idx}: column '{label_column}' has value {raw if number is not None else repr(raw)}; "
                f"expected {label_base}..{label_base + num_classes - 1} (num_classes={num_classes})"
            )
        labels.append(label)
    columns = [batch[c] for c in text_columns]
    texts = [join_fields(["" if f is None else str(f) for f in fields]) for fields in zip(*columns)]
    return {"label": labels, "text": texts}


def _ids_batch(table: pa.Table, vocab: pa.Array, max_len: int) -> pa.Table:
    """Arrow batch ``tokens`` -> ``ids`` (int32, truncated to ``max_len``, unknown -> ``UNK_ID``)."""
    tokens = pc.list_slice(table.column("tokens").combine_chunks(), 0, max_len)
    offsets = pc.subtract(tokens.offsets, tokens.offsets[0])
    ids = pc.fill_null(pc.index_in(tokens.flatten(), value_set=vocab), UNK_ID).cast(pa.int32())
    return pa.table({"ids": pa.ListArray.from_arrays(offsets, ids), "label": table.column("label")})


class CSVTextDataModule(TextDataModule):
    """A document-classification task from ``train.csv`` / ``test.csv`` or the hub.

    CSV rows: the label (``label_base``..``label_base + num_classes - 1``, Zhang et al.: from 1)
    then ``text_fields`` text fields (null: as many as the first row of ``train.csv`` has), joined
    with a space. Hub: ``hub_label_column`` (from ``hub_label_base``) and ``hub_text_columns``.

    After ``prepare_data(); setup()``: ``vocab``, ``embeddings`` FloatTensor (V, E), ``num_classes``,
    ``train_set`` / ``val_set`` / ``test_set`` (``TokenIdSplit``: items ``(LongTensor (len,), int)``,
    1 <= len <= ``max_len``), ``stats``. Batches are ``pad_collate`` dicts.
    ``train_level`` is accepted for interface compatibility and ignored (documents have no phrases):
    the attribute ``train_level`` is ``"document"``, what the run's records say.
    """

    raw_tokenizer = "zhang_csv"

    def raw_lowercase(self) -> bool:
        return self.lowercase

    def __init__(
        self,
        data_dir: str,
        cache_dir: str = ".cache/autoattend",
        name: str = "csv",
        path: str | None = None,
        num_classes: int | None = None,
        text_fields: int | None = None,
        label_base: int = 1,
        header: bool = False,
        hub_name: str | None = None,
        hub_config: str | None = None,
        hub_label_column: str = "label",
        hub_text_columns: Sequence[str] = ("text",),
        hub_label_base: int = 0,
        val_fraction: float = 0.05,
        val_seed: int = 0,
        max_vocab: int | None = 100_000,
        min_freq: int = 1,
        lowercase: bool = False,
        train_level: str = "document",
        max_len: int = 64,
        glove_path: str | None = None,
        embedding_source: str = "auto",
        num_workers: int = 0,
        num_proc: int | None = None,
        seed: int = 0,
        batch_size: int = 128,
        eval_batch_size: int = 512,
        progress: bool = True,
    ):
        super().__init__()
        if num_classes is None:
            raise AutoAttendError(f"task {name}: num_classes is not set; add task.num_classes=<number of classes>")
        if int(num_classes) < 2:
            raise AutoAttendError(f"task {name}: num_classes must be >= 2; got {num_classes!r}")
        if path is None and hub_name is None:
            raise AutoAttendError(f"task {name}: no data given; add task.path=<folder holding train.csv and test.csv>")
        if text_fields is not None and int(text_fields) < 1:
            raise AutoAttendError(f"task {name}: text_fields must be >= 1 or null; got {text_fields!r}")
        if not 0.0 < float(val_fraction) < 1.0:
            raise AutoAttendError(f"task {name}: val_fraction must be in (0, 1); got {val_fraction!r}")
        if max_vocab is not None and int(max_vocab) < 3:
            raise AutoAttendError(f"task {name}: max_vocab must be >= 3 or null; got {max_vocab!r}")
        if int(min_freq) < 1:
            raise AutoAttendError(f"task {name}: min_freq must be >= 1; got {min_freq!r}")
        if int(max_len) < 1:
            raise AutoAttendError(f"max_len must be >= 1; got {max_len!r}")
        if embedding_source not in EMBEDDING_SOURCES:
            raise AutoAttendError(
                f"embedding_source must be one of {', '.join(EMBEDDING_SOURCES)}; got {embedding_source!r}"
            )
        self.data_dir = Path(data_dir).expanduser()
        self.cache_dir = Path(cache_dir).expanduser()
        self.train_level = "document"
        self.name = str(name)
        self.path = Path(path).expanduser().resolve() if path is not None else None
        if self.path is not None and self.path.is_file():  # looked for <file>/train.csv
            raise AutoAttendError(f"task {name}: task.path={path} is a file; give the folder holding train.csv and "
                                  "test.csv (and valid.csv when it has one)")
        self.num_classes = int(num_classes)
        self.text_fields = None if text_fields is None else int(text_fields)
        self.label_base = int(label_base)
        self.header = bool(header)
        self.hub_name = hub_name
        self.hub_config = hub_config
        self.hub_label_column = str(hub_label_column)
        self.hub_text_columns = [str(c) for c in hub_text_columns]
        self.hub_label_base = int(hub_label_base)
        self.val_fraction = float(val_fraction)
        self.val_seed = int(val_seed)
        self.max_vocab = None if max_vocab is None else int(max_vocab)
        self.min_freq = int(min_freq)
        self.lowercase = bool(lowercase)
        self.max_len = int(max_len)
        self.glove_path = str(glove_path) if glove_path else None
        self.embedding_source = embedding_source
        self.num_workers = int(num_workers)
        self.num_proc = int(num_proc) if num_proc and int(num_proc) > 1 else None
        self.seed = int(seed)
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size)
        self.progress = bool(progress)

        self.vocab: Vocabulary | None = None
        self.embeddings: torch.Tensor | None = None
        self.train_set: TokenIdSplit | None = None
        self.val_set: TokenIdSplit | None = None
        self.test_set: TokenIdSplit | None = None
        self.stats: dict = {}

    # ----------------------------------------------------------------------------- sources

    @property
    def files(self) -> dict[str, Path]:
        """File role (train / valid / test) -> path under ``path`` (valid is optional)."""
        base = self.path if self.path is not None else self.data_dir
        return {role: base / name for role, name in FILES.items()}

    def _local_available(self) -> bool:
        return self.path is not None and local_files_complete(self.files, ("train", "test"), f"task {self.name}")

    def _local_files(self) -> dict[str, Path]:
        return {role: p for role, p in self.files.items() if p.is_file()}

    def _source_key(self) -> dict:
        if self._local_available():
            files = {role: {"path": str(p), **file_stamp(p)}
                     for role, p in self._local_files().items()}
            return {"files": files, "text_fields": self.text_fields, "label_base": self.label_base,
                    "header": self.header}
        return {"hub": self.hub_name, "config": self.hub_config, "label_column": self.hub_label_column,
                "text_columns": self.hub_text_columns, "label_base": self.hub_label_base}

    def _tok_key(self) -> dict:
        return {"version": CACHE_VERSION, "source": self._source_key(), "num_classes": self.num_classes,
                "lowercase": self.lowercase}

    def _ids_key(self) -> dict:
        return {"tokens": _digest(self._tok_key()), "max_vocab": self.max_vocab, "min_freq": self.min_freq,
                "max_len": self.max_len, "val_fraction": self.val_fraction, "val_seed": self.val_seed}

    def _emb_key(self) -> dict:
        return {"ids": _digest(self._ids_key()), **word_vectors_key(self.glove_path, self.embedding_source),
                "seed": self.seed}

    @property
    def tok_dir(self) -> Path:
        return self.cache_dir / f"{self.name}-tok-{_digest(self._tok_key())}"

    @property
    def ids_dir(self) -> Path:
        return self.cache_dir / f"{self.name}-ids-{_digest(self._ids_key())}"

    @property
    def emb_path(self) -> Path:
        return self.ids_dir / f"embeddings-{_digest(self._emb_key())}.pt"

    # ----------------------------------------------------------------------------- stage 1

    def _raw_from_csv(self, tmp: Path) -> dict:
        """Parse and validate the CSV files into Arrow (``label``, ``text``) datasets."""
        import datasets

        files = self._local_files()
        num_fields = 1 + self.text_fields if self.text_fields is not None else count_fields(files["train"])
        if num_fields < 2:
            raise AutoAttendError(f"{files['train']}, row 1: found {num_fields} field; expected a label and at "
                                  f"least one text field")
        features = datasets.Features({"label": datasets.Value("int64"), "text": datasets.Value("string")})
        raw = {}
        for role, path in files.items():
            log.info("%s: reading %s", self.name, path)
            with _user_errors():
                raw[role] = datasets.Dataset.from_generator(
                    read_rows, features=features, cache_dir=str(tmp / "raw" / role), split="train",
                    gen_kwargs={"path": path, "num_fields": num_fields, "num_classes": self.num_classes,
                                "label_base": self.label_base, "header": self.header})
        return raw

    def _raw_from_hub(self, tmp: Path) -> dict:
        """Load ``hub_name`` and map its columns to (``label``, ``text``)."""
        looked = ", ".join(str(self.files[r]) for r in ("train", "test") if not self.files[r].is_file()) \
            if self.path is not None else "none"
        data_dir = os.environ.get("AUTOATTEND_DATA_DIR")
        # the data folder is named only where the files were looked for in it (a preset's <name>_csv)
        in_data_dir = self.path is None or self.path.resolve().is_relative_to(self.data_dir.resolve())
        where = (f"put the CSV files (train.csv, test.csv) in {self.path or '<a folder>'} "
                 f"(task.path; the original '<name>_csv' folder of Zhang et al.)"
                 + ("" if not in_data_dir else f"; AUTOATTEND_DATA_DIR is {data_dir}" if data_dir
                    else " or set AUTOATTEND_DATA_DIR"))
        if not self.hub_name:
            raise DataNotFoundError(f"task {self.name}: CSV files not found (looked for {looked}) and no "
                                    f"task.hub_name is set; {where}")
        try:
            data = load_hub_dataset(self.hub_name, self.hub_config)
        except Exception as err:  # any hub/network failure means the same thing to the user
            reason = " ".join(f"{type(err).__name__}: {err}".split())[:200]
            raise DataNotFoundError(f"task {self.name}: CSV files not found (looked for {looked}) and the Hugging "
                                    f"Face hub dataset '{self.hub_name}' was unreachable ({reason}); {where}") from None
        raw = {}
        for role, hub_split in (("train", "train"), ("test", "test"), ("valid", "validation")):
            if hub_split not in data:
                if role == "valid":
                    continue
                raise AutoAttendError(f"hub dataset '{self.hub_name}' has no '{hub_split}' split; "
                                      f"expected train and test (found {', '.join(data)})")
            table = data[hub_split]
            needed = [self.hub_label_column, *self.hub_text_columns]
            missing = [c for c in needed if c not in table.column_names]
            if missing:
                raise AutoAttendError(
                    f"hub dataset '{self.hub_name}' split '{hub_split}' has no column '{missing[0]}' "
                    f"(columns: {', '.join(table.column_names)}); set task.hub_label_column / "
                    f"task.hub_text_columns")
            with _user_errors():
                raw[role] = table.map(
                    _hub_batch, batched=True, with_indices=True, remove_columns=table.column_names,
                    fn_kwargs={"label_column": self.hub_label_column, "text_columns": self.hub_text_columns,
                               "label_base": self.hub_label_base, "num_classes": self.num_classes,
                               "where": f"hub dataset '{self.hub_name}' split '{hub_split}'"},
                    cache_file_name=str(tmp / f"raw-{role}.arrow"), new_fingerprint=f"raw-{role}",
                    desc=f"{self.name}: {hub_split} columns")
        return raw

    def _build_tokens(self, final: Path) -> None:
        """Stage 1: parse, clean and tokenise every file; count train words; write ``final``."""
        with _building(final) as tmp:
            if self._local_available():
                raw, origin = self._raw_from_csv(tmp), f"local:{self.path}"
            else:
                raw, origin = self._raw_from_hub(tmp), f"hub:{self.hub_name}"
            files, lengths = {}, {}
            for role, ds in raw.items():
                out = ds.map(_tokenize_batch, batched=True, batch_size=TOKENIZE_BATCH, remove_columns=["text"],
                             fn_kwargs={"lowercase": self.lowercase}, num_proc=self.num_proc,
                             cache_file_name=str(tmp / f"{role}.arrow"), new_fingerprint=f"tokens-{role}",
                             desc=f"{self.name}: tokenise {role}")
                files[role] = [Path(f["filename"]).name for f in out.cache_files]
                table = pa.concat_tables([read_arrow_table(tmp / f) for f in files[role]])
                n = pc.list_value_length(table.column("tokens")).to_numpy().astype(np.int64)
                lengths[role] = {"docs": int(n.size), "mean": float(n.mean()) if n.size else 0.0,
                                 **{f"p{q}": int(np.percentile(n, q)) for q in (50, 90, 99)}}
                del table, out
            shutil.rmtree(tmp / "raw", ignore_errors=True)
            for f in tmp.glob("raw-*.arrow"):
                f.unlink()
            self._count_words([tmp / f for f in files["train"]], tmp / "counts.arrow")
            _write_json(tmp / "meta.json", {"key": self._tok_key(), "origin": origin, "files": files,
                                            "lengths": lengths})

    def _count_words(self, paths: list[Path], out: Path) -> None:
        """Word counts of the train file, sorted by count (descending) then word; Arrow, not Python."""
        column = pa.concat_tables([read_arrow_table(p) for p in paths]).column("tokens")
        partial, group, rows = [], [], 0

        def flush() -> None:
            if group:
                counts = pc.value_counts(pa.chunked_array(group))
                partial.append(pa.table({"word": counts.field("values"), "count": counts.field("counts")}))
                group.clear()

        for chunk in tqdm(column.chunks, desc=f"{self.name}: count words", unit="chunk", disable=not self.progress):
            group.append(chunk.flatten())
            rows += len(chunk)
            if rows >= COUNT_ROWS:
                flush()
                rows = 0
        flush()
        if partial:
            total = pa.concat_tables(partial).group_by("word").aggregate([("count", "sum")])
            total = pa.table({"word": total.column("word"), "count": total.column("count_sum")})
        else:
            total = pa.table({"word": pa.array([], pa.string()), "count": pa.array([], pa.int64())})
        total = total.select(["word", "count"]).sort_by([("count", "descending"), ("word", "ascending")])
        with pa.OSFile(str(out), "wb") as sink, pa.ipc.new_stream(sink, total.schema) as writer:
            writer.write_table(total)

    # ----------------------------------------------------------------------------- stage 2

    def _vocabulary(self, counts: pa.Table) -> list[str]:
        """``<pad>``, ``<unk>``, then the words seen >= ``min_freq`` times, most frequent first,
        ties alphabetical, at most ``max_vocab`` entries in all."""
        keep = pc.and_(pc.greater_equal(counts.column("count"), self.min_freq),
                       pc.invert(pc.is_in(counts.column("word"), value_set=pa.array([PAD, UNK]))))
        words = counts.column("word").filter(keep)
        if self.max_vocab is not None:
            words = words.slice(0, self.max_vocab - 2)
        return [PAD, UNK, *words.to_pylist()]

    def val_rows(self, n_train: int, source: str = "train") -> np.ndarray:
        """Sorted row numbers (0-based, in train.csv) of the carved validation split; ``source``
        names the training rows' origin in the error when there are too few to carve from."""
        n_val = min(n_train - 1, max(1, round(self.val_fraction * n_train)))
        if n_val < 1:
            raise AutoAttendError(f"task {self.name}: {source} has {n_train} row(s); carving a validation split "
                                  "(task.val_fraction) needs at least 2: add rows, or give a valid.csv")
        return np.sort(np.random.default_rng(self.val_seed).permutation(n_train)[:n_val])

    def _build_ids(self, tok_dir: Path, tok_meta: dict, final: Path) -> None:
        """Stage 2: vocabulary, validation split, id conversion; write ``final``."""
        import datasets

        def load(role: str) -> datasets.Dataset:
            parts = [datasets.Dataset.from_file(str(tok_dir / f)) for f in tok_meta["files"][role]]
            return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)

        with _building(final) as tmp:
            vocab = self._vocabulary(read_arrow_table(tok_dir / "counts.arrow"))
            train = load("train")
            if "valid" in tok_meta["files"]:
                splits = {"train": train, "val": load("valid")}
                val_split = {"source": "valid.csv" if tok_meta["origin"].startswith("local") else "hub validation",
                             "size": len(splits["val"])}
            else:
                origin = tok_meta["origin"]
                rows = self.val_rows(len(train), str(self.files["train"]) if origin.startswith("local")
                                     else f"the train split of {origin.removeprefix('hub:')}")
                keep = np.ones(len(train), dtype=bool)
                keep[rows] = False
                splits = {"train": train.select(np.flatnonzero(keep), keep_in_memory=True),
                          "val": train.select(rows, keep_in_memory=True)}
                np.save(tmp / "val_rows.npy", rows)
                val_split = {"source": "carved from train", "fraction": self.val_fraction, "seed": self.val_seed,
                             "size": int(rows.size), "rows_sha256": hashlib.sha256(rows.tobytes()).hexdigest()[:16]}
            splits["test"] = load("test")
            features = datasets.Features({"ids": datasets.List(datasets.Value("int32")),
                                          "label": datasets.Value("int64")})
            files = {}
            vocab_array = pa.array(vocab)
            for split, ds in splits.items():
                out = ds.with_format("arrow").map(
                    _ids_batch, batched=True, batch_size=IDS_BATCH, remove_columns=["tokens"], features=features,
                    fn_kwargs={"vocab": vocab_array, "max_len": self.max_len}, num_proc=self.num_proc,
                    cache_file_name=str(tmp / f"{split}.arrow"), new_fingerprint=f"ids-{split}",
                    desc=f"{self.name}: token ids {split}")
                files[split] = [Path(f["filename"]).name for f in out.cache_files]
            _write_json(tmp / "vocab.json", {"words": vocab})
            # the files' stamps, which the key holds only through the tokens' digest: for _remove_superseded
            _write_json(tmp / "meta.json", {"key": self._ids_key(), "origin": tok_meta["origin"], "files": files,
                                            "val_split": val_split, "lengths": tok_meta["lengths"],
                                            "source": tok_meta["key"]["source"]})

    # ----------------------------------------------------------------------------- embeddings

    def _embeddings(self, vocab: list[str]) -> tuple[torch.Tensor, dict]:
        """Word vectors for ``vocab``, cached next to the ids (atomic write)."""
        path, key = self.emb_path, self._emb_key()
        if path.is_file():
            try:
                payload = torch.load(path, weights_only=True)
                if payload.get("key") == key:
                    return payload["embeddings"], payload["stats"]
            except Exception as err:
                log.warning("ignoring unreadable embedding cache %s (%s)", path, type(err).__name__)
        embeddings, stats = load_word_vectors(vocab, self.glove_path, source=self.embedding_source, seed=self.seed)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                torch.save({"key": key, "embeddings": embeddings, "stats": stats}, handle)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        for entry in remove_superseded_files(path.parent, "embeddings-*.pt", keep=path):
            log.info("%s: removed the cache %s: its word-vector file has changed since", self.name, entry)
        return embeddings, stats

    # ----------------------------------------------------------------------------- Lightning

    @contextmanager
    def _progress_bars(self) -> Iterator[None]:
        import datasets

        was = datasets.is_progress_bar_enabled()
        (datasets.enable_progress_bars if self.progress else datasets.disable_progress_bars)()
        try:
            yield
        finally:
            (datasets.enable_progress_bars if was else datasets.disable_progress_bars)()

    def _open_ids(self) -> tuple[dict, list[str], dict[str, TokenIdSplit]]:
        """The id cache's record, vocabulary and splits (built first when missing)."""
        meta = _read_meta(self.ids_dir, self._ids_key())
        if meta is None:
            self.prepare_data()
            meta = _read_meta(self.ids_dir, self._ids_key())
        words = json.loads((self.ids_dir / "vocab.json").read_text())["words"]
        splits = {s: TokenIdSplit([self.ids_dir / f for f in meta["files"][s]]) for s in ("train", "val", "test")}
        return meta, words, splits

    def prepare_data(self) -> None:
        """Build whatever cache stage is missing (runs on one process)."""
        with self._progress_bars():
            tok_key = self._tok_key()
            tok_dir = self.tok_dir
            tok_meta = _read_meta(tok_dir, tok_key)
            ids_dir = self.ids_dir
            if _read_meta(ids_dir, self._ids_key()) is not None:
                return
            if tok_meta is None:
                if tok_dir.exists():  # a folder that is not a finished build for this key
                    shutil.rmtree(tok_dir)
                self._build_tokens(tok_dir)
                tok_meta = _read_meta(tok_dir, tok_key)
            else:
                log.info("%s: re-using tokenised cache %s", self.name, tok_dir)
            if ids_dir.exists():
                shutil.rmtree(ids_dir)
            self._build_ids(tok_dir, tok_meta, ids_dir)
            self._remove_superseded()

    def _remove_superseded(self) -> None:
        """Delete the token and id caches (of any task and settings) built from a CSV file changed since: none
        can be read again (their records hold each file's stamp; the change time only moves forward)."""
        for pattern, keep in (("*-tok-*", self.tok_dir), ("*-ids-*", self.ids_dir)):
            for folder in remove_superseded_folders(self.cache_dir, keep, pattern, record="meta.json"):
                log.info("%s: removed the cache %s: a file it was built from has changed since", self.name, folder)

    def _warn_unseen_classes(self, origin: str) -> None:
        """A warning naming the classes (as the files write them, from ``label_base``) that no
        training document has: ``num_classes`` or ``label_base`` may not be what the files hold
        (labels 1..3 read with ``num_classes=4``, ``label_base=0``), and the model keeps an output
        it can never learn."""
        seen = set(np.unique(np.asarray(self.train_set.labels)).tolist())
        unseen = [c for c in range(self.num_classes) if c not in seen]
        if unseen:
            base = self.hub_label_base if origin.startswith("hub") else self.label_base
            log.warning("%s: no training document has label %s of the %d classes (labels %d..%d, "
                        "num_classes=%d, label_base=%d): check task.num_classes and task.label_base", self.name,
                        ", ".join(str(c + base) for c in unseen), self.num_classes, base,
                        base + self.num_classes - 1, self.num_classes, base)

    def setup(self, stage: str | None = None) -> None:
        """Open the cached splits (building them if needed) and the word vectors."""
        if self.vocab is not None:
            return
        try:
            meta, words, splits = self._open_ids()
        except (pa.ArrowException, OSError, ValueError, KeyError) as err:
            # a cache damaged after it was built (a full disk, a file cut short): built again, once
            log.warning("%s: ignoring unreadable cache %s (%s); rebuilding it", self.name, self.ids_dir,
                        type(err).__name__)
            shutil.rmtree(self.ids_dir, ignore_errors=True)
            meta, words, splits = self._open_ids()
        self.vocab = Vocabulary(words)
        with self._progress_bars():
            self.embeddings, emb = self._embeddings(words)
        self.train_set, self.val_set, self.test_set = splits["train"], splits["val"], splits["test"]
        for split, data in splits.items():
            labels = data.labels
            if len(data) and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
                raise AutoAttendError(f"cache {self.ids_dir}: {split} labels outside 0..{self.num_classes - 1}; "
                                      f"delete the folder and re-run")
        self._warn_unseen_classes(meta["origin"])
        self.stats = {
            "origin": meta["origin"],
            "train_level": "document",
            "train": len(self.train_set),
            "val": len(self.val_set),
            "test": len(self.test_set),
            "train_total": len(self.train_set) + (len(self.val_set) if "fraction" in meta["val_split"] else 0),
            "val_total": len(self.val_set),
            "val_split": meta["val_split"],
            "max_len": self.max_len,
            "token_lengths": meta["lengths"],
            "vocab_size": len(self.vocab),
            "embedding_source": emb["source"],
            "embedding_dim": emb["dim"],
            "embedding_found": emb["found"],
            "embedding_oov": emb["oov"],
            "cache_path": str(self.ids_dir),
        }
        coverage = emb["found"] / max(1, emb["found"] + emb["oov"])
        val = meta["val_split"]
        val_source = (f"{val['source']}: {100 * val['fraction']:g} % with task.val_seed={val['seed']}"
                      if "fraction" in val else val["source"])
        log.info("%s (%s): train %d, val %d (%s), test %d; vocab %d; max_len %d; embeddings %s %d-d, "
                 "%.1f%% coverage", self.name, meta["origin"], len(self.train_set), len(self.val_set),
                 val_source, len(self.test_set), len(self.vocab), self.max_len, emb["source"],
                 emb["dim"], 100.0 * coverage)

"""Stanford Sentiment Treebank (SST-5 / SST-2) as a Lightning DataModule.

Sources, in order: the official PTB tree files under ``<data_dir>/sst/trees/{train,dev,test}.txt``;
else the Hugging Face hub dataset ``hub_name`` (sentences only). Processed tensors are cached in
one file under ``cache_dir``, keyed by everything that affects them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import torch

from src.data.embeddings import EMBEDDING_SOURCES, load_word_vectors, word_vectors_key
from src.data.hub import hub_class_number, load_hub_dataset, local_files_complete
from src.data.ptb import Tree, read_tree_file, tree_spans
from src.data.text import EncodedSplit, Vocabulary
from src.data.text_module import TextDataModule
from src.utils.errors import AutoAttendError, DataNotFoundError
from src.utils.io import atomic_target, build_prefix, file_stamp, remove_stale_builds, remove_superseded_files

log = logging.getLogger("src.data")

# Bump when the processing below changes, so old caches are not reused.
CACHE_VERSION = 1
SPLIT_FILES = {"train": "train.txt", "val": "dev.txt", "test": "test.txt"}
HUB_SPLITS = {"train": "train", "val": "validation", "test": "test"}


def sst2_label(fine: int) -> int | None:
    """SST-5 label -> SST-2 label: 0-1 negative (0), 3-4 positive (1), 2 (neutral) dropped (None)."""
    if fine <= 1:
        return 0
    if fine >= 3:
        return 1
    return None


class SSTDataModule(TextDataModule):
    """SST-5 (``num_classes=5``) or SST-2 (``num_classes=2``).

    ``train_level="phrase"`` trains on every labelled node of every training tree (SST-5: 318,582);
    ``"sentence"`` on the roots only. Validation and test are always sentences. After ``setup()``:
    ``vocab``, ``embeddings`` FloatTensor (V, E), ``num_classes``, ``train_set`` / ``val_set`` /
    ``test_set`` (``EncodedSplit``), ``stats``. Batches are ``pad_collate`` dicts.
    """

    def __init__(
        self,
        data_dir: str,
        num_classes: int,
        train_level: str = "phrase",
        max_len: int = 64,
        batch_size: int = 128,
        eval_batch_size: int = 512,
        num_workers: int = 0,
        glove_path: str | None = None,
        embedding_source: str = "auto",
        cache_dir: str = ".cache/autoattend",
        hub_name: str | None = None,
        seed: int = 0,
        train_subset: int | None = None,
        val_subset: int | None = None,
        test_words_last: bool = True,
    ):
        super().__init__()
        if num_classes not in (2, 5):
            raise AutoAttendError(f"num_classes must be 5 (SST-5) or 2 (SST-2); got {num_classes!r}")
        if train_level not in ("phrase", "sentence"):
            raise AutoAttendError(f"train_level must be 'phrase' or 'sentence'; got {train_level!r}")
        if embedding_source not in EMBEDDING_SOURCES:
            raise AutoAttendError(
                f"embedding_source must be one of {', '.join(EMBEDDING_SOURCES)}; got {embedding_source!r}"
            )
        if int(max_len) < 1:
            raise AutoAttendError(f"max_len must be >= 1; got {max_len!r}")
        for key, value in (("train_subset", train_subset), ("val_subset", val_subset)):
            if value is not None and int(value) < 1:
                raise AutoAttendError(f"{key} must be a positive integer or null; got {value!r}")
        self.data_dir = Path(data_dir).expanduser()
        self.num_classes = int(num_classes)
        self.train_level = train_level
        self.max_len = int(max_len)
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size)
        self.num_workers = int(num_workers)
        self.glove_path = str(glove_path) if glove_path else None
        self.embedding_source = embedding_source
        self.cache_dir = Path(cache_dir).expanduser()
        self.hub_name = hub_name
        self.seed = int(seed)
        self.train_subset = None if train_subset is None else int(train_subset)
        self.val_subset = None if val_subset is None else int(val_subset)
        # the vocabulary's order: the test sentences' own words after the others' (False: all ranked together,
        # as runs before 2026-12-07 were; src.choices.DATAMODULE_SETTINGS_BEFORE_THEY_EXISTED)
        self.test_words_last = bool(test_words_last)

        self.vocab: Vocabulary | None = None
        self.embeddings: torch.Tensor | None = None
        self.train_set: EncodedSplit | None = None
        self.val_set: EncodedSplit | None = None
        self.test_set: EncodedSplit | None = None
        self.stats: dict = {}
        self._built: dict | None = None

    def raw_lowercase(self) -> bool:
        """The trees keep case; a hub copy's sentences come lower-cased (then the vocabulary has no
        upper-case word, and new text is lower-cased to match it)."""
        return self.vocab is not None and not any(w != w.lower() for w in self.vocab.to_list())

    # ----------------------------------------------------------------------------- locations

    @property
    def tree_paths(self) -> dict[str, Path]:
        """Split name -> absolute path of its PTB tree file."""
        base = (self.data_dir / "sst" / "trees").resolve()
        return {split: base / name for split, name in SPLIT_FILES.items()}

    def _local_available(self) -> bool:
        return local_files_complete(self.tree_paths, tuple(SPLIT_FILES), "SST trees")

    def _cache_key(self) -> dict:
        """Everything that changes the processed tensors."""
        if self._local_available():
            source = {
                split: {"path": str(p), **file_stamp(p)}
                for split, p in self.tree_paths.items()
            }
        else:
            source = {"hub": self.hub_name}
        return {
            "version": CACHE_VERSION,
            "source": source,
            "num_classes": self.num_classes,
            "train_level": self.train_level,
            "max_len": self.max_len,
            **word_vectors_key(self.glove_path, self.embedding_source),
            "seed": self.seed,
            **({"test_words_last": True} if self.test_words_last else {}),  # the entries before it: False
        }

    @property
    def cache_path(self) -> Path:
        """The cache file for the current settings (a hash of ``_cache_key``)."""
        blob = json.dumps(self._cache_key(), sort_keys=True).encode()
        digest = hashlib.sha256(blob).hexdigest()[:16]
        return self.cache_dir / f"sst{self.num_classes}-{digest}.pt"

    # ----------------------------------------------------------------------------- building

    def _map_label(self, fine: int) -> int | None:
        return fine if self.num_classes == 5 else sst2_label(fine)

    def _from_trees(self) -> tuple[dict[str, list[list[str]]], dict[str, list[list[str]]], dict[str, list[int]], str]:
        """Read local tree files. Returns all sentences per split (for the vocabulary), the kept
        examples and their labels per split, and the training level used."""
        sentences: dict[str, list[list[str]]] = {}
        examples: dict[str, list[list[str]]] = {}
        labels: dict[str, list[int]] = {}
        for split, path in self.tree_paths.items():
            trees: list[Tree] = read_tree_file(path, num_labels=5)
            sentences[split] = []
            examples[split] = []
            labels[split] = []
            phrase = split == "train" and self.train_level == "phrase"
            for tree in trees:
                words = tree.leaves()
                sentences[split].append(words)
                nodes = tree_spans(tree) if phrase else [(0, len(words), tree.label)]
                for start, end, fine in nodes:
                    label = self._map_label(fine)
                    if label is not None and end > start:
                        examples[split].append(words[start:end])
                        labels[split].append(label)
        return sentences, examples, labels, self.train_level

    def _from_hub(self) -> tuple[dict[str, list[list[str]]], dict[str, list[list[str]]], dict[str, list[int]], str]:
        """Load ``hub_name`` (columns ``text``, ``label``); sentences only."""
        missing = ", ".join(str(p) for p in self.tree_paths.values() if not p.is_file())
        where = (
            f"put the official trainDevTestTrees_PTB files (train.txt, dev.txt, test.txt) in "
            f"{self.tree_paths['train'].parent} or set AUTOATTEND_DATA_DIR / paths.data_dir to a folder "
            f"holding sst/trees/"
        )
        if not self.hub_name:
            raise DataNotFoundError(f"SST tree files not found (looked for {missing}) and no hub_name is set; {where}")
        try:
            data = load_hub_dataset(self.hub_name)
        except Exception as err:  # any hub/network failure means the same thing to the user
            reason = " ".join(f"{type(err).__name__}: {err}".split())[:200]
            raise DataNotFoundError(
                f"SST tree files not found (looked for {missing}) and the Hugging Face hub dataset "
                f"'{self.hub_name}' was unreachable ({reason}); {where}"
            ) from None
        if self.train_level == "phrase":
            log.warning("hub dataset %s has sentences only: training on sentences, not phrases", self.hub_name)
        sentences: dict[str, list[list[str]]] = {}
        labels: dict[str, list[int]] = {}
        for split, hub_split in HUB_SPLITS.items():
            if hub_split not in data:
                raise AutoAttendError(
                    f"hub dataset '{self.hub_name}' has no '{hub_split}' split; expected train/validation/test"
                )
            table = data[hub_split]
            for column in ("text", "label"):
                if column not in table.column_names:
                    raise AutoAttendError(
                        f"hub dataset '{self.hub_name}' split '{hub_split}' has no column '{column}'; "
                        f"expected columns text, label"
                    )
            split_labels = [hub_class_number(y) for y in table["label"]]
            bad = [(y, raw) for y, raw in zip(split_labels, table["label"])
                   if y is None or not 0 <= y < self.num_classes]
            if bad:
                raise AutoAttendError(
                    f"hub dataset '{self.hub_name}' split '{hub_split}' column 'label' has value "
                    f"{bad[0][1] if bad[0][0] is not None else repr(bad[0][1])}; expected "
                    f"0..{self.num_classes - 1} for num_classes={self.num_classes}"
                )
            # a missing sentence (None) is no words, not the word "None"
            sentences[split] = [("" if text is None else str(text)).split() for text in table["text"]]
            labels[split] = split_labels
        return sentences, sentences, labels, "sentence"

    def _build(self) -> dict:
        """Parse, encode and embed; returns the cache payload."""
        local = self._local_available()
        if local:
            sentences, examples, labels, level = self._from_trees()
            origin = f"local:{self.tree_paths['train'].parent}"
        else:
            sentences, examples, labels, level = self._from_hub()
            origin = f"hub:{self.hub_name}"
        for split in ("train", "val", "test"):
            if not examples[split]:  # a run on it would train on nothing, or report 0 % of nothing
                where = (str(self.tree_paths[split]) if local
                         else f"hub dataset '{self.hub_name}' split '{HUB_SPLITS[split]}'")
                dropped = "" if self.num_classes == 5 else " with an SST-2 label (0-1 or 3-4; neutral 2 is dropped)"
                raise AutoAttendError(f"{where}: no sentence{dropped}; every split needs at least one")
        # Vocabulary over all three splits (the authors' choice; the embeddings are frozen), the test
        # sentences' own words last, so that they move no training or validation word's id (or random vector)
        if self.test_words_last:
            vocab = Vocabulary.build((s for split in ("train", "val") for s in sentences[split]),
                                     then=sentences["test"])
        else:
            vocab = Vocabulary.build(s for split in ("train", "val", "test") for s in sentences[split])
        embeddings, emb_stats = load_word_vectors(
            vocab.to_list(), self.glove_path, source=self.embedding_source, seed=self.seed
        )
        splits = {
            split: EncodedSplit.encode(vocab, examples[split], labels[split], self.max_len).state_dict()
            for split in ("train", "val", "test")
        }
        return {
            "key": self._cache_key(),
            "vocab": vocab.to_list(),
            "embeddings": embeddings,
            "splits": splits,
            "info": {"origin": origin, "train_level": level, "embedding": emb_stats},
        }

    def _write_cache(self, payload: dict) -> None:
        """Atomic write: a crash leaves either the old state or the complete new file."""
        path = self.cache_path
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_builds(path.parent)  # the temporary files of writes whose process was killed
        # named by this process, so that a later write knows a killed one's (a shared cache holds others')
        with atomic_target(path, prefix=build_prefix(path.name)) as tmp:
            with open(tmp, "wb") as handle:
                torch.save(payload, handle)
                handle.flush()
                os.fsync(handle.fileno())
        log.info("SST cache written to %s", path)
        self._remove_superseded_entries()

    def _remove_superseded_entries(self) -> None:
        """Delete the cache entries (of any settings) built from a tree or word-vector file changed since: none
        can be read again (the key holds each file's stamp; the change time only moves forward), and each is a
        full copy of the data and word vectors."""
        for entry in remove_superseded_files(self.cache_dir, "sst*-*.pt", keep=self.cache_path):
            log.info("removed the SST cache %s: a file it was built from has changed since", entry)

    def _read_cache(self) -> dict | None:
        path = self.cache_path
        if not path.is_file():
            return None
        try:
            payload = torch.load(path, weights_only=True)
        except Exception as err:
            log.warning("ignoring unreadable SST cache %s (%s); rebuilding", path, type(err).__name__)
            return None
        if not isinstance(payload, dict) or payload.get("key") != self._cache_key():
            log.warning("ignoring SST cache %s: its settings do not match; rebuilding", path)
            return None
        return payload

    def _load_or_build(self) -> dict:
        payload = self._read_cache()
        if payload is None:
            payload = self._build()
            self._write_cache(payload)
        return payload

    # ----------------------------------------------------------------------------- Lightning

    def prepare_data(self) -> None:
        """Build the cache file if it does not exist (runs on one process)."""
        if self._built is None and self._read_cache() is None:
            self._built = self._build()
            self._write_cache(self._built)

    def setup(self, stage: str | None = None) -> None:
        """Load the cache (building it if needed) and expose the splits."""
        if self.vocab is not None:
            return
        payload = self._built if self._built is not None else self._load_or_build()
        self._built = None
        self.vocab = Vocabulary.from_list(payload["vocab"])
        self.embeddings = payload["embeddings"]
        splits = {name: EncodedSplit.from_state_dict(state) for name, state in payload["splits"].items()}
        self.train_set = self._subset(splits["train"], self.train_subset, offset=0)
        self.val_set = self._subset(splits["val"], self.val_subset, offset=1)
        self.test_set = splits["test"]
        info = payload["info"]
        emb = info["embedding"]
        self.stats = {
            "origin": info["origin"],
            "train_level": info["train_level"],
            "train": len(self.train_set),
            "val": len(self.val_set),
            "test": len(self.test_set),
            "train_total": len(splits["train"]),
            "val_total": len(splits["val"]),
            "vocab_size": len(self.vocab),
            "embedding_source": emb["source"],
            "embedding_dim": emb["dim"],
            "embedding_found": emb["found"],
            "embedding_oov": emb["oov"],
            "cache_path": str(self.cache_path),
        }
        coverage = emb["found"] / max(1, emb["found"] + emb["oov"])
        log.info(
            "SST-%d (%s, train on %ss): train %d, val %d, test %d; vocab %d; embeddings %s %d-d, "
            "%d found, %d OOV (%.1f%% coverage)",
            self.num_classes, info["origin"], info["train_level"], len(self.train_set), len(self.val_set),
            len(self.test_set), len(self.vocab), emb["source"], emb["dim"], emb["found"], emb["oov"],
            100.0 * coverage,
        )

    def _subset(self, split: EncodedSplit, size: int | None, offset: int) -> EncodedSplit:
        """A seeded random subset of ``size`` rows (kept in their original order)."""
        if size is None or size >= len(split):
            return split
        generator = torch.Generator().manual_seed(self.seed + offset)
        indices = torch.randperm(len(split), generator=generator)[:size].sort().values
        return split.subset(indices)

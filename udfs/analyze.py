"""The clean stage's steps 1–3 for one document at a time: normalize, identify the language, compute the
quality signals and find the first check that drops it. Pure Python, no Spark: ``jobs.clean_steps.analyze``
runs it on each batch with ``mapInPandas``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from schemas.clean import ANALYSIS_FIELDS
from schemas.signals import SIGNALS
from udfs.lang import UNKNOWN, identify
from udfs.normalize import normalize
from udfs.quality import compute_signals
from udfs.quality_rules import Check, judge

COLUMNS = [f.name for f in ANALYSIS_FIELDS]


def _detail(check: Check, signals: dict) -> str | None:
    # A C4 sentence count is judged on the lines left: say how many went.
    if (check.rule, check.check) == ("c4_lines", "sentences"):
        return f"{int(check.value)} sentences left after removing {int(signals['c4_removed_lines'])} lines"
    return None


class Analyze:
    """Steps 1–3: ``__call__`` adds the ``schemas.clean.ANALYSIS_FIELDS`` columns to a batch of documents.

    Args:
        allowed_langs: language labels to keep (``udfs.lang.LABELS``).
        min_lang_score: below this probability the language is ``unknown``.
        rules: ordered ``(rule, params)`` with defaults filled in (``CleanConf.rule_params()``); each document
            gets the checks that fit its language (``udfs.quality_rules.applies``).
        unknown_lang: ``drop`` or ``keep`` a document of unknown language that the rules keep.
        chat_rules: the rules for chat records (``format`` chat; ``clean.chat_rules``); the web-page rules
            (``rules``) judge the others.
    """

    name = "analyze"

    def __init__(
        self,
        allowed_langs: Sequence[str],
        min_lang_score: float,
        rules: Sequence[tuple[str, Mapping]],
        unknown_lang: str = "drop",
        chat_rules: Sequence[tuple[str, Mapping]] = (),
    ):
        self.allowed = set(allowed_langs)
        self.min_lang_score = min_lang_score
        self.rules = rules
        self.unknown_lang = unknown_lang
        self.chat_rules = chat_rules

    def row(self, text: str, fmt: str | None = "text") -> dict:
        """The analysis of one text (``fmt``: its record's format; chat records get ``chat_rules``): every
        ``COLUMNS`` name mapped to its value."""
        norm = normalize(text)
        row = {
            "norm_text": norm,
            "lang": None,
            "lang_score": None,
            "drop_step": None,
            "drop_reason": None,
            "drop_value": None,
            "drop_detail": None,
            **{s.name: None for s in SIGNALS},
        }
        if not norm:
            row.update(
                drop_step="normalize",
                drop_reason="normalize:empty",
                drop_value=0.0,
                drop_detail="nothing visible left after normalization",
            )
            return row
        guess, score = identify(norm)
        lang = guess if score >= self.min_lang_score else UNKNOWN
        row.update(lang=lang, lang_score=score)
        if lang != UNKNOWN and lang not in self.allowed:
            row.update(compute_signals(norm, lang))
            row.update(
                drop_step="language",
                drop_reason=f"language:{lang}",
                drop_value=score,
                drop_detail=f"allowed languages: {sorted(self.allowed)}",
            )
            return row
        # The rules may remove lines (c4_lines): silver and the dedup steps get the text they leave, and
        # scores.quality the signals of the text they last judged.
        verdict = judge(norm, self.chat_rules if fmt == "chat" else self.rules, lang)
        row.update(verdict.signals, norm_text=verdict.text)
        if (check := verdict.check) is not None:
            row.update(
                drop_step="rules",
                drop_reason=check.reason,
                drop_value=float(check.value),
                drop_detail=_detail(check, verdict.signals),
            )
        elif lang == UNKNOWN and self.unknown_lang == "drop":
            # Junk (keyword stuffing, symbol soup) gets low confidence too; the rules explain it better, so
            # an unknown language only drops what the rules kept.
            row.update(
                drop_step="language",
                drop_reason=f"language:{UNKNOWN}",
                drop_value=score,
                drop_detail=f"best guess {guess} at {score:.3f} < min_lang_score {self.min_lang_score}",
            )
        return row

    def __call__(self, docs: pd.DataFrame) -> pd.DataFrame:
        """``docs`` (with a ``text`` and optionally a ``format`` column) and, beside each row, its analysis
        (``COLUMNS``)."""
        fmts = docs["format"] if "format" in docs.columns else ["text"] * len(docs)
        out = [self.row(text, fmt) for text, fmt in zip(docs["text"], fmts, strict=True)]
        docs = docs.reset_index(drop=True)
        if "messages" in docs.columns:
            # A chat record's messages are normalized like its text, so silver's two agree.
            docs = docs.assign(messages=[normalize_messages(m) for m in docs["messages"]])
        return pd.concat([docs, pd.DataFrame(out, columns=COLUMNS)], axis=1)


def normalize_messages(messages) -> list[dict] | None:
    """Each message's content normalized (``udfs.normalize``); None stays None (a text record)."""
    if messages is None:
        return None
    return [{"role": m["role"], "content": normalize(m["content"])} for m in messages]

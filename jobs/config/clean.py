"""The ``clean`` section: languages, rules, exact and near dedup, decontamination (blocklists and PII in
``jobs.config.pii``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from jobs.config.base import Strict
from jobs.config.pii import BlocklistConf, PiiConf


class RuleConf(Strict):
    """One heuristic rule of the clean stage: a name from ``udfs.quality_rules.KNOWN_RULES`` and threshold
    overrides."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


def _default_rules() -> list[RuleConf]:
    from udfs.quality_rules import DEFAULT_RULES

    return [RuleConf(name=name) for name, _ in DEFAULT_RULES]


class NearDedupConf(Strict):
    """MinHash LSH near-duplicate removal."""

    enabled: bool = True
    num_perm: int = Field(128, ge=8)
    # 20 x 6: a pair at Jaccard 0.8 becomes a candidate with probability 1 - (1 - 0.8**6)**20 = 0.998.
    bands: int = Field(20, ge=1)
    rows: int = Field(6, ge=1)
    ngram: int = Field(5, ge=1)
    threshold: float = Field(0.8, gt=0, le=1)
    max_bucket: int = Field(1000, ge=2, description="larger LSH buckets are linked as a star, not all pairs")
    seed: int = 42
    verify: Literal["exact", "estimate"] = "exact"

    @field_validator("rows")
    @classmethod
    def _fits(cls, rows: int, info) -> int:
        bands, num_perm = info.data.get("bands", 16), info.data.get("num_perm", 128)
        if bands * rows > num_perm:
            raise ValueError(f"bands x rows = {bands * rows} is more than num_perm = {num_perm}")
        return rows


class DecontamConf(Strict):
    """N-gram decontamination against ref.benchmarks."""

    enabled: bool = True
    ngram: int = Field(13, ge=3)
    action: Literal["drop", "flag"] = "drop"


class CleanConf(Strict):
    """The clean stage: normalization, language ID, rules, dedup, decontamination."""

    allowed_langs: list[str] = Field(
        default_factory=lambda: ["en"], min_length=1, description="languages to keep (udfs.lang.LABELS)"
    )
    min_lang_score: float = Field(0.5, ge=0, le=1, description="below it, a document's language is unknown")
    unknown_lang: Literal["drop", "keep"] = Field(
        "drop", description="what becomes of a document of unknown language that the rules keep"
    )
    rules: list[RuleConf] = Field(default_factory=_default_rules)
    # Gopher, C4 and FineWeb are heuristics for web pages (a chat turn of one line without end punctuation
    # is not boilerplate); chat records get only these, none by default.
    chat_rules: list[RuleConf] = Field(
        default_factory=list, description="the rules for chat records (format chat); default none"
    )
    exact_dedup: bool = True
    near_dedup: NearDedupConf = Field(default_factory=NearDedupConf)
    decontamination: DecontamConf = Field(default_factory=DecontamConf)
    blocklist: BlocklistConf = Field(default_factory=BlocklistConf)
    pii: PiiConf = Field(default_factory=PiiConf)

    @field_validator("allowed_langs")
    @classmethod
    def _known_langs(cls, langs: list[str]) -> list[str]:
        from udfs.lang import LABELS, TO_ISO_639_1, UNKNOWN

        for lang in langs:
            if lang == UNKNOWN:
                raise ValueError(f"{UNKNOWN!r} is not a language: set clean.unknown_lang: keep instead")
            if lang in TO_ISO_639_1:
                raise ValueError(f"{lang!r} is labelled {TO_ISO_639_1[lang]!r} (ISO 639-1): allow that")
            if lang not in LABELS:
                raise ValueError(
                    f"{lang!r} is not a label the language identifier gives: ISO 639-1 codes (en, ja, zh, …) "
                    "or, for languages without one, ISO 639-3 codes (see udfs/lang.py)"
                )
        return langs

    @field_validator("rules", "chat_rules")
    @classmethod
    def _known_rules(cls, rules: list[RuleConf]) -> list[RuleConf]:
        from udfs.quality_rules import validate_rules

        validate_rules([(r.name, r.params) for r in rules])  # ValueError names the unknown rule or param
        return rules

    def rule_params(self) -> list[tuple[str, dict]]:
        """Rules with their defaults filled in, in order."""
        from udfs.quality_rules import validate_rules

        return validate_rules([(r.name, r.params) for r in self.rules])

    def chat_rule_params(self) -> list[tuple[str, dict]]:
        """``chat_rules`` with their defaults filled in, in order."""
        from udfs.quality_rules import validate_rules

        return validate_rules([(r.name, r.params) for r in self.chat_rules])

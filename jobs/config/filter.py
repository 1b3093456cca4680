"""The ``filter`` section: filters that need scores, run after the scoring stages (``filter_perplexity``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from jobs.config.base import Strict


class PerplexityFilterConf(Strict):
    """Ziya2's automatic scoring: keep documents by their perplexity under a reference LM, by percentile band.

    ``keep_share`` (Ziya2) cuts at one percentile: ``head`` (kept) is the lower-perplexity share, ``tail``
    the rest. ``buckets`` (CCNet) cuts at the 33rd and 66th percentiles into ``head``, ``middle`` and
    ``tail`` and keeps ``keep_bands``.
    """

    enabled: bool = False
    model: str | None = Field(
        None,
        description="the reference LM: the id of a score.perplexity.pool model (scored on every document)",
    )
    method: Literal["keep_share", "buckets"] = "keep_share"
    keep_share: float = Field(0.7, gt=0, lt=1, description="keep_share: the lower-perplexity share kept")
    keep_bands: list[Literal["head", "middle", "tail"]] = Field(
        default_factory=lambda: ["head", "middle"], min_length=1, description="buckets: the bands kept"
    )
    scope: Literal["global", "domain", "lang"] = Field(
        "global", description="percentiles over the whole pool, per domain, or per language (CCNet)"
    )
    accuracy: int = Field(
        10_000, ge=100, description="approx_percentile accuracy: rank error at most 1/accuracy of a scope"
    )

    @field_validator("keep_bands")
    @classmethod
    def _distinct(cls, bands: list[str]) -> list[str]:
        if len(set(bands)) != len(bands):
            raise ValueError(f"bands repeat: {bands}")
        return bands


class FilterConf(Strict):
    """Filters on scores (after the scoring stages)."""

    perplexity: PerplexityFilterConf = Field(default_factory=PerplexityFilterConf)

"""The ``clean.pii`` and ``clean.blocklist`` sections: PII redaction and URL/domain blocklists."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from jobs.config.base import Strict

# Dolma's replacement tokens (udfs.pii.PLACEHOLDERS).
_EMAIL, _PHONE, _IP = "|||EMAIL_ADDRESS|||", "|||PHONE_NUMBER|||", "|||IP_ADDRESS|||"


class PiiTypeConf(Strict):
    """What happens to one PII type (``udfs.pii.TypeRule``)."""

    enabled: bool = True
    action: Literal["mask", "drop_document", "flag"] = Field(
        "mask",
        description="mask: replace with placeholder; drop_document: drop the document when it holds more "
        "than max_count (else mask); flag: count only, text unchanged",
    )
    placeholder: str
    max_count: int = Field(0, ge=0, description="drop_document: more than this many drop the document")


class PiiConf(Strict):
    """PII redaction, the clean stage's last step (off unless enabled; the demo profile turns it on)."""

    enabled: bool = False
    email: PiiTypeConf = Field(default_factory=lambda: PiiTypeConf(placeholder=_EMAIL))
    phone: PiiTypeConf = Field(default_factory=lambda: PiiTypeConf(placeholder=_PHONE))
    ipv4: PiiTypeConf = Field(default_factory=lambda: PiiTypeConf(placeholder=_IP))
    ipv6: PiiTypeConf = Field(default_factory=lambda: PiiTypeConf(placeholder=_IP))
    max_total: int | None = Field(
        5, ge=0, description="Dolma: a document with more matches than this (types not flagged) is dropped"
    )
    phone_formats: list[Literal["nanp", "international"]] = Field(
        default_factory=lambda: ["nanp"], min_length=1
    )
    public_ips_only: bool = Field(True, description="count only public IP addresses (datatrove's default)")

    @model_validator(mode="before")
    @classmethod
    def _default_placeholders(cls, data):
        # A type given without a placeholder keeps its default one.
        if isinstance(data, dict):
            defaults = {"email": _EMAIL, "phone": _PHONE, "ipv4": _IP, "ipv6": _IP}
            for t, ph in defaults.items():
                if isinstance(data.get(t), dict) and "placeholder" not in data[t]:
                    data = {**data, t: {**data[t], "placeholder": ph}}
        return data

    def rules(self) -> dict:
        """``udfs.pii.TypeRule`` per enabled type, in ``udfs.pii.TYPES`` order."""
        from udfs.pii import TYPES, TypeRule

        out = {}
        for t in TYPES:
            c: PiiTypeConf = getattr(self, t)
            if c.enabled:
                out[t] = TypeRule(c.action, c.placeholder, c.max_count)
        return out


_CATEGORY = re.compile(r"^[A-Za-z0-9_.-]+$")


class BlocklistFileConf(Strict):
    """One blocklist: a file of domains, URLs or URL substrings, or a UT1-style folder of categories."""

    path: str
    format: Literal["ut1", "domains", "urls", "url_substrings"] = "domains"
    category: str | None = Field(
        None, description="domains/urls/url_substrings: the drop reason's category (default: the file stem)"
    )
    categories: list[str] | None = Field(None, description="ut1: only these category folders (default: all)")

    @field_validator("category")
    @classmethod
    def _category_name(cls, v: str | None) -> str | None:
        if v is not None and not _CATEGORY.match(v):
            raise ValueError(f"{v!r}: a category is letters, digits, '_', '.' or '-'")
        return v

    @model_validator(mode="after")
    def _fits_format(self):
        if self.format == "ut1" and self.category is not None:
            raise ValueError(
                "a ut1 folder takes its categories from its sub-folders: use categories, not category"
            )
        if self.format != "ut1" and self.categories is not None:
            raise ValueError(f"categories is for ut1 folders; a {self.format} file takes one category")
        return self


class BlocklistConf(Strict):
    """URL and domain blocklists, the clean stage's first step (off while ``lists`` is empty)."""

    enabled: bool = True
    lists: list[BlocklistFileConf] = Field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.enabled and bool(self.lists)

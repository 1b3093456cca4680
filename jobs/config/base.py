"""The base of every profile section: strict pydantic models, and the error a bad profile raises."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfError(ValueError):
    """A profile could not be read or validated; the message names the file and the key."""


class Strict(BaseModel):
    """A profile section: unknown keys and wrong types are errors, also on assignment."""

    # Unknown keys are typos far more often than intent: refuse them.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

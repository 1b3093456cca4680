"""``--set key=value`` overrides: parsed as YAML, applied to the profile's data before it is validated."""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel

from jobs.config.base import ConfError


def parse_override(item: str) -> tuple[list[str], Any]:
    """``key=value`` → (the key's parts, the value read as YAML; as given when it is not YAML)."""
    if "=" not in item:
        raise ConfError(f"--set {item!r}: expected key=value, e.g. --set ingest.max_doc_bytes=200000")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfError(f"--set {item!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


# Maps whose keys themselves contain dots (spark.sql.shuffle.partitions): the rest of the key is one name.
_FREEFORM_MAPS = {("spark", "conf"), ("storage", "storage_options")}


def apply_override(data: dict, parts: list[str], value: Any, item: str) -> None:
    """Set ``value`` at the key ``parts`` in the profile's ``data``, creating sections on the way; ``item``
    is the ``--set`` argument, for messages."""
    for n in range(len(parts) - 1):
        if tuple(parts[: n + 1]) in _FREEFORM_MAPS:
            parts = [*parts[: n + 1], ".".join(parts[n + 1 :])]
            if not isinstance(value, str):
                value = str(value).lower() if isinstance(value, bool) else str(value)
            break
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfError(f"--set {item}: {'.'.join(parts[: i + 1])} is not an index of the list")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            raise ConfError(f"--set {item}: {'.'.join(parts[:i])} is a value, not a section")


def _declared_type(root: type[BaseModel], parts: list[str]) -> Any:
    """The type ``root`` declares at a dotted key (list items by index), None where no model says."""
    node: Any = root
    for part in parts:
        if get_origin(node) in (Union, types.UnionType):  # Optional[X]: X
            args = [a for a in get_args(node) if a is not type(None)]
            node = args[0] if len(args) == 1 else None
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = node.model_fields.get(part)
            node = field.annotation if field is not None else None
        elif get_origin(node) is list and part.isdigit():
            node = get_args(node)[0]
        else:
            return None
    return node


def list_value(root: type[BaseModel], parts: list[str], value: Any) -> Any:
    """A comma list given on the command line (``--set clean.allowed_langs=en,ja``) for a list setting."""
    declared = _declared_type(root, parts)
    if get_origin(declared) in (Union, types.UnionType):
        declared = next((a for a in get_args(declared) if get_origin(a) is list), None)
    if isinstance(value, str) and get_origin(declared) is list:
        return [v.strip() for v in value.split(",") if v.strip()]
    return value

"""Benchmark record layouts for ``load_refs``: dotted field paths, presets, and splits from file names.

Pure Python, no Spark: ``load_refs`` reads the (small) benchmark files on the driver and turns each record
into one target text with ``target_text``.

Field paths:

- ``a.b.c`` walks nested objects; a list on the way maps the rest of the path over its items, so
  ``choices.text`` reads ``{"choices": {"text": [...]}}`` and ``{"choices": [{"text": ...}, ...]}`` alike;
  a number picks one item (``choices.0``).
- ``p|q`` takes the first alternative that resolves (``question.stem|question``: ARC's original files nest
  the stem, the Hugging Face files do not).
- A path that resolves to nothing adds nothing; one that resolves to an object is an error (name a path
  inside it), never the object's ``repr``.

Target text: the values of the fields, in order, one per line. A list contributes one line per item (nested
lists are flattened), numbers and booleans are written as JSON spells them, blank strings are dropped and
the others lose trailing whitespace and leading newlines (leading spaces stay: code keeps its indentation).
The support passage is among them, and ``support_text`` gives its lines apart too.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

# Fields joined when neither a preset nor text_fields is named and no preset's layout is recognised.
GENERIC_FIELDS: tuple[str, ...] = ("question", "choices", "answer", "support")


@dataclass(frozen=True)
class Preset:
    """One benchmark layout.

    Attributes:
        name: what ``refs.benchmarks[].preset`` names.
        source: the Hugging Face dataset whose layout it is.
        text_fields: paths joined into the target text, in order.
        detect: paths a record of this layout has (all must resolve); empty: never detected, only named.
        id_field: the example id field, when the dataset has one.
        note: what the text leaves out, and why.
    """

    name: str
    source: str
    text_fields: tuple[str, ...]
    detect: tuple[str, ...]
    id_field: str | None = None
    note: str = ""


# In detection order: layouts with distinctive fields first. gsm8k and nq_open are the generic layout
# (question, answer), so a file with them gets the same text without naming a preset.
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "humaneval",
            "openai_humaneval",
            ("prompt", "canonical_solution"),
            ("prompt", "canonical_solution"),
            "task_id",
            "the unit tests (test) are the grader, not the example",
        ),
        Preset(
            "siqa",
            "social_i_qa",
            ("context", "question", "answerA", "answerB", "answerC"),
            ("context", "question", "answerA", "answerB", "answerC"),
            note="label (1-3) is an index",
        ),
        Preset("piqa", "piqa", ("goal", "sol1", "sol2"), ("goal", "sol1", "sol2"), note="label is an index"),
        Preset(
            "winogrande",
            "winogrande",
            ("sentence", "option1", "option2"),
            ("sentence", "option1", "option2"),
            note="answer (1 or 2) is an index",
        ),
        Preset("hellaswag", "hellaswag", ("ctx", "endings"), ("ctx", "endings"), "ind", "label is an index"),
        Preset(
            "arc",
            "ai2_arc, openbookqa, ARC's original files",
            ("question.stem|question_stem|question", "choices.text|question.choices.text"),
            ("answerKey", "choices.text|question.choices.text"),
            "id",
            "answerKey is a label",
        ),
        Preset(
            "mmlu",
            "cais/mmlu",
            ("question", "choices"),
            ("question", "choices", "answer", "subject"),
            note="answer is an index",
        ),
        Preset(
            "boolq",
            "boolq",
            ("question", "passage"),
            ("question", "passage", "answer"),
            note="answer is true/false",
        ),
        Preset(
            "trivia_qa",
            "trivia_qa",
            ("question", "answer.value"),
            ("question", "answer.value"),
            "question_id",
            "aliases and search results are left out",
        ),
        Preset("gsm8k", "gsm8k", ("question", "answer"), ()),
        Preset("nq_open", "nq_open", ("question", "answer"), (), note="answer is a list: one line each"),
        Preset("lambada", "lambada", ("text",), ("text",)),
    )
}

_SPLIT_WORDS = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "dev",
    "test": "test",
}
_SPLIT_ALIASES = {"val": "validation", "valid": "validation", "training": "train"}
_SPLIT_IN_NAME = re.compile(r"(?:^|(?<=[-_. ]))(" + "|".join(_SPLIT_WORDS) + r")(?=$|[-_. ])", re.I)
_SEGMENT = re.compile(r"[^.|\s]+")


class NotText(ValueError):
    """A field path resolved to an object: the caller names a path inside it."""


def check_path(path: str) -> str:
    """A field path as written in a profile, checked.

    Raises:
        ValueError: an empty alternative or segment (``a..b``, ``a|``), or whitespace in a segment.
    """
    for alt in path.split("|"):
        parts = alt.split(".")
        if not all(_SEGMENT.fullmatch(p) for p in parts):
            raise ValueError(
                f"{path!r} is not a field path: write dotted names (choices.text), alternatives with '|'"
            )
    return path


def _walk(node, parts: list[str]):
    for i, part in enumerate(parts):
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list):
            if part.isdigit():
                node = node[int(part)] if int(part) < len(node) else None
            else:
                found = [_walk(item, parts[i:]) for item in node]
                return [x for x in found if x is not None] or None
        else:
            return None
        if node is None:
            return None
    return node


def resolve(obj: dict, path: str):
    """The value at a field path (see the module docstring), or None when no alternative resolves."""
    for alt in path.split("|"):
        value = _walk(obj, alt.split("."))
        if value is not None and value != []:
            return value
    return None


def _lines(value, path: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        # Leading spaces stay: they are code's indentation (HumanEval's canonical_solution).
        return [value.rstrip().lstrip("\r\n")] if value.strip() else []
    if isinstance(value, (bool, int, float)):
        return [json.dumps(value)]
    if isinstance(value, list):
        return [line for item in value for line in _lines(item, path)]
    keys = ", ".join(f"{path.split('|')[0]}.{k}" for k in list(value)[:3])
    raise NotText(f"{path} is an object, not text: name a path inside it ({keys})")


def target_text(obj: dict, fields: list[str] | tuple[str, ...]) -> str:
    """The fields' values, in order, one per line (list items one per line too).

    Raises:
        NotText: a field resolved to an object (or a list of objects).
    """
    return "\n".join(line for f in fields for line in _lines(resolve(obj, f), f))


# Text fields that hold an example's support passage (the generic layout's ``support``, BoolQ's ``passage``):
# decontamination counts it as a target only on request (``clean.decontamination.support``).
SUPPORT_FIELDS: tuple[str, ...] = ("support", "passage")


def support_text(obj: dict, fields: list[str] | tuple[str, ...]) -> str | None:
    """The lines of the support fields among ``fields`` (a path any of whose alternatives is one of
    ``SUPPORT_FIELDS``), as ``target_text`` writes them inside the target text; None without one."""
    chosen = [f for f in fields if any(alt in SUPPORT_FIELDS for alt in f.split("|"))]
    return (target_text(obj, chosen) or None) if chosen else None


def detect_preset(obj: dict) -> Preset | None:
    """The first preset (in ``PRESETS`` order) whose ``detect`` paths all resolve in the record."""
    for preset in PRESETS.values():
        if preset.detect and all(resolve(obj, p) is not None for p in preset.detect):
            return preset
    return None


def split_alias(value: str) -> str:
    """A split name with its common aliases folded (val, valid → validation; training → train)."""
    v = value.strip()
    return _SPLIT_ALIASES.get(v.lower(), v)


def name_and_split(uri: str) -> tuple[str, str | None]:
    """Benchmark name and split told by a file's name.

    The name is the file name up to its first dot, less a split word (train, training, validation, valid,
    val, dev, test) standing between ``-``, ``_``, ``.`` or space; the last such word is the split. A name
    left empty (``gsm8k/test.jsonl``) is the parent folder's.

    Returns:
        ``(name, split)``; split is None when the name holds no split word.
    """
    base = os.path.basename(uri.rstrip("/"))
    stem = base.split(".")[0]
    matches = list(_SPLIT_IN_NAME.finditer(base))
    # Only a split word within the stem renames the benchmark; one after the first dot still gives the split.
    if not matches:
        return stem, None
    m = matches[-1]
    split = _SPLIT_WORDS[m.group(1).lower()]
    if m.end() <= len(stem):
        stem = (stem[: m.start()] + stem[m.end() :]).strip("-_. ")
        stem = re.sub(r"[-_ ]{2,}", lambda g: g.group(0)[0], stem)
    if not stem:
        stem = os.path.basename(os.path.dirname(uri.rstrip("/"))) or split
    return stem, split

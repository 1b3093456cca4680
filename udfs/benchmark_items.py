"""Benchmark examples as the ``evaluate`` stage scores them: a prompt, the gold answer and the choices.

Pure Python, no Spark: ``load_refs`` turns each record into one ``ref.eval_items`` row with ``eval_item``.
Each preset of ``udfs.benchmarks`` says where its prompt, choices and answer live (``LAYOUTS``); files read
with ``text_fields`` or the generic layout use the generic rule (``question``, ``choices``, ``answer``).

The answer of a multiple-choice example becomes an index into its choices: a letter (``B``), a choice
label (ARC's ``answerKey`` against ``choices.label``), a number (1-based for siqa and winogrande, whose
datasets count from 1; 0-based elsewhere, as mmlu, hellaswag and piqa), or the text of a choice. Without
choices the answer is text (a list: its first item). An example whose answer cannot be read has no eval
item; load_refs counts those.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from udfs.benchmarks import resolve


@dataclass(frozen=True)
class EvalItem:
    """What ``evaluate`` scores: the answer (``choices[answer_index]`` when there are choices) given the
    prompt, and, with choices, whether the gold one is the likeliest per byte."""

    prompt: str
    answer: str
    choices: list[str] | None = None
    answer_index: int | None = None


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return _text(value[0]) if value else None
    if isinstance(value, bool):
        return "true" if value else "false"
    # Leading spaces stay (code's indentation: HumanEval's canonical_solution), as in the target text.
    text = str(value).rstrip().lstrip("\r\n")
    return text if text.strip() else None


def _texts(value) -> list[str] | None:
    if not isinstance(value, list):
        return None
    out = [_text(v) for v in value]
    return out if out and all(out) else None


def _index(answer, choices: list[str], base: int, labels: list[str] | None = None) -> int | None:
    """The choice ``answer`` names: a label, a letter, a number counted from ``base``, or a choice's text."""
    if isinstance(answer, list):
        answer = answer[0] if answer else None
    if answer is None or isinstance(answer, bool):
        return None
    text = str(answer).strip()
    if labels and text in labels:
        return labels.index(text)
    if len(text) == 1 and text.isalpha() and text.isupper() and ord(text) - ord("A") < len(choices):
        return ord(text) - ord("A")
    if text.lstrip("-").isdigit():
        i = int(text) - base
        return i if 0 <= i < len(choices) else None
    return choices.index(text) if text in choices else None


def _mc(prompt, choices, answer, base: int = 0, labels=None) -> EvalItem | None:
    prompt, choices = _text(prompt) or "", _texts(choices)
    if not choices:
        return None
    i = _index(answer, choices, base, labels)
    return None if i is None else EvalItem(prompt, choices[i], choices, i)


def _generic(obj: dict) -> EvalItem | None:
    prompt = _text(resolve(obj, "question.stem|question|prompt"))
    choices = resolve(obj, "choices.text|choices|options")
    answer = resolve(obj, "answer|answerKey|label")
    if _texts(choices):
        return _mc(prompt, choices, answer, labels=_texts(resolve(obj, "choices.label")))
    answer = _text(answer)
    return EvalItem(prompt or "", answer) if answer else None


def _winogrande(obj: dict) -> EvalItem | None:
    # The option fills the blank; what follows the blank is part of each choice (a partial score).
    sentence = _text(obj.get("sentence")) or ""
    before, _, after = sentence.partition("_")
    options = [_text(obj.get("option1")), _text(obj.get("option2"))]
    if not all(options):
        return None
    return _mc(before.rstrip(), [f"{o}{after}" for o in options], obj.get("answer"), base=1)


def _lambada(obj: dict) -> EvalItem | None:
    words = (_text(obj.get("text")) or "").rsplit(" ", 1)
    return EvalItem(words[0], words[1]) if len(words) == 2 else None


def _boolq(obj: dict) -> EvalItem | None:
    prompt = "\n".join(filter(None, [_text(obj.get("passage")), _text(obj.get("question"))]))
    answer = obj.get("answer")
    if not isinstance(answer, bool):
        return None
    return EvalItem(prompt, "yes" if answer else "no", ["no", "yes"], int(answer))


def _text_answer(prompt_path: str, answer_path: str) -> Callable[[dict], EvalItem | None]:
    def item(obj: dict) -> EvalItem | None:
        answer = _text(resolve(obj, answer_path))
        return EvalItem(_text(resolve(obj, prompt_path)) or "", answer) if answer else None

    return item


# Preset name → how its records become eval items (presets not named here use the generic rule).
LAYOUTS: dict[str, Callable[[dict], EvalItem | None]] = {
    "humaneval": _text_answer("prompt", "canonical_solution"),
    "siqa": lambda o: _mc(
        "\n".join(filter(None, [_text(o.get("context")), _text(o.get("question"))])),
        [o.get("answerA"), o.get("answerB"), o.get("answerC")],
        o.get("label"),
        base=1,
    ),
    "piqa": lambda o: _mc(o.get("goal"), [o.get("sol1"), o.get("sol2")], o.get("label"), base=0),
    "winogrande": _winogrande,
    "hellaswag": lambda o: _mc(o.get("ctx"), o.get("endings"), o.get("label"), base=0),
    "arc": lambda o: _mc(
        resolve(o, "question.stem|question_stem|question"),
        resolve(o, "choices.text|question.choices.text"),
        o.get("answerKey"),
        labels=_texts(resolve(o, "choices.label|question.choices.label")),
    ),
    "mmlu": lambda o: _mc(o.get("question"), o.get("choices"), o.get("answer"), base=0),
    "boolq": _boolq,
    "trivia_qa": _text_answer("question", "answer.value"),
    "gsm8k": _text_answer("question", "answer"),
    "nq_open": _text_answer("question", "answer"),
    "lambada": _lambada,
}


def eval_item(obj: dict, preset: str | None) -> EvalItem | None:
    """The record's eval item under its preset's layout (None: the generic rule), or None when the
    record has no readable answer."""
    return LAYOUTS.get(preset or "", _generic)(obj)

"""load_refs' benchmark files: compressed files, dotted paths, splits, presets, and the stage end to end."""

from __future__ import annotations

import argparse
import gzip
import io
import json
from pathlib import Path

import pytest
import zstandard

from jobs import load_refs
from jobs.config import ConfError, load_conf
from jobs.runtime import EXIT_GATE, EXIT_OK, EXIT_USAGE, run_job
from jobs.tables import EmbeddedLakehouse
from schemas import audit as audit_schemas
from schemas import ref
from tests.conftest import write_conf
from udfs.benchmarks import PRESETS, detect_preset, name_and_split, target_text


def _conf(tmp_path: Path, benchmarks: list[dict]):
    inputs = [{"name": "x", "path": str(tmp_path / "none")}]
    return write_conf(tmp_path / "c.yaml", tmp_path / "wh", inputs, {"refs": {"benchmarks": benchmarks}})


def _read(tmp_path: Path, benchmarks: list[dict]):
    conf = load_conf(_conf(tmp_path, benchmarks))
    return load_refs.read_benchmarks(conf, conf.source_file)


def _jsonl(records: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


MMLU = [
    {
        "question": "2 + 2 = ?",
        "subject": "elementary_mathematics",
        "choices": ["3", "4", "5", "22"],
        "answer": 1,
    },
    {"question": "Größte Stadt?", "subject": "geography", "choices": ["Berlin", "Bonn"], "answer": 0},
    {"question": "H2O is?", "subject": "chemistry", "choices": ["water", "salt"], "answer": 0},
]


# ------------------------------------------------------------------------------------ compressed files


@pytest.mark.parametrize("ext, compress", [(".gz", gzip.compress), (".zst", zstandard.compress)])
def test_compressed_files_are_read(tmp_path, ext, compress):
    path = tmp_path / f"mmlu_test.jsonl{ext}"
    path.write_bytes(compress(_jsonl(MMLU[:2]) + b"\n" + _jsonl(MMLU[2:])))  # a blank line is no example
    rows, problems, notes = _read(tmp_path, [{"path": str(path)}])
    assert problems == []
    assert [(r["benchmark"], r["split"], r["example_id"], r["text"]) for r in rows] == [
        ("mmlu", "test", "mmlu_test-1", "2 + 2 = ?\n3\n4\n5\n22"),
        ("mmlu", "test", "mmlu_test-2", "Größte Stadt?\nBerlin\nBonn"),
        ("mmlu", "test", "mmlu_test-4", "H2O is?\nwater\nsalt"),
    ]
    assert notes == [f"mmlu_test.jsonl{ext}: test 3; preset mmlu (detected)"]


def test_decode_failures_name_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(_jsonl(MMLU[:1]) + b'{"question": "caf\xe9", "answer": "x"}\n' + _jsonl(MMLU[2:]))
    hidden = tmp_path / "hidden.jsonl"  # gzip data under a plain name: read as gzip
    hidden.write_bytes(gzip.compress(_jsonl(MMLU)))
    cut = tmp_path / "cut.jsonl.gz"  # truncated stream: the lines before the damage still count
    whole = gzip.compress(_jsonl(MMLU * 200))
    cut.write_bytes(whole[: len(whole) // 2])
    rows, problems, _ = _read(tmp_path, [{"path": str(p)} for p in (bad, hidden, cut)])
    assert problems[0] == f"{bad}:2: not UTF-8 (byte 18 of the line is b'\\xe9')"
    assert len(problems) == 2 and problems[1].startswith(f"{cut}:")
    assert "unreadable from this line on (EOFError" in problems[1]
    n_cut = int(problems[1].split(":")[1]) - 1
    assert sum(r["source_file"] == str(bad) for r in rows) == 2
    # The gzip data under a plain name is told by its magic number and read whole.
    assert sum(r["source_file"] == str(hidden) for r in rows) == len(MMLU)
    assert sum(r["source_file"] == str(cut) for r in rows) == n_cut > 0


def test_stage_fails_on_a_bad_line_with_file_and_line(tmp_path, capsys):
    path = tmp_path / "b.jsonl.gz"
    path.write_bytes(gzip.compress(_jsonl(MMLU[:1]) + b'{"question": "\xff"}\n'))
    args = argparse.Namespace(
        conf=str(_conf(tmp_path, [{"path": str(path)}])), overrides=[], run_id=None, verbose=False
    )
    assert run_job(load_refs.STAGE, args, load_refs.load_refs) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"1 benchmark records could not be read: {path}:2: not UTF-8" in err


# ------------------------------------------------------------------------------------ field paths


ARC_HF = {
    "id": "Mercury_7175875",
    "question": "Which gas do plants take in?",
    "choices": {"text": ["oxygen", "carbon dioxide"], "label": ["A", "B"]},
    "answerKey": "B",
}
ARC_ORIGINAL = {
    "id": "Mercury_1",
    "question": {
        "stem": "What melts ice?",
        "choices": [{"text": "heat", "label": "A"}, {"text": "cold", "label": "B"}],
    },
    "answerKey": "A",
}
OPENBOOKQA = {
    "id": "7-980",
    "question_stem": "The sun is responsible for",
    "choices": {"text": ["puppies learning new tricks", "plants sprouting"], "label": ["A", "B"]},
    "answerKey": "B",
}


def test_dotted_paths_join_lists_one_item_per_line(tmp_path):
    path = tmp_path / "arc.jsonl"
    path.write_bytes(_jsonl([ARC_HF, {**ARC_HF, "id": "x2", "choices": {"text": [], "label": []}}]))
    fields = ["question", "choices.text", "choices.label.1"]
    rows, problems, notes = _read(tmp_path, [{"path": str(path), "text_fields": fields}])
    assert problems == []
    assert [(r["example_id"], r["text"]) for r in rows] == [
        ("Mercury_7175875", "Which gas do plants take in?\noxygen\ncarbon dioxide\nB"),
        ("x2", "Which gas do plants take in?"),
    ]
    assert notes == ["arc.jsonl: test 2; text_fields"]


def test_an_object_is_never_written_as_text(tmp_path):
    path = tmp_path / "arc.jsonl"
    path.write_bytes(_jsonl([ARC_HF]))
    rows, problems, _ = _read(tmp_path, [{"path": str(path), "text_fields": ["question", "choices"]}])
    assert rows == []
    assert problems == [
        f"{path}:1: choices is an object, not text: name a path inside it (choices.text, choices.label)"
    ]


def test_paths_map_over_lists_and_take_the_first_alternative():
    fields = PRESETS["arc"].text_fields
    assert target_text(ARC_ORIGINAL, fields) == "What melts ice?\nheat\ncold"
    assert (
        target_text(OPENBOOKQA, fields)
        == "The sun is responsible for\npuppies learning new tricks\nplants sprouting"
    )
    assert target_text({"a": [[1, 2.5], [True, None, ""]]}, ["a", "missing.path"]) == "1\n2.5\ntrue"


# ------------------------------------------------------------------------------------ splits


def test_split_from_conf_field_and_file_name(tmp_path):
    (tmp_path / "gsm8k").mkdir()
    files = {
        "hellaswag_val.jsonl": [{"ctx": "A man", "endings": ["runs", "sits"], "label": "0"}],
        "gsm8k/train.jsonl": [{"question": "1+1?", "answer": "#### 2"}],
        "ARC-Easy-Dev.jsonl.gz": [ARC_HF],
        "fields.jsonl": [
            {"question": "q1", "split": "val"},
            {"question": "q2", "split": "train"},
            {"question": "q3"},
        ],
        "pinned_test.jsonl": [{"question": "q4", "split": "train"}],
    }
    for name, records in files.items():
        data = _jsonl(records)
        (tmp_path / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    rows, problems, _ = _read(
        tmp_path,
        [
            {"path": str(tmp_path / "hellaswag_val.jsonl")},
            {"path": str(tmp_path / "gsm8k" / "*.jsonl")},
            {"path": str(tmp_path / "ARC-*")},
            {"path": str(tmp_path / "fields.jsonl")},
            {"path": str(tmp_path / "pinned_test.jsonl"), "split": "validation", "benchmark": "pinned"},
        ],
    )
    assert problems == []
    assert [(r["benchmark"], r["split"], r["example_id"], r["text"]) for r in rows] == [
        ("hellaswag", "validation", "hellaswag_val-1", "A man\nruns\nsits"),  # file name
        ("gsm8k", "train", "train-1", "1+1?\n#### 2"),  # file name, benchmark from the folder
        ("ARC-Easy", "dev", "Mercury_7175875", "Which gas do plants take in?\noxygen\ncarbon dioxide"),
        ("fields", "validation", "fields-1", "q1"),  # the record's split field, alias folded
        ("fields", "train", "fields-2", "q2"),
        ("fields", "test", "fields-3", "q3"),  # nothing says: test
        ("pinned", "validation", "pinned_test-1", "q4"),  # the profile wins over field and name
    ]


@pytest.mark.parametrize(
    "uri, expect",
    [
        ("/d/mmlu_test.jsonl.gz", ("mmlu", "test")),
        ("/d/gsm8k/test.jsonl", ("gsm8k", "test")),
        ("/d/ARC-Challenge-Test.jsonl", ("ARC-Challenge", "test")),
        ("/d/boolq_training_x.jsonl", ("boolq_x", "train")),
        ("/d/piqa.valid.jsonl", ("piqa", "validation")),
        ("/d/latest_contest.jsonl", ("latest_contest", None)),
    ],
)
def test_name_and_split_from_file_name(uri, expect):
    assert name_and_split(uri) == expect


# ------------------------------------------------------------------------------------ presets

# One example per preset, in the Hugging Face dataset's layout, and the target text it gives.
PRESET_EXAMPLES = {
    "gsm8k": (
        {"question": "Tom has 3 apples.", "answer": "3 + 2 = 5\n#### 5"},
        "Tom has 3 apples.\n3 + 2 = 5\n#### 5",
    ),
    "mmlu": (MMLU[0], "2 + 2 = ?\n3\n4\n5\n22"),
    "arc": (ARC_HF, "Which gas do plants take in?\noxygen\ncarbon dioxide"),
    "hellaswag": (
        {
            "ind": 24,
            "activity_label": "Roof",
            "ctx": "A man is on a roof.",
            "endings": ["He falls.", "He waves."],
            "label": "1",
            "split": "val",
        },
        "A man is on a roof.\nHe falls.\nHe waves.",
    ),
    "piqa": (
        {"goal": "Open a jar", "sol1": "Twist the lid.", "sol2": "Shake the jar.", "label": 0},
        "Open a jar\nTwist the lid.\nShake the jar.",
    ),
    "siqa": (
        {
            "context": "Kai gave Ash a gift.",
            "question": "How does Ash feel?",
            "answerA": "happy",
            "answerB": "sad",
            "answerC": "bored",
            "label": "1",
        },
        "Kai gave Ash a gift.\nHow does Ash feel?\nhappy\nsad\nbored",
    ),
    "boolq": (
        {"question": "is the sky blue", "passage": "The sky is blue by day.", "answer": True},
        "is the sky blue\nThe sky is blue by day.",
    ),
    "winogrande": (
        {
            "sentence": "The cup broke because _ was fragile.",
            "option1": "the cup",
            "option2": "the table",
            "answer": "1",
        },
        "The cup broke because _ was fragile.\nthe cup\nthe table",
    ),
    "trivia_qa": (
        {
            "question": "Capital of France?",
            "question_id": "tc_1",
            "answer": {"value": "Paris", "aliases": ["Paris", "Paree"]},
        },
        "Capital of France?\nParis",
    ),
    "nq_open": (
        {"question": "who wrote hamlet", "answer": ["Shakespeare", "William Shakespeare"]},
        "who wrote hamlet\nShakespeare\nWilliam Shakespeare",
    ),
    "lambada": (
        {"text": "She opened the door and saw her brother", "domain": None},
        "She opened the door and saw her brother",
    ),
    "humaneval": (
        {
            "task_id": "HumanEval/0",
            "prompt": "def add(a, b):\n",
            "canonical_solution": "    return a + b\n",
            "test": "assert add(1, 2) == 3",
            "entry_point": "add",
        },
        "def add(a, b):\n    return a + b",
    ),
}
IDS = {"arc": "Mercury_7175875", "hellaswag": "24", "trivia_qa": "tc_1", "humaneval": "HumanEval/0"}


def test_every_preset_has_an_example():
    assert set(PRESET_EXAMPLES) == set(PRESETS)


@pytest.mark.parametrize("name", list(PRESET_EXAMPLES))
def test_preset_text_named_and_detected(tmp_path, name):
    record, text = PRESET_EXAMPLES[name]
    path = tmp_path / f"{name}_test.jsonl"
    path.write_bytes(_jsonl([record]))
    (named,), problems, _ = _read(tmp_path, [{"path": str(path), "preset": name}])
    assert problems == []
    assert (named["benchmark"], named["split"], named["example_id"], named["text"]) == (
        name,
        "validation" if name == "hellaswag" else "test",  # hellaswag records carry their split ("val")
        IDS.get(name, f"{name}_test-1"),
        text,
    )
    # Only BoolQ's layout has a support passage (its passage).
    assert named["support"] == ("The sky is blue by day." if name == "boolq" else None)
    (auto,), _, notes = _read(tmp_path, [{"path": str(path)}])
    assert auto == named
    # gsm8k and nq_open share the generic layout (question, answer): no preset needed, same text.
    detected = detect_preset(record)
    assert (detected.name if detected else None) == (None if name in ("gsm8k", "nq_open") else name)


def test_generic_fields_when_no_preset_fits(tmp_path):
    path = tmp_path / "quiz.jsonl"
    path.write_bytes(
        _jsonl(
            [{"id": "q1", "question": "Why?", "choices": ["a", "b"], "answer": "a", "support": "Because."}]
        )
    )
    (row,), problems, notes = _read(tmp_path, [{"path": str(path)}])
    assert (row["example_id"], row["text"]) == ("q1", "Why?\na\nb\na\nBecause.")
    # The support passage is also kept apart: decontamination counts it as a target only on request.
    assert row["support"] == "Because."
    assert notes == ["quiz.jsonl: test 1; generic fields (no preset detected)"]


@pytest.mark.parametrize(
    "entry, message",
    [
        (
            {"preset": "mmlu-pro"},
            "refs.benchmarks[0].preset: Value error, unknown preset 'mmlu-pro'; known presets: auto, ",
        ),
        (
            {"preset": "arc", "text_fields": ["question"]},
            "refs.benchmarks[0].text_fields: Value error, name a preset (arc) or text_fields, not both",
        ),
        (
            {"text_fields": ["choices..text"]},
            "refs.benchmarks[0].text_fields: Value error, 'choices..text' is not a field path",
        ),
    ],
)
def test_benchmark_conf_errors(tmp_path, entry, message):
    with pytest.raises(ConfError) as exc:
        load_conf(_conf(tmp_path, [{"path": "x.jsonl", **entry}]))
    assert message in str(exc.value)


# ------------------------------------------------------------------------------------ the stage


def test_stage_loads_splits_and_prints_each_file(spark, tmp_path):
    (tmp_path / "mmlu_test.jsonl.gz").write_bytes(gzip.compress(_jsonl(MMLU)))
    (tmp_path / "mmlu_validation.jsonl.gz").write_bytes(gzip.compress(_jsonl(MMLU[:1])))
    (tmp_path / "ARC-Easy-Train.jsonl").write_bytes(_jsonl([ARC_HF, ARC_ORIGINAL]))
    conf = _conf(
        tmp_path,
        [{"path": str(tmp_path / "mmlu_*.jsonl.gz")}, {"path": str(tmp_path / "ARC-*"), "preset": "arc"}],
    )
    args = argparse.Namespace(conf=str(conf), overrides=[], run_id="refs-1", verbose=False)
    out = io.StringIO()
    assert run_job(load_refs.STAGE, args, load_refs.load_refs, out=out) == EXIT_OK
    got = EmbeddedLakehouse(spark, str(tmp_path / "wh")).read(ref.BENCHMARKS)
    rows = sorted((r["benchmark"], r["split"], r["example_id"], r["text"]) for r in got.collect())
    assert rows == [
        ("ARC-Easy", "train", "Mercury_1", "What melts ice?\nheat\ncold"),
        ("ARC-Easy", "train", "Mercury_7175875", "Which gas do plants take in?\noxygen\ncarbon dioxide"),
        ("mmlu", "test", "mmlu_test-1", "2 + 2 = ?\n3\n4\n5\n22"),
        ("mmlu", "test", "mmlu_test-2", "Größte Stadt?\nBerlin\nBonn"),
        ("mmlu", "test", "mmlu_test-3", "H2O is?\nwater\nsalt"),
        ("mmlu", "validation", "mmlu_validation-1", "2 + 2 = ?\n3\n4\n5\n22"),
    ]
    summary = out.getvalue()
    assert "6 benchmark examples (ARC-Easy 2, mmlu 4) -> ref.benchmarks" in summary
    assert "6 of them with a readable answer -> ref.eval_items" in summary
    items = EmbeddedLakehouse(spark, str(tmp_path / "wh")).read(ref.EVAL_ITEMS).collect()
    got = {r["example_id"]: (r["prompt"], r["answer"], r["choices"], r["answer_index"]) for r in items}
    assert got["Mercury_1"] == ("What melts ice?", "heat", ["heat", "cold"], 0)  # ARC's original layout
    assert got["Mercury_7175875"] == (
        "Which gas do plants take in?",
        "carbon dioxide",
        ["oxygen", "carbon dioxide"],
        1,
    )
    assert got["mmlu_test-2"] == ("Größte Stadt?", "Berlin", ["Berlin", "Bonn"], 0)
    assert summary.endswith(
        "  benchmark files:\n"
        "    mmlu_test.jsonl.gz: test 3; preset mmlu (detected)\n"
        "    mmlu_validation.jsonl.gz: validation 1; preset mmlu (detected)\n"
        "    ARC-Easy-Train.jsonl: train 2; preset arc\n"
        "  splits: targets (refs.target_splits): train 2; held out (refs.eval_split): test 3; "
        "unused (neither): validation 1\n"
    )
    # mmlu_validation-1 repeats mmlu_test-1, but validation is no target split: the held-out check passes.
    gate = (
        EmbeddedLakehouse(spark, str(tmp_path / "wh"))
        .read(audit_schemas.EXPECTATIONS)
        .filter("run_id = 'refs-1' and table_name = 'ref.benchmarks'")
        .first()
    )
    held_out = [e for e in json.loads(gate["results_json"]) if e["column"] == ref.EVAL_OVERLAP]
    # A passing suite is judged in BOOLEAN_ONLY form (jobs.gates), which carries no counts.
    assert gate["success"] and [e["success"] for e in held_out] == [True]


def test_stage_refuses_a_target_whose_text_is_in_the_eval_split(spark, tmp_path, capsys):
    """Planted: a validation example repeats a test one, and a train example repeats another up to case
    and spaces. With validation among the target splits, the gate refuses both; nothing is published."""
    (tmp_path / "mmlu_test.jsonl").write_bytes(_jsonl(MMLU))
    (tmp_path / "mmlu_validation.jsonl").write_bytes(_jsonl(MMLU[:1]))
    (tmp_path / "quiz_train.jsonl").write_bytes(
        _jsonl([{"question": "h2o  IS?", "choices": ["Water", "salt"]}])
    )
    conf = _conf(tmp_path, [{"path": str(tmp_path / "*.jsonl"), "text_fields": ["question", "choices"]}])
    args = argparse.Namespace(
        conf=str(conf), overrides=["refs.target_splits=train,validation"], run_id="refs-2", verbose=False
    )
    assert run_job(load_refs.STAGE, args, load_refs.load_refs, out=io.StringIO()) == EXIT_GATE
    err = capsys.readouterr().err
    assert "gate FAILED: ref.benchmarks (suite ref.benchmarks.suite): 1 of 11 expectations failed on 5" in err
    assert "x expect_column_values_to_be_null  column=_eval_overlap  unexpected=2  examples=" in err
    lh = EmbeddedLakehouse(spark, str(tmp_path / "wh"))
    gate = lh.read(audit_schemas.EXPECTATIONS).filter("run_id = 'refs-2'").first()
    (failed,) = [e for e in json.loads(gate["results_json"]) if not e["success"]]
    assert (failed["column"], failed["unexpected_count"], sorted(failed["examples"])) == (
        ref.EVAL_OVERLAP,
        2,
        ["mmlu|test|mmlu_test-1", "mmlu|test|mmlu_test-3"],
    )
    assert lh.read(ref.BENCHMARKS).isEmpty()


@pytest.mark.parametrize(
    "preset, record, expected",
    [
        (
            "siqa",
            {"context": "c", "question": "q?", "answerA": "a", "answerB": "b", "answerC": "x", "label": "2"},
            ("c\nq?", "b", ["a", "b", "x"], 1),
        ),
        ("piqa", {"goal": "g", "sol1": "s1", "sol2": "s2", "label": 1}, ("g", "s2", ["s1", "s2"], 1)),
        (
            "winogrande",
            {"sentence": "Tom gave _ the ball.", "option1": "Ann", "option2": "Bo", "answer": "2"},
            ("Tom gave", "Bo the ball.", ["Ann the ball.", "Bo the ball."], 1),
        ),
        (
            "hellaswag",
            {"ctx": "He opens", "endings": ["a door", "a sky"], "label": "0"},
            ("He opens", "a door", ["a door", "a sky"], 0),
        ),
        (
            "boolq",
            {"question": "is it?", "passage": "p", "answer": True},
            ("p\nis it?", "yes", ["no", "yes"], 1),
        ),
        (
            "trivia_qa",
            {"question": "who?", "answer": {"value": "Ann", "aliases": ["A"]}},
            ("who?", "Ann", None, None),
        ),
        ("nq_open", {"question": "when?", "answer": ["1990", "in 1990"]}, ("when?", "1990", None, None)),
        ("lambada", {"text": "he opened the door"}, ("he opened the", "door", None, None)),
        (
            "humaneval",
            {"prompt": "def f():", "canonical_solution": "  return 1"},
            ("def f():", "  return 1", None, None),
        ),
        (None, {"question": "q", "choices": ["x", "y", "z"], "answer": "C"}, ("q", "z", ["x", "y", "z"], 2)),
        (None, {"question": "q", "choices": ["x", "y"], "answer": "y"}, ("q", "y", ["x", "y"], 1)),
        (None, {"question": "2+2", "answer": 4}, ("2+2", "4", None, None)),
    ],
)
def test_eval_items_per_preset(preset, record, expected):
    from udfs.benchmark_items import eval_item

    item = eval_item(record, preset)
    assert (item.prompt, item.answer, item.choices, item.answer_index) == expected


def test_eval_item_without_a_readable_answer_is_none():
    from udfs.benchmark_items import eval_item

    assert eval_item({"question": "q", "choices": ["x", "y"], "answer": "E"}, None) is None  # no such choice
    assert eval_item({"question": "q", "choices": ["x", "y"], "answer": 2}, "mmlu") is None  # out of range
    assert eval_item({"question": "q"}, None) is None

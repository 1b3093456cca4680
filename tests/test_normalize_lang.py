"""Normalization and language ID on crafted text, and the clean stage's language policy."""

from __future__ import annotations

import argparse
import io
import json
from collections import Counter

import pytest
import yaml

from jobs import clean, load_refs
from jobs.runtime import EXIT_OK, run_job
from schemas import silver
from tests.test_clean import ENGLISH
from udfs.lang import LABELS, NO_ISO_639_1, UNKNOWN, _identifier, identify, to_iso_639_1
from udfs.normalize import normalize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<p>Hello&nbsp;&amp; <b>world</b></p>", "Hello & world"),
        ("a < b > c and x<y", "a < b > c and x<y"),  # not markup: kept
        ("Cafe\u0301 cre\u0300me", "Café crème"),  # NFC composes
        ("zero\u200bwidth soft\u00adhyphen \ufeffbom", "zerowidth softhyphen bom"),
        ("bell\x07 and\x00nul", "bell andnul"),
        ("  many   spaces\tand\ttabs  ", "many spaces and tabs"),
        ("line one  \r\nline two\r\n\r\n\r\n\r\nline three", "line one\nline two\n\nline three"),
        ("<!-- a comment --><script>x</script>text", "x text"),
        ("   \n\t \u200b ", ""),
    ],
)
def test_normalize(raw, expected):
    assert normalize(raw) == expected


def test_escaped_markup_is_text():
    # Tags go before entities are decoded: markup a page shows as text (code samples) stays.
    text = "<div>Use &lt;b&gt; for bold</div>\n\n\n  with\u00a0spaces "
    assert normalize(text) == "Use <b> for bold\n\nwith spaces"


def test_language_identification():
    lang, score = identify(
        "The committee published its annual report on the state of public libraries today."
    )
    assert lang == "en" and score > 0.9
    assert (
        identify("Der Ausschuss hat heute seinen jährlichen Bericht über die Bibliotheken veröffentlicht.")[0]
        == "de"
    )
    assert (
        identify("Le comité a publié aujourd'hui son rapport annuel sur les bibliothèques publiques.")[0]
        == "fr"
    )
    assert identify("   ") == ("unknown", 0.0)


def test_labels_are_iso_639_1_where_one_exists():
    # Every label the model has, mapped, is in LABELS and LABELS holds nothing else.
    assert {to_iso_639_1(label) for label in _identifier().nb_classes} == LABELS
    assert len(LABELS) == 133 and UNKNOWN not in LABELS
    three_letter = {label for label in LABELS if len(label) != 2}
    assert three_letter == set(NO_ISO_639_1)
    assert (to_iso_639_1("yue"), to_iso_639_1("wuu"), to_iso_639_1("arz"), to_iso_639_1("kik")) == (
        "zh",
        "zh",
        "ar",
        "ki",
    )
    assert (to_iso_639_1("pcm"), to_iso_639_1("zxx"), to_iso_639_1("en")) == ("pcm", "zxx", "en")


@pytest.mark.parametrize(
    ("text", "raw", "label"),
    [
        ("佢哋聽日會去邊度食飯呀？我唔知喎，你問下佢啦。", "yue", "zh"),  # Cantonese
        ("مرحبا، كيف داير؟ واش نتا بخير؟ بزاف ديال الناس كيجيو هنا", "ary", "ar"),  # Moroccan Arabic
        ("Ngl ma guy, wetin dey happen for here sef", "pcm", "pcm"),  # Nigerian Pidgin: no ISO 639-1 code
    ],
)
def test_identify_maps_labels(text, raw, label):
    assert _identifier().classify(text)[0] == raw
    assert identify(text)[0] == label


# --------------------------------------------------------------------------------- languages

JAPANESE = (
    "東京の市立図書館は月曜日に新しい閲覧室を開きました。職員によると、この部屋は勉強会や静かな読書、毎週の講演会に使われるということです。\n"
    "来館者は図書館カードがあれば、受付でノートパソコンを借りることができます。部屋には大きな窓と長い机があり、地元の歴史の本が並んでいます。\n\n"
    "市の担当者は、試験の時期に多くの学生が図書館を利用することを期待しています。利用者が多ければ、春には開館時間を延ばす予定です。"
)
CHINESE = (
    "市立图书馆星期一开放了一个新的阅览室。工作人员说，这个空间将用于学习小组、安静阅读和每周的讲座。\n"
    "读者可以凭借书证在前台借用笔记本电脑。房间里有大窗户、长桌子和摆满地方历史书籍的书架。\n\n"
    "官员们希望新阅览室能在考试季吸引更多学生来到图书馆。如果需求保持旺盛，他们计划在春天延长开放时间。"
)
# Passes every rule, but py3langid's best guess (pcm, Nigerian Pidgin) scores 0.42: an unknown language.
NAMES = (
    "Anna Bjorn Carlos Dmitri Eun-ji Fatima and the Kraków band. Giulia Hiroshi Ines Jakub Kwame Lars and "
    "the Porto band. Mei Nadia Oskar Priya Quentin Rosa and the Tampere band. Sven Tariq Ugo Vera Wen Ximena "
    "and the Lyon band. Yusuf Zofia Omar Pablo Rania Stefan and the Graz band. With Kraków, Porto and Tartu "
    "to the end."
)
LANG_DOCS = [
    ("en", ENGLISH),
    ("ja", JAPANESE),
    ("zh", CHINESE),
    ("names", NAMES),
    ("ok", "ok ok ok ok"),  # unknown too (hu at 0.10), and too short: the rules say so
    ("de", "Der Hund läuft jeden Morgen mit seinem Besitzer durch den großen Park und die Stadt."),
]


def _analyzed(spark, *args) -> dict:
    docs = spark.createDataFrame(LANG_DOCS, "doc_id string, text string").coalesce(1)
    return {r["doc_id"]: r for r in docs.transform(clean.analyze(*args)).collect()}


def test_japanese_and_chinese_kept_when_allowed(spark):
    from jobs.config import CleanConf

    rules = CleanConf().rule_params()
    got = _analyzed(spark, ["en", "ja", "zh"], 0.5, rules)
    assert {d: (r["lang"], r["drop_reason"]) for d, r in got.items()} == {
        "en": ("en", None),
        "ja": ("ja", None),
        "zh": ("zh", None),
        "names": ("unknown", "language:unknown"),
        "ok": ("unknown", "gopher_quality:word_count"),
        "de": ("de", "language:de"),
    }
    assert Counter(r["drop_step"] for r in got.values()) == {None: 3, "language": 2, "rules": 1}
    assert got["names"]["lang_score"] == pytest.approx(0.4199, abs=1e-4)
    assert got["names"]["drop_detail"] == "best guess pcm at 0.420 < min_lang_score 0.5"
    # English only: Japanese and Chinese leave at the language step, as before.
    got = _analyzed(spark, ["en"], 0.5, rules)
    assert Counter(r["drop_reason"] for r in got.values()) == {
        None: 1,
        "language:ja": 1,
        "language:zh": 1,
        "language:unknown": 1,
        "gopher_quality:word_count": 1,
        "language:de": 1,
    }


def test_unknown_language_kept_on_request(spark):
    from jobs.config import CleanConf

    got = _analyzed(spark, ["en", "ja", "zh"], 0.5, CleanConf().rule_params(), "keep")
    kept = sorted((d, r["lang"]) for d, r in got.items() if r["drop_step"] is None)
    assert kept == [("en", "en"), ("ja", "ja"), ("names", "unknown"), ("zh", "zh")]
    assert got["ok"]["drop_reason"] == "gopher_quality:word_count"  # the rules still apply to unknown text
    # A threshold over every score makes every language unknown: only the rules decide.
    got = _analyzed(spark, ["en"], 1.0 + 1e-9, CleanConf().rule_params(), "keep")
    assert {r["lang"] for r in got.values()} == {"unknown"}
    assert sorted(d for d, r in got.items() if r["drop_step"] is None) == ["en", "names"]


def test_language_warning_names_the_skipped_checks():
    from jobs.config import CleanConf

    rules = CleanConf().rule_params()
    assert clean.language_warning(["en", "de"], rules) is None
    assert clean.language_warning(["en", "ja", "zh", "ko"], rules) == (
        "clean: rule checks that assume English text are skipped for these allowed languages:\n"
        "  ja, zh: gopher_quality word_count, word_count_max, mean_word_length, hash_word_ratio, "
        "ellipsis_word_ratio, alpha_words, stop_words; gopher_repetition top_2gram, top_3gram, top_4gram, "
        "dup_5gram, dup_6gram, dup_7gram, dup_8gram, dup_9gram, dup_10gram; c4_lines min_words; "
        "fineweb short_line_ratio, list_ratio\n"
        "  ko: gopher_quality stop_words"
    )


def test_clean_stage_with_other_languages(spark, tmp_path, caplog):
    """ingest → load_refs → clean on crafted documents: the startup warning, exact counts, the gates."""
    from jobs import cli, ingest
    from jobs.tables import EmbeddedLakehouse
    from tests.conftest import write_conf

    raw = tmp_path / "docs.jsonl"
    raw.write_text("".join(json.dumps({"id": d, "text": t}) + "\n" for d, t in LANG_DOCS))
    bench = tmp_path / "quiz_test.jsonl"
    bench.write_text('{"question": "What is the boiling point of water at sea level?"}\n')
    conf = write_conf(tmp_path / "c.yaml", tmp_path / "wh", [{"name": "crafted", "path": str(raw)}])
    data = yaml.safe_load(conf.read_text())
    data["refs"] = {"benchmarks": [{"path": str(bench)}]}
    data["clean"] = {"allowed_langs": ["en", "ja", "zh"], "unknown_lang": "keep"}
    conf.write_text(yaml.safe_dump(data))
    args = argparse.Namespace(conf=str(conf), overrides=[], run_id=None, verbose=False)
    assert run_job(ingest.STAGE, args, ingest.ingest) == EXIT_OK
    assert run_job(load_refs.STAGE, args, load_refs.load_refs) == EXIT_OK
    assert cli.STAGES[clean.STAGE][2] is clean.preflight  # `corpuslake run` warns too
    out = io.StringIO()
    code = run_job(clean.STAGE, args, clean.clean, reads=clean.READS, out=out, preflight=clean.preflight)
    assert code == EXIT_OK
    warnings = [r.getMessage() for r in caplog.records if r.name == "corpuslake" and r.levelname == "WARNING"]
    assert len(warnings) == 1 and warnings[0].startswith("clean: rule checks that assume English text")
    assert "  ja, zh: gopher_quality word_count," in warnings[0]
    lh = EmbeddedLakehouse(spark, str(tmp_path / "wh"))
    langs = Counter(r["lang"] for r in lh.read(silver.DOCUMENTS).collect())
    assert langs == {"en": 1, "ja": 1, "zh": 1, "unknown": 1}
    reasons = Counter(r["reason"] for r in lh.read(silver.FILTERED).collect())
    assert reasons == {"language:de": 1, "gopher_quality:word_count": 1}
    assert "kept in silver.documents: 4" in out.getvalue()

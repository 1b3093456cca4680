"""Normalization and language ID on crafted text."""

from __future__ import annotations

import pytest

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

"""Normalization and language ID on crafted text."""

from __future__ import annotations

import pytest

from udfs.lang import identify
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
    assert identify("   ") == ("und", 0.0)

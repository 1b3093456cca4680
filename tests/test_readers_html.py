"""HTML pages: charsets (header, BOM, meta, detection) and the main-content extractors against boilerplate."""

from __future__ import annotations

import codecs
import json

import pytest
from test_readers import _archive, _read, _summary

from udfs.splits import ReaderOptions
from udfs.text import HtmlExtractor

ZH = (
    "北京是中华人民共和国的首都，也是全国的政治中心和文化中心。这座城市有三千多年的建城史，拥有众多名胜古迹。"
)


def _html(body: str, head: str = "") -> str:
    return f"<html><head>{head}<title>T</title></head><body><p>{body}</p></body></html>"


def test_charsets_header_bom_meta_then_detection(tmp_path):
    cases = [  # (url tail, payload bytes, HTTP content type)
        ("1", _html(ZH, '<meta charset="gbk">').encode("gbk"), "text/html"),
        ("2", _html(ZH * 2).encode("gb2312"), "text/html"),  # no label anywhere: detected
        (
            "3",
            _html(
                "Café crème brûlée à la carte",
                '<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">',
            ).encode("latin-1"),
            "text/html",
        ),
        ("4", codecs.BOM_UTF8 + _html("Grüße aus Köln").encode("utf-8"), "text/html; charset=iso-8859-1"),
        (
            "5",
            _html("Привет, мир", '<meta charset="koi8-r">').encode("cp1251"),
            "text/html; charset=windows-1251",
        ),
        ("6", _html("x").encode() + bytes([0, 1, 2, 0x81, 0x8D, 0xFF, 0xFE, 0, 0x90]) * 60, "text/html"),
        ("7", _html("Grüße aus Köln").encode("utf-8"), "text/html"),
    ]
    raw, _ = _archive([("response", f"https://c.example.com/{u}", b, ct) for u, b, ct in cases], members=True)
    path = tmp_path / "cs.warc.gz"
    path.write_bytes(raw)
    rows = _read(path, "warc", opts=ReaderOptions(max_doc_bytes=10_000, line_limit=50_000))
    assert _summary(rows) == [("doc", None, i) for i in range(1, 6)] + [
        ("reject", "invalid_utf8", 6),
        ("doc", None, 7),
    ]
    metas = [json.loads(r["meta"] or "{}") for r in rows]
    got = [(m.get("charset"), m.get("charset_source")) for m in metas]
    assert got == [
        ("gb18030", "meta"),  # gbk means gb18030, as browsers read the label
        ("gb18030", "detected"),
        ("cp1252", "meta"),  # iso-8859-1 means windows-1252
        ("utf-8-sig", "bom"),  # the BOM wins even over the header
        ("cp1251", "http"),  # the header wins over <meta>
        (None, None),
        ("utf-8", "default"),
    ]
    assert [r["text"].split("\n\n")[1] for r in rows if r["kind"] == "doc"] == [
        ZH,
        ZH * 2,
        "Café crème brûlée à la carte",
        "Grüße aus Köln",
        "Привет, мир",
        "Grüße aus Köln",
    ]
    assert rows[5]["detail"] == (
        "no charset decodes the body; tried utf-8 (default), charset-normalizer: no charset fits"
    )


def test_wet_conversions_stay_strict_utf8(tmp_path):
    raw, _ = _archive(
        [("conversion", "https://wet.example.com/1", "Café".encode("latin-1"), "text/plain")], members=True
    )
    path = tmp_path / "x.warc.wet.gz"
    path.write_bytes(raw)
    rows = _read(path, "warc")
    assert _summary(rows) == [("reject", "invalid_utf8", 1)]
    assert rows[0]["detail"].startswith("body is not valid utf-8")


_PARAS = [
    "After decades of absence, river otters have been seen again along the upper reaches of the valley, "
    "according to a survey published by the regional wildlife trust this week.",
    "Volunteers recorded tracks and spraints at fourteen sites between the old mill and the reservoir, and "
    "camera traps captured a female with two cubs near the footbridge in early spring.",
    "The trust credits cleaner water and the restoration of bankside vegetation, which gives the animals "
    "cover and supports the fish and amphibians they feed on.",
]
_BOILERPLATE = ["Accept all cookies", "Contact us", "All rights reserved", "Privacy policy", "newsletter"]
_ARTICLE = "".join(f"<p>{p}</p>" for p in _PARAS)
PAGES = {
    "semantic": (
        "Otters return | Valley Gazette",
        '<div class="cookie-banner"><p>We use cookies. Accept all cookies?</p></div>'
        '<header><nav><ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li>'
        '<li><a href="/contact">Contact us</a></li></ul></nav></header>'
        f"<main><article><h1>River otters return to the valley</h1>{_ARTICLE}</article></main>"
        "<footer><p>Copyright 2024 Valley Gazette. All rights reserved.</p>"
        '<p><a href="/privacy">Privacy policy</a></p><p>Sign up for our newsletter</p></footer>',
    ),
    "div_soup": (
        "Otters return to the valley",
        '<div id="cookie-notice" class="cookie-consent">This site uses cookies. <a href="#">Accept all '
        'cookies</a></div><div id="menu" class="navigation"><a href="/">Home</a> | '
        '<a href="/c">Contact us</a></div>'
        f'<div class="content"><div class="post-body">{_ARTICLE}</div></div>'
        '<div id="footer" class="site-footer">(c) 2024 Valley Gazette. All rights reserved. '
        '<a href="/privacy">Privacy policy</a> <span>Get the newsletter</span></div>',
    ),
}


@pytest.mark.parametrize("page", sorted(PAGES))
@pytest.mark.parametrize("extractor", ["resiliparse", "trafilatura"])
def test_main_content_extractors_drop_boilerplate(extractor, page):
    title, body = PAGES[page]
    html = (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title></head><body>{body}</body>'
    )
    text = HtmlExtractor(extractor, keep_title=True)(html)
    assert text.split("\n")[0] == title
    assert all(p in text for p in _PARAS)
    assert [b for b in _BOILERPLATE if b in text] == []
    untitled = HtmlExtractor(extractor, keep_title=False)(html)
    assert title not in untitled and all(p in untitled for p in _PARAS)
    # The plain extractor keeps every visible block: the boilerplate too.
    assert [b for b in _BOILERPLATE if b in HtmlExtractor("plain", keep_title=False)(html)] == _BOILERPLATE


def test_title_not_repeated_and_no_title_only_documents():
    html = (
        "<html><head><title>Otters return</title></head><body><h1>Otters return</h1><p>{}</p></body></html>"
    )
    assert HtmlExtractor("resiliparse")(html.format(_PARAS[0])) == f"Otters return\n\n{_PARAS[0]}"
    assert HtmlExtractor("resiliparse")(html.format("")) == "Otters return"  # the headline, once
    assert HtmlExtractor("plain")("<html><head><title>Only a title</title></head><body></body></html>") == ""

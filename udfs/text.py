"""Per-document text functions used on executors: ids, domains, HTML to text. Pure Python, no Spark."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from html.parser import HTMLParser

_WS = re.compile(r"\s+")


def normalize_for_id(text: str) -> str:
    """Whitespace-collapsed, stripped text: the same document re-wrapped gets the same id."""
    return _WS.sub(" ", text).strip()


def doc_id(source: str, source_id: str | None, text: str, url: str | None) -> str:
    """A 128-bit hex id: hash of source + source id when the record has one, else of normalized text + url."""
    if source_id is not None:
        key = f"id\x1f{source}\x1f{source_id}"
    else:
        key = f"tx\x1f{normalize_for_id(text)}\x1f{url or ''}"
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


@lru_cache(maxsize=1)
def _extractor():
    import tldextract

    # The bundled public suffix snapshot only: never fetch the list at run time.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, include_psl_private_domains=False)


@lru_cache(maxsize=65536)
def registered_domain(url: str | None) -> str | None:
    """The registered domain of a URL (``blog.example.co.uk`` → ``example.co.uk``); None if it has none."""
    if not url:
        return None
    try:
        ext = _extractor()(url)
    except Exception:
        return None
    dom = getattr(ext, "top_domain_under_public_suffix", None) or ext.registered_domain
    if dom:
        return dom.lower()
    # IP addresses and hosts without a public suffix (localhost): keep the host itself.
    return ext.domain.lower() or None


_SKIP_TAGS = {"script", "style", "noscript", "template", "svg", "head"}
_BLOCK_TAGS = {
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
    "table",
    "section",
    "article",
    "header",
    "footer",
    "blockquote",
    "pre",
    "hr",
    "title",
}


class _TextExtractor(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP_TAGS:
            self.skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Visible text of an HTML page: scripts, styles and head dropped, block elements on their own lines.

    This is the ``plain`` extractor: it keeps menus, footers and banners. ``HtmlExtractor`` picks a
    main-content extractor instead.
    """
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


HTML_EXTRACTORS = ("resiliparse", "trafilatura", "plain")
_TITLE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def html_title(html: str) -> str | None:
    """The page's ``<title>``, unescaped and whitespace-collapsed; None if it has none (or it is blank)."""
    import html as htmllib

    m = _TITLE.search(html, 0, 1 << 16)  # a title past the first 64 KiB is not the head's title
    if not m:
        return None
    title = normalize_for_id(htmllib.unescape(_TAG.sub(" ", m.group(1))))
    return title or None


def _resiliparse(html: str) -> str:
    from resiliparse.extract.html2text import extract_plain_text

    # Main-content mode, as DCLM extracts Common Crawl pages; alt texts and links are not prose.
    return extract_plain_text(html, main_content=True, alt_texts=False, links=False, form_fields=False)


def _trafilatura(html: str) -> str:
    import trafilatura

    # FineWeb's settings (precision over recall, no comments), without its cross-document dedup cache:
    # that cache makes a page's text depend on which pages the same worker saw before.
    text = trafilatura.extract(html, favor_precision=True, include_comments=False, deduplicate=False)
    return text or ""


_EXTRACT = {"resiliparse": _resiliparse, "trafilatura": _trafilatura, "plain": html_to_text}


class HtmlExtractor:
    """HTML page → document text with a named extractor, optionally headed by the page title.

    Args:
        name: ``resiliparse`` (main content, as DCLM), ``trafilatura`` (main content, as FineWeb) or
            ``plain`` (every visible text block, menus and footers included).
        keep_title: put the ``<title>`` on the first line, unless the text already starts with it (a
            headline that repeats the title). A page whose body yields no text stays empty: a title alone
            is not a document.
    """

    def __init__(self, name: str = "resiliparse", keep_title: bool = True):
        if name not in _EXTRACT:
            raise ValueError(f"unknown html extractor {name!r}; use one of {', '.join(HTML_EXTRACTORS)}")
        self.name = name
        self.keep_title = keep_title
        self._extract = _EXTRACT[name]

    def __call__(self, html: str) -> str:
        text = self._extract(html).strip()
        if not self.keep_title or not text:
            return text
        title = html_title(html)
        if not title or normalize_for_id(text[: len(title) * 2]).startswith(title):
            return text
        return f"{title}\n\n{text}"

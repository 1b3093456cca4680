"""Rule-labelled examples for the demo PRRC raters (``labels/prrc.jsonl``); see :func:`make_prrc_labels`."""

from __future__ import annotations

import random
import re

from jobs.demo.categories import CODE_OUTRO, boilerplate_page, non_english_lang, page, spam_page
from jobs.demo.vocab import DOMAINS

#: Labelled examples written to ``labels/prrc.jsonl``; fixed (not scaled with ``n_docs``) so even a tiny
#: sample gives the demo raters enough to learn from.
N_PRRC_LABELS = 1200
PRRC_DIMENSIONS = ("professionalism", "readability", "reasoning", "cleanliness")

# (category, variant) -> number of examples.  The mix over-weights the rare low- and high-quality
# categories relative to the corpus so every rating class has examples.
_PRRC_MIX = (
    ("prose", "plain", 250),
    ("prose", "site_chrome", 70),
    ("prose", "spam_lines", 60),
    ("prose", "run_on", 60),
    ("forum", "plain", 140),
    ("code", "plain", 120),
    ("math", "plain", 130),
    ("boilerplate", "plain", 110),
    ("spam", "plain", 110),
    ("non_english", "plain", 60),
    ("short", "plain", 90),
)
# (professionalism, readability, reasoning, cleanliness) before the per-text adjustments below.
_PRRC_BASE = {
    "prose": (3, 4, 1, 5),
    "forum": (2, 3, 1, 3),
    "code": (3, 3, 2, 4),
    "math": (4, 3, 3, 4),
    "boilerplate": (1, 1, 0, 1),
    "spam": (0, 0, 0, 0),
    "non_english": (3, 2, 1, 4),
    "short": (2, 3, 0, 3),
}
_REASONING_RE = re.compile(
    r"\b(because|therefore|thus|hence|as a result|which means|this means|consequently|since|for example|"
    r"in contrast|however|if|so the|gives|check)\b",
    re.IGNORECASE,
)
_SLANG_RE = re.compile(r"\b(lol|imo|tbh|idk|thx|nvm|ugh|omg)\b|:\(|:\)|\^\^\^|!!|\+1")
_SENT_END_RE = re.compile(r"[.!?]+(?:\s|$)")


def _prrc_features(text: str) -> dict[str, float]:
    """Surface features the labelling rules read: length, sentence length, reasoning markers, slang, ..."""
    words = len(text.split())
    lines = [ln for ln in text.split("\n") if ln.strip()]
    sentences = max(1, len(_SENT_END_RE.findall(text)))
    letters = [c for c in text if c.isalpha()]
    return {
        "words": words,
        "words_per_sentence": words / sentences,
        "reasoning_per_100w": 100 * len(_REASONING_RE.findall(text)) / max(words, 1),
        "slang": len(_SLANG_RE.findall(text)),
        "dup_line_frac": 1 - len(set(lines)) / max(len(lines), 1),
        "upper_frac": sum(c.isupper() for c in letters) / max(len(letters), 1),
        "lines": len(lines),
    }


def _prrc_ratings(category: str, variant: str, text: str, extra: dict) -> tuple[int, int, int, int]:
    """The labelling rules (see :func:`make_prrc_labels`); returns the four ratings, each clamped to 0-5."""
    p, r, s, c = _PRRC_BASE[category]
    f = _prrc_features(text)
    if category == "prose":
        p += extra["byline"] + (f["words"] >= 400)
        r += (f["words_per_sentence"] <= 16.2) - (f["words_per_sentence"] > 17.5)
        s += sum(f["reasoning_per_100w"] >= t for t in (0.35, 0.6, 0.9))
        if variant == "site_chrome":  # navigation and cookie banners around an otherwise good article
            p, c = p - 1, 3 - (f["lines"] > 30)
        elif variant == "spam_lines":  # keyword-stuffed lines injected into the article
            p, r, c = p - 2, r - 1, 1 + (extra["injected"] == 1)
        elif variant == "run_on":  # lower-cased, paragraph breaks and most full stops gone
            p, r, c = p - 1, 2 - (f["words"] > 500), 3
    elif category == "forum":
        slang_rate = 100 * f["slang"] / max(f["words"], 1)
        p -= slang_rate > 4
        r -= slang_rate > 5
        s += len(set(re.findall(r"fixed it|turns out|did you try|covers most", text))) >= 2
        c += ("Sent from my phone" not in text and "\n> " not in text) - (slang_rate > 5)
    elif category == "code":
        fenced = text.count("```") // 2
        snippets = extra["snippets"]
        p += fenced == snippets  # every snippet in a fenced block
        r -= fenced < snippets
        s += min(2, snippets - 1)
        c -= fenced < snippets
    elif category == "math":
        k = extra["problems"]
        p += k >= 4
        r += (k <= 3) - (text.count("$") / max(f["words"], 1) > 0.25)
        s += min(2, k // 2)
    elif category == "boilerplate":
        lorem = "Lorem ipsum" in text
        p -= lorem
        r -= f["lines"] > 24
        c -= lorem or f["lines"] > 24
    elif category == "spam":
        r += f["dup_line_frac"] < 0.55
        c += f["dup_line_frac"] < 0.55 and f["upper_frac"] < 0.2
    elif category == "non_english":
        p += f["words"] >= 250
    elif category == "short":
        has_title = "\n\n" in text
        p += has_title
        r += f["words"] >= 20
        s += f["reasoning_per_100w"] > 0
        c += has_title
    return tuple(max(0, min(5, int(v))) for v in (p, r, s, c))


def _page_extra(category: str, text: str) -> dict:
    """What the rules need beyond surface features, read off an unmodified page of ``category``."""
    if category == "prose":
        blocks = text.split("\n\n")
        return {"byline": len(blocks) > 1 and blocks[1].startswith("By ")}
    if category == "code":
        # Every snippet is followed by exactly one outro sentence; their opening words are fixed.
        return {"snippets": sum(text.count(parts[0][0]) for parts in CODE_OUTRO)}
    if category == "math":
        return {"problems": text.count("\n\nProblem ")}
    return {}


def page_ratings(category: str, text: str) -> tuple[int, int, int, int]:
    """The generator's PRRC levels of a corpus page: the labelling rules applied to an unmodified page of
    ``category`` (variant ``plain``), reading what they need from the text.  Used to check the demo raters
    on corpus documents, which no rater is trained on."""
    return _prrc_ratings(category, "plain", text, _page_extra(category, text))


def _prrc_example(rng: random.Random, category: str, variant: str) -> tuple[str, dict]:
    """One text of ``category`` (built by the corpus's own category generators) and what went into it."""
    doms = [d for d in DOMAINS if d.category == category] or [d for d in DOMAINS if d.category == "prose"]
    dom = rng.choice(doms)
    lang = non_english_lang(rng) if category == "non_english" else "en"
    _, text = page(rng, category, dom, lang)
    extra = _page_extra(category, text)
    if category == "prose":
        if variant == "site_chrome":
            _, chrome = boilerplate_page(rng, dom)
            lines = chrome.split("\n")
            cut = rng.randint(2, max(2, len(lines) - 2))
            text = "\n".join(lines[:cut]) + "\n\n" + text + "\n\n" + "\n".join(lines[cut:])
        elif variant == "spam_lines":
            spam_dom = rng.choice([d for d in DOMAINS if d.category == "spam"])
            spam = spam_page(rng, spam_dom)[1].split("\n")
            blocks = text.split("\n\n")
            extra["injected"] = rng.randint(1, 3)
            for _ in range(extra["injected"]):
                blocks.insert(rng.randint(1, len(blocks)), rng.choice(spam))
            text = "\n\n".join(blocks)
        elif variant == "run_on":
            text = re.sub(r"\.\s+", lambda m: " " if rng.random() < 0.7 else ", ", text.replace("\n\n", " "))
            text = text.lower()
    return text, extra


def make_prrc_labels(seed: int, corpus_texts: set[str]) -> list[dict]:
    """Labelled examples for a DEMO stand-in of Meta-rater's PRRC raters (``labels/prrc.jsonl``).

    Meta-rater (Zhuang et al. 2025) rates a document 0-5 on Professionalism, Readability, Reasoning and
    Cleanliness with raters fine-tuned on LLM-annotated data.  This sample has no annotator, so the labels
    are rules over what the generator knows about each text it builds, which is exactly what a demo rater
    can learn and a test can check.  They are not Meta-rater's released raters and say nothing about real
    web text.

    The texts come from the corpus's own category generators but draw from their own random stream
    (``corpuslake-sample:{seed}:labels``), so the corpus files and ``truth.json`` do not change, and any
    text that equals a corpus document (after collapsing whitespace) is drawn again: rater training data
    never doubles as scored data.

    Rules, as (professionalism, readability, reasoning, cleanliness), each clamped to 0-5:

    * Base by category: prose (3, 4, 1, 5); maths worked solutions (4, 3, 3, 4); code tutorials
      (3, 3, 2, 4); forum threads (2, 3, 1, 3); non-English articles (3, 2, 1, 4) (hard to read for the
      English target); very short posts (2, 3, 0, 3); boilerplate/navigation pages (1, 1, 0, 1); spam and
      keyword stuffing (0, 0, 0, 0).
    * Prose: professionalism +1 with a byline, +1 from 400 words; readability +1 for short sentences
      (<= 16.2 words on average), -1 for long ones (> 17.5); reasoning +1 at each of 0.35, 0.6 and 0.9
      reasoning connectives ("because", "however", "as a result", "for example", "if", ...) per 100 words.
      Degraded variants of prose articles: ``site_chrome`` (cookie/navigation lines around the article):
      professionalism -1, cleanliness 3 (2 above 30 lines); ``spam_lines`` (1-3 keyword-stuffed lines
      injected): professionalism -2, readability -1, cleanliness 2 for one line else 1; ``run_on``
      (lower-cased, paragraph breaks and most full stops removed): professionalism -1, readability 2
      (1 above 500 words), cleanliness 3.
    * Forum: professionalism -1 above 4 slang markers (lol, tbh, ``!!``, ``:(``, ...) per 100 words,
      readability -1 above 5; reasoning +1 when replies explain a fix in two or more ways; cleanliness +1
      without signatures or quoted lines, -1 above 5 slang markers per 100 words.
    * Code: professionalism +1 when every snippet is a fenced block, else readability and cleanliness -1;
      reasoning +1 per snippet beyond the first (at most +2).
    * Maths: professionalism +1 from four problems; readability +1 for at most three problems, -1 when
      ``$`` signs exceed a quarter of the words; reasoning +1 per two worked problems (at most +2).
    * Boilerplate: professionalism -1 with lorem ipsum; readability -1 above 24 lines; cleanliness -1 with
      either.  Spam: readability +1 when fewer than 55% of lines repeat; cleanliness +1 when also under
      20% upper case.  Non-English: professionalism +1 from 250 words.  Short: professionalism and
      cleanliness +1 with a title line, readability +1 from 20 words, reasoning +1 with any connective.

    Args:
        seed: The corpus seed; the labels use a stream derived from it.
        corpus_texts: Whitespace-collapsed texts of the corpus documents, which labels must not repeat.

    Returns:
        ``N_PRRC_LABELS`` rows ``{text, professionalism, readability, reasoning, cleanliness, category,
        variant}`` in a shuffled order.
    """
    rng = random.Random(f"corpuslake-sample:{seed}:labels")
    plan = [(cat, var) for cat, var, k in _PRRC_MIX for _ in range(k)]
    rng.shuffle(plan)
    seen = set(corpus_texts)
    rows = []
    for category, variant in plan:
        while True:
            text, extra = _prrc_example(rng, category, variant)
            norm = " ".join(text.split())
            if norm not in seen:
                seen.add(norm)
                break
        ratings = _prrc_ratings(category, variant, text, extra)
        row = {"text": text, **dict(zip(PRRC_DIMENSIONS, ratings, strict=True))}
        rows.append({**row, "category": category, "variant": variant})
    return rows

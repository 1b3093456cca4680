"""Words and sentences as datatrove counts them in English text. Pure Python, no Spark, no spaCy.

datatrove's Gopher, C4 and FineWeb filters split English text with spaCy's blank English pipeline
(``spacy.blank("en")`` and its rule-based ``sentencizer``): punctuation is its own token (``end.`` is
``end`` and ``.``, ``"Hi,`` is ``"``, ``Hi`` and ``,``), contractions split (``don't`` is ``do`` and
``n't``), abbreviations (``Mr.``, ``e.g.``, ``U.S.``), URLs and decimals stay whole. ``word_tokens`` follows
spaCy's algorithm (prefixes, suffixes, special cases, URLs, infixes) with its English character classes, so
the Gopher and FineWeb thresholds see the counts they were set on, without spaCy on the executors.

Where it differs from spaCy (tests/test_quality_published.py compares the two on crafted text, and
tests/test_rules_parity.py the verdicts they lead to, against datatrove with spaCy, on the sample corpus):

- special cases: of spaCy's English table (~1,350 strings) this keeps the abbreviations that end in a period
  (they decide sentence ends), the contractions written without an apostrophe (``dont``, ``Id``), the
  emoticons and a few words (``C++``, ``and/or``); contractions with an apostrophe are split by rule
  (``n't`` after any word; ``'re``, ``'ve``, ``'ll``, ``'d``, ``'m`` after the pronouns and modals spaCy
  lists), not three-part ones (``y'all'd've``);
- letters: spaCy's upper and lower case classes are Unicode's ``Lu`` and ``Ll`` here (plus uncased ``Lo``
  on both sides, as spaCy adds its "uncased" scripts), its icon class is Unicode's ``So``;
- sentence ends: Unicode's ``Sentence_Terminal`` characters (spaCy's sentencizer lists 128 of its 172).

On the sample corpus's 468 English documents the tokens and the sentence counts of every line are spaCy's.
"""

from __future__ import annotations

import string
from functools import lru_cache

import regex

# spaCy's English character classes (spacy/lang/char_classes.py, spacy/lang/punctuation.py).
_LOWER = r"\p{Ll}\p{Lo}"
_UPPER = r"\p{Lu}\p{Lo}"
_ALPHA = r"\p{L}"
_PUNCT = "… …… , : ; ! ? ¿ ؟ ¡ ( ) [ ] { } < > _ # * & 。 ？ ！ ， 、 ； ： ～ · । ، ۔ ؛ ٪".split()
_QUOTES = "' \" ” “ ` ‘ ´ ’ ‚ , „ » « 「 」 『 』 （ ） 〔 〕 【 】 《 》 〈 〉 〈 〉 ⟦ ⟧".split()
_CURRENCY = "$ £ € ¥ ฿ US$ C$ A$ ₽ ﷼ ₴ ₠ ₡ ₢ ₣ ₤ ₥ ₦ ₧ ₨ ₩ ₪ ₫ ₭ ₮ ₯ ₰ ₱ ₲ ₳ ₵ ₶ ₷ ₸ ₹ ₺ ₻ ₼ ₾ ₿".split()
_UNITS = (
    "km km² km³ m m² m³ dm dm² dm³ cm cm² cm³ mm mm² mm³ ha µm nm yd in ft kg g mg µg t lb oz m/s km/h kmh "
    "mph hPa Pa mbar mb MB kb KB gb GB tb TB T G M K %"
).split()
_HYPHENS = "- – — -- --- —— ~".split()
_ICONS = r"[\p{So}]"


def _alt(items: list[str]) -> str:
    return "|".join(regex.escape(i) for i in items)


def _chars(items: list[str]) -> str:
    return "".join(regex.escape(i) for i in items if len(i) == 1)


_P, _Q = _chars(_PUNCT), _chars(_QUOTES)
# spaCy tries the prefixes in this order at the start of what is left of a whitespace-separated chunk.
_PREFIX = regex.compile(
    "^(?:"
    + "|".join(
        ["§", "%", "=", "—", "–", r"\+(?![0-9])", _alt(_PUNCT), r"\.\.+", "…", _alt(_QUOTES)]
        + [_alt(_CURRENCY), _ICONS]
    )
    + ")"
)
# Suffixes: the leftmost position from which one of them runs to the end.
_SUFFIX = regex.compile(
    "(?:"
    + "|".join(
        [_alt(_PUNCT), r"\.\.+", "…", _alt(_QUOTES), _ICONS, "'s", "'S", "’s", "’S", "—", "–"]
        + [
            r"(?<=[0-9])\+",
            r"(?<=°[FfCcKk])\.",
            rf"(?<=[0-9])(?:{_alt(_CURRENCY)})",
            rf"(?<=[0-9])(?:{_alt(_UNITS)})",
            # spaCy's class holds "(?:" and ")" literally, around its quotes: kept as it is.
            rf"(?<=[0-9{_LOWER}%²\-\+{_P}(?:{_Q})])\.",
            rf"(?<=[{_UPPER}][{_UPPER}])\.",
        ]
    )
    + ")$"
)
_INFIX = regex.compile(
    "|".join(
        [r"\.\.+", "…", _ICONS, r"(?<=[0-9])[+\-\*^](?=[0-9-])"]
        + [
            rf"(?<=[{_LOWER}{_Q}])\.(?=[{_UPPER}{_Q}])",
            rf"(?<=[{_ALPHA}]),(?=[{_ALPHA}])",
            rf"(?<=[{_ALPHA}0-9])(?:{_alt(_HYPHENS)})(?=[{_ALPHA}])",
            rf"(?<=[{_ALPHA}0-9])[:<>=/](?=[{_ALPHA}])",
        ]
    )
)
# spaCy's URL_MATCH (spacy/lang/tokenizer_exceptions.py) less its IP-range exclusions: a host name with a
# lower-case top-level domain, an optional scheme, user, port and path. Matches e-mail addresses too.
_URL = regex.compile(
    r"^(?:(?:[\w\+\-\.]{2,})://)?(?:\S+(?::\S*)?@)?"
    r"(?:(?:(?:[A-Za-z0-9\u00a1-\uffff][A-Za-z0-9\u00a1-\uffff_-]{0,62})?[A-Za-z0-9\u00a1-\uffff]\.)+"
    rf"(?:[{_LOWER}]{{2,63}}))(?::\d{{2,5}})?(?:[/?#]\S*)?$"
)

# The special cases of spaCy's English table that end in a period: never split, never a sentence end.
_ABBREVIATIONS = frozenset(
    "Adm. Ak. Ala. Apr. Ariz. Ark. Aug. Bros. Calif. Co. Colo. Conn. Corp. D.C. Dec. Del. Dr. E.G. E.g. Feb. "
    "Fla. Ga. Gen. Gov. I.E. I.e. Ia. Id. Ill. Inc. Ind. Jan. Jr. Jul. Jun. Kan. Kans. Ky. La. Ltd. Mar. "
    "Mass. Md. Messrs. Mich. Minn. Miss. Mo. Mont. Mr. Mrs. Ms. Mt. N.C. N.D. N.H. N.J. N.M. N.Y. Neb. Nebr. "
    "Nev. Nov. Oct. Okla. Ore. Pa. Ph.D. Prof. Rep. Rev. S.C. Sen. Sep. Sept. St. Tenn. Va. Wash. Wis. a.m. "
    "co. e.g. i.e. p.m. v.s. vs. ._. °C. °F. °K. °c. °f. °k. ä. ö. ü.".split()
    + [f"{c}." for c in string.ascii_lowercase]
)
# spaCy's table also splits contractions written without an apostrophe (lower case and capitalized).
_SPLIT_WORDS = {
    word: tuple(parts.split("+"))
    for word, parts in (
        entry.split(":")
        for entry in (
            "aint:ai+nt arent:are+nt cannot:can+not cant:ca+nt cantve:ca+nt+ve couldnt:could+nt "
            "couldntve:could+nt+ve couldve:could+ve darent:dare+nt didnt:did+nt didntve:did+nt+ve "
            "doesnt:does+nt "
            "doesntve:does+nt+ve dont:do+nt dontve:do+nt+ve gonna:gon+na gotta:got+ta hadnt:had+nt "
            "hadntve:had+nt+ve hasnt:has+nt havent:have+nt hed:he+d hedve:he+d+ve hellve:he+ll+ve hes:he+s "
            "howd:how+d howdve:how+d+ve howll:how+ll howllve:how+ll+ve howre:how+re hows:how+s howve:how+ve "
            "id:i+d idve:i+d+ve illve:i+ll+ve im:i+m ima:i+m+a isnt:is+nt itd:it+d itdve:it+d+ve itll:it+ll "
            "itllve:it+ll+ve ive:i+ve maynt:may+nt mayntve:may+nt+ve mightnt:might+nt mightntve:might+nt+ve "
            "mightve:might+ve mustnt:must+nt mustntve:must+nt+ve mustve:must+ve neednt:need+nt "
            "needntve:need+nt+ve notve:not+ve oughtnt:ought+nt oughtntve:ought+nt+ve shant:sha+nt "
            "shantve:sha+nt+ve shedve:she+d+ve shellve:she+ll+ve shes:she+s shouldnt:should+nt "
            "shouldntve:should+nt+ve shouldve:should+ve thatd:that+d thatdve:that+d+ve thatll:that+ll "
            "thatllve:that+ll+ve thats:that+s thered:there+d theredve:there+d+ve therell:there+ll "
            "therellve:there+ll+ve therere:there+re theres:there+s thereve:there+ve thesed:these+d "
            "thesedve:these+d+ve thesell:these+ll thesellve:these+ll+ve thesere:these+re theseve:these+ve "
            "theyd:they+d theydve:they+d+ve theyll:they+ll theyllve:they+ll+ve theyre:they+re theyve:they+ve "
            "thisd:this+d thisdve:this+d+ve thisll:this+ll thisllve:this+ll+ve thiss:this+s thosed:those+d "
            "thosedve:those+d+ve thosell:those+ll thosellve:those+ll+ve thosere:those+re thoseve:those+ve "
            "wasnt:was+nt wed:we+d wedve:we+d+ve wellve:we+ll+ve werent:were+nt weve:we+ve whatd:what+d "
            "whatdve:what+d+ve whatll:what+ll whatllve:what+ll+ve whatre:what+re whats:what+s whatve:what+ve "
            "whend:when+d whendve:when+d+ve whenll:when+ll whenllve:when+ll+ve whenre:when+re whens:when+s "
            "whenve:when+ve whered:where+d wheredve:where+d+ve wherell:where+ll wherellve:where+ll+ve "
            "wherere:where+re wheres:where+s whereve:where+ve whod:who+d whodve:who+d+ve wholl:who+ll "
            "whollve:who+ll+ve whos:who+s whove:who+ve whyd:why+d whydve:why+d+ve whyll:why+ll "
            "whyllve:why+ll+ve "
            "whyre:why+re whys:why+s whyve:why+ve wont:wo+nt wontve:wo+nt+ve wouldnt:would+nt "
            "wouldntve:would+nt+ve wouldve:would+ve yall:y+all youd:you+d youdve:you+d+ve youll:you+ll "
            "youllve:you+ll+ve youre:you+re youve:you+ve "
        ).split()
    )
}
# Single-token special cases without a period: emoticons and a few words. spaCy merges a run of tokens
# back into one of these (or into an abbreviation) when they spell it within one chunk: ``km/h.`` gives
# ``km``, ``/``, ``h.``.
_WHOLE = frozenset(
    (
        "(*_*) (-8 (-: (-; (-_-) (._.) (: (; (= (>_<) (^_^) (¬_¬) (ಠ_ಠ) (╯°□°）╯︵┻━┻ )-: ): -_- -__- "
        "0.0 0_0 8) 8-) :'( :') :'-( :'-) :( :(( :((( :() :) :)) :))) :* :-( :-(( :-((( :-) :-)) "
        ":-))) :-* :-/ :-0 :-3 :-> :-] :-| :-} :/ :0 :1 :3 :> :] :| :} :’( :’) :’-( :’-) ;) ;-) ;_; "
        '<.< </3 <3 <33 <333 =( =) =/ =3 =[ =] =| >.< >.> >:( ><(((*> @_@ [-: [: [= \\") ]= ^_^ ^__^ '
        "^___^ ¯\\(ツ)/¯ ಠ_ಠ ಠ︵ಠ "
    ).split()
    + ["C++", "and/or", "w/o", "o'clock", "O'clock", "ma'am", "Ma'am"]
)
_NT = regex.compile(r"^(\p{L}+)(n['’]t)$")
_CLITIC = regex.compile(r"^(\p{L}+)(['’](?:re|ve|ll|d|m))$")
# The words spaCy's table splits 're / 've / 'll / 'd / 'm after (lower-cased).
_CLITIC_HOSTS = frozenset(
    "i you he she it we they who what where when why how there that this these those could might must "
    "should would".split()
)


def _cased(word: str) -> bool:
    """Lower case or capitalized: the forms spaCy's contraction entries list (``DON'T`` is not split)."""
    return word.islower() or (word[:1].isupper() and word[1:].islower())


def _special(chunk: str) -> tuple[str, ...] | None:
    """The tokens of a special case, or None when ``chunk`` is not one."""
    if chunk in _ABBREVIATIONS or chunk in _WHOLE:
        return (chunk,)
    low = chunk.lower()
    if low in _SPLIT_WORDS and _cased(chunk):
        out, i = [], 0
        for part in _SPLIT_WORDS[low]:
            out.append(chunk[i : i + len(part)])
            i += len(part)
        return tuple(out)
    if ("'" in chunk or "’" in chunk) and _cased(chunk.replace("'", "").replace("’", "")):
        if m := _NT.match(chunk):
            return m.group(1), m.group(2)
        if (m := _CLITIC.match(chunk)) and m.group(1).lower() in _CLITIC_HOSTS:
            return m.group(1), m.group(2)
    return None


def _merge_specials(tokens: tuple[str, ...]) -> tuple[str, ...]:
    """Runs of 2 or 3 tokens that spell an abbreviation or a whole special case, merged into one."""
    if len(tokens) < 2:
        return tokens
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for k in (3, 2):
            joined = "".join(tokens[i : i + k])
            if i + k <= len(tokens) and (joined in _ABBREVIATIONS or joined in _WHOLE):
                out.append(joined)
                i += k
                break
        else:
            out.append(tokens[i])
            i += 1
    return tuple(out)


@lru_cache(maxsize=1 << 16)
def _chunk_tokens(chunk: str) -> tuple[str, ...]:
    """spaCy's ``Tokenizer._split_affixes`` and ``_attach_tokens`` for one whitespace-free chunk."""
    if (special := _special(chunk)) is not None:
        return special
    prefixes: list[str] = []
    suffixes: list[str] = []
    s = chunk
    last = -1
    while s and len(s) != last:
        if _special(s) is not None:
            break
        last = len(s)
        pre = _PREFIX.match(s)
        pre_len = pre.end() if pre else 0
        if pre_len and _special(s[pre_len:]) is not None:
            prefixes.append(s[:pre_len])
            s = s[pre_len:]
            break
        suf = _SUFFIX.search(s[pre_len:])
        suf_len = len(s) - pre_len - suf.start() if suf else 0
        if suf_len and _special(s[:-suf_len]) is not None:
            suffixes.append(s[-suf_len:])
            s = s[:-suf_len]
            break
        if pre_len and suf_len and pre_len + suf_len <= len(s):
            prefixes.append(s[:pre_len])
            suffixes.append(s[-suf_len:])
            s = s[pre_len:-suf_len]
        elif pre_len:
            prefixes.append(s[:pre_len])
            s = s[pre_len:]
        elif suf_len:
            suffixes.append(s[-suf_len:])
            s = s[:-suf_len]
    middle: list[str] = []
    if s:
        if (special := _special(s)) is not None:
            middle = list(special)
        elif _URL.match(s):
            middle = [s]
        else:
            start = 0
            for m in _INFIX.finditer(s):
                if m.start() == 0:
                    continue  # spaCy never splits an infix off the start
                if m.start() != start:
                    middle.append(s[start : m.start()])
                if m.end() != m.start():
                    middle.append(m.group())
                start = m.end()
            if s[start:]:
                middle.append(s[start:])
    return _merge_specials((*prefixes, *middle, *reversed(suffixes)))


def word_tokens(text: str) -> list[str]:
    """The words and punctuation tokens of ``text`` as spaCy's English tokenizer gives them (datatrove's
    ``split_into_words`` for English), whitespace dropped."""
    out: list[str] = []
    for chunk in text.split():
        # Most chunks are plain words: no affix, infix or special case can apply to letters alone.
        if chunk.isalpha() and chunk.lower() not in _SPLIT_WORDS:
            out.append(chunk)
        else:
            out.extend(_chunk_tokens(chunk))
    return out


def line_tokens(text: str) -> list[list[str]]:
    """``word_tokens`` of each line of ``text.splitlines()``.

    Every line break ``str.splitlines`` knows is whitespace to ``str.split``, so no chunk spans two lines
    and the lines' tokens, concatenated, are ``word_tokens(text)``: the rules tokenize a document once and
    hand each line's tokens to the C4 sentence count and the whole to the Gopher signals.
    """
    return [word_tokens(line) for line in text.splitlines()]


_SENTENCE_END = regex.compile(r"^\p{Sentence_Terminal}$")
_ALL_PUNCT = regex.compile(r"^\p{P}+$")

# What the sentence count asks of a token: 1 a sentence end, 2 other punctuation (spaCy's Token.is_punct:
# every character in a Unicode punctuation category), 0 neither. Tokens repeat a lot (``.``, ``,``, the
# common words): a dict spares two regex matches per token; it is cleared when it grows past a bound, so a
# long-lived Python worker's memory stays flat.
_KINDS: dict[str, int] = {}
_MAX_KINDS = 1 << 16


def _kind(token: str) -> int:
    kind = 1 if _SENTENCE_END.match(token) else 2 if _ALL_PUNCT.match(token) else 0
    if len(_KINDS) >= _MAX_KINDS:
        _KINDS.clear()
    _KINDS[token] = kind
    return kind


def count_sentences(text: str, tokens: list[str] | None = None) -> int:
    """Sentences in ``text`` as spaCy's ``sentencizer`` splits them (datatrove's ``split_into_sentences``
    for English): a sentence ends after a sentence-final token (``.``, ``!``, ``?``, ``。`` …) once a token
    that is not punctuation follows; 0 for text without tokens.

    Args:
        text: one line (or any text).
        tokens: ``word_tokens(text)`` when the caller has them already.
    """
    if tokens is None:
        tokens = word_tokens(text)
    if not tokens:
        return 0
    n, seen_end = 1, False
    kinds = _KINDS
    for token in tokens:
        kind = kinds.get(token)
        if kind is None:
            kind = _kind(token)
        if kind == 1:
            seen_end = True
        elif seen_end and kind == 0:
            n += 1
            seen_end = False
    return n

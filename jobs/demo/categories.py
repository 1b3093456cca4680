"""The document categories of the sample: each generator returns ``(title, text)`` for one page.

Prose and non-English articles, forum threads, code tutorials, worked maths, boilerplate pages, spam and
very short posts.  Their fixed lines and snippets are data (``forum.json``, ``code.json``,
``boilerplate.json``, ``spam.json`` in ``jobs/demo/data``).
"""

from __future__ import annotations

import math
import random
import re

from jobs.demo.vocab import (
    FIRST_NAMES,
    LAST_NAMES,
    MONTHS,
    TOPIC_VOCAB,
    Domain,
    Parts,
    compile_template,
    load_data,
    make_title,
    sentences,
    word_count,
)

_FORUM = load_data("forum")
_FORUM_LINES = tuple(compile_template(t) for t in _FORUM["lines"])
_USER_PARTS, _USER_TAILS = _FORUM["user_parts"], _FORUM["user_tails"]
_CODE = load_data("code")
_CODE_VERBS = _CODE["verbs"]
_CODE_INTRO = tuple(compile_template(t) for t in _CODE["intros"])
#: The sentence that closes every code snippet (the PRRC labels count snippets by their opening words).
CODE_OUTRO = tuple(compile_template(t) for t in _CODE["outros"])
_BOILER_LINES = tuple(compile_template(t) for t in load_data("boilerplate")["lines"])
_SPAM = load_data("spam")
_SPAM_LINES = tuple(compile_template(t) for t in _SPAM["lines"])


def _paragraphs(rng: random.Random, lang: str, topic: str, target_words: int, lo: int, hi: int) -> list[str]:
    """Sentences for a whole article drawn in one pass (so templates are not reused early), then cut
    into paragraphs of ``lo``..``hi`` sentences until about ``target_words`` words."""
    # Sentences average ~14 words, so dividing by 11 over-generates a little; cut at the target.
    sents = sentences(rng, lang, topic, target_words // 11 + 6)
    paras: list[str] = []
    words = i = 0
    while words < target_words:
        if i >= len(sents):
            sents += sentences(rng, lang, topic, 10)
        k = rng.randint(lo, hi)
        para = " ".join(sents[i : i + k])
        i += k
        if not para:
            continue
        words += word_count(para)
        paras.append(para)
    return paras


def prose_page(rng: random.Random, topic: str) -> tuple[str, str]:
    # Skewed length distribution: most articles are a few hundred words, some run long.
    target = int(160 + 1000 * rng.random() ** 1.8)
    title = make_title(rng, "en", topic)
    blocks = [title]
    if rng.random() < 0.6:
        d = rng.randint(1, 28)
        blocks.append(
            f"By {rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}, "
            f"{d} {rng.choice(MONTHS)} {rng.randint(2015, 2024)}"
        )
    blocks += _paragraphs(rng, "en", topic, target, 3, 6)
    return title, "\n\n".join(blocks)


def non_english_page(rng: random.Random, lang: str) -> tuple[str, str]:
    target = int(130 + 260 * rng.random() ** 1.5)
    title = make_title(rng, lang, "")
    return title, "\n\n".join([title, *_paragraphs(rng, lang, "", target, 3, 5)])


def _username(rng: random.Random) -> str:
    return f"{rng.choice(_USER_PARTS)}_{rng.choice(_USER_TAILS)}{rng.randint(1, 99)}"


def forum_thread(rng: random.Random, topic: str) -> tuple[str, str]:
    vocab = TOPIC_VOCAB[topic]
    title = "Re: " + vocab.fill(compile_template(rng.choice(_FORUM["titles"])), rng)
    blocks = [title]
    prev_first = ""
    lines_left = list(_FORUM_LINES)
    rng.shuffle(lines_left)
    for i in range(rng.randint(3, 8)):
        user = _username(rng)
        lines = []
        style = rng.randrange(3)
        if style == 0:
            lines.append(f"{user} wrote:")
        elif style == 1:
            lines.append(
                f"Posted by {user} on {rng.randint(1, 28)} {rng.choice(MONTHS)} {rng.randint(2012, 2024)}"
            )
        else:
            lines.append(f"#{i + 1} {user}")
        if prev_first and rng.random() < 0.3:
            lines.append("> " + prev_first)
        # Lines are drawn without replacement per thread: people rarely post the very same reply twice.
        n_lines = rng.randint(1, 4)
        if len(lines_left) < n_lines:
            lines_left = list(_FORUM_LINES)
            rng.shuffle(lines_left)
        body = [vocab.fill(lines_left.pop(), rng, cap=False) for _ in range(n_lines)]
        lines.extend(body)
        if rng.random() < 0.2:
            lines.append(rng.choice(("Sent from my phone", f"-- {user}", "cheers")))
        prev_first = body[0]
        blocks.append("\n".join(lines))
    return title, "\n\n".join(blocks)


def _ident(words: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", words.lower()).strip("_")


def code_tutorial(rng: random.Random, topic: str) -> tuple[str, str]:
    vocab = TOPIC_VOCAB[topic]
    lang = "Python" if rng.random() < 0.6 else "JavaScript"
    noun = vocab.pick("n", rng)
    title = rng.choice(
        (
            f"How to {rng.choice(_CODE_VERBS)} {noun} records in {lang}",
            f"Quick tip: a tiny {lang} helper for {noun} data",
            f"{lang} snippet of the week: {noun}",
        )
    )
    blocks = [title]
    for _ in range(rng.randint(1, 3)):
        fill = _compile_lang(rng.choice(_CODE_INTRO), lang)
        blocks.append(vocab.fill(fill, rng))
        key = _ident(vocab.pick("n", rng))
        snake = f"{rng.choice(_CODE_VERBS)}_{key}"
        camel = re.sub(r"_(\w)", lambda m: m.group(1).upper(), snake)
        pascal = camel[0].upper() + camel[1:]
        snippet = rng.choice(_CODE["python_snippets"] if lang == "Python" else _CODE["javascript_snippets"])
        subs = (
            ("@F@", snake if lang == "Python" else camel),
            ("@X@", "items" if rng.random() < 0.5 else "rows"),
            ("@K@", key),
            ("@N@", str(rng.randint(2, 500))),
            ("@C@", pascal),
            ("@U@", key.upper()),
        )
        for tok, val in subs:
            snippet = snippet.replace(tok, val)
        fence = "python" if lang == "Python" else "javascript"
        if rng.random() < 0.7:
            blocks.append(f"```{fence}\n{snippet.rstrip()}\n```")
        else:
            blocks.append("\n".join("    " + ln if ln else "" for ln in snippet.rstrip().split("\n")))
        blocks.append(vocab.fill(_compile_lang(rng.choice(CODE_OUTRO), lang), rng))
    return title, "\n\n".join(blocks)


def _compile_lang(parts: Parts, lang: str) -> Parts:
    """Substitute the ``{lang}`` slot (programming language) before normal filling."""
    out: list = []
    carry = ""
    for lit, slot in parts:
        if slot == "lang":
            carry += lit + lang
        else:
            out.append((carry + lit, slot))
            carry = ""
    if carry:
        out.append((carry, ""))
    return tuple(out)


def _sgn(v: int) -> str:
    return f"+ {v}" if v >= 0 else f"- {-v}"


def _math_problem(rng: random.Random) -> tuple[str, str]:
    kind = rng.randrange(9)
    if kind == 0:
        x, a, b = rng.randint(-9, 15), rng.randint(2, 9), rng.randint(-30, 30)
        c = a * x + b
        return (
            f"Solve ${a}x {_sgn(b)} = {c}$ for $x$.",
            f"Move the constant term to the right-hand side: ${a}x = {c} {_sgn(-b)} = {c - b}$. "
            f"Dividing both sides by {a} gives $x = \\frac{{{c - b}}}{{{a}}} = {x}$. "
            f"Check: ${a} \\cdot ({x}) {_sgn(b)} = {c}$, so the answer is $x = {x}$.",
        )
    if kind == 1:
        r1, r2 = rng.sample([v for v in range(-9, 10) if v], 2)
        s, p = r1 + r2, r1 * r2
        return (
            f"Find the roots of $x^2 {_sgn(-s)}x {_sgn(p)} = 0$.",
            f"We need two numbers whose product is {p} and whose sum is {s}: these are {r1} and {r2}. "
            f"Hence $(x {_sgn(-r1)})(x {_sgn(-r2)}) = 0$ and the roots are $x_1 = {r1}$ and $x_2 = "
            f"{r2}$. The discriminant is $\\Delta = b^2 - 4ac = {s * s - 4 * p}$, which is positive, so "
            f"both roots are real.",
        )
    if kind == 2:
        r = rng.randint(2, 25)
        return (
            f"Find the area of a circle with radius {r} cm.",
            f"The area is $A = \\pi r^2 = \\pi \\cdot {r}^2 = {r * r}\\pi \\approx "
            f"{math.pi * r * r:.2f}$ square centimetres.",
        )
    if kind == 3:
        price, q = rng.randint(20, 500), rng.randint(5, 40)
        inc = price * q / 100
        return (
            f"A jacket costs {price} dollars and its price rises by {q}%. What is the new price?",
            f"The increase is ${q}\\% \\times {price} = {inc:.2f}$ dollars, so the new price is "
            f"${price} + {inc:.2f} = {price + inc:.2f}$ dollars.",
        )
    if kind == 4:
        t = rng.choice((1.5, 2, 2.5, 3, 4))
        d = rng.randint(12, 90) * 2
        return (
            f"A cyclist covers {d} km in {t} hours. Find the average speed.",
            f"Average speed is distance over time: $v = \\frac{{d}}{{t}} = \\frac{{{d}}}{{{t}}} "
            f"\\approx {d / t:.1f}$ km/h.",
        )
    if kind == 5:
        a1, dd, n = rng.randint(1, 20), rng.randint(2, 9), rng.randint(8, 40)
        an = a1 + (n - 1) * dd
        return (
            f"Find the sum of the first {n} terms of the arithmetic sequence {a1}, {a1 + dd}, "
            f"{a1 + 2 * dd}, and so on.",
            f"The common difference is $d = {dd}$, so the last term is $a_{{{n}}} = a_1 + (n-1)d = "
            f"{a1} + {n - 1} \\cdot {dd} = {an}$. Then $S_{{{n}}} = \\frac{{n(a_1 + a_n)}}{{2}} = "
            f"\\frac{{{n}({a1} + {an})}}{{2}} = {n * (a1 + an) // 2}$.",
        )
    if kind == 6:
        a, b, c, x0 = rng.randint(1, 6), rng.randint(-9, 9), rng.randint(-9, 9), rng.randint(-3, 4)
        val = 3 * a * x0 * x0 + 2 * b * x0 + c
        return (
            f"Differentiate $f(x) = {a}x^3 {_sgn(b)}x^2 {_sgn(c)}x$ and evaluate $f'(x)$ at $x = {x0}$.",
            f"Using the power rule, $f'(x) = {3 * a}x^2 {_sgn(2 * b)}x {_sgn(c)}$. "
            f"Substituting $x = {x0}$ gives $f'({x0}) = {val}$.",
        )
    if kind == 7:
        a, b, c = rng.choice(((3, 4, 5), (5, 12, 13), (8, 15, 17), (7, 24, 25)))
        k = rng.randint(1, 6)
        a, b, c = a * k, b * k, c * k
        return (
            f"A right triangle has legs of length {a} and {b}. How long is the hypotenuse?",
            f"By Pythagoras, $c = \\sqrt{{a^2 + b^2}} = \\sqrt{{{a * a} + {b * b}}} = "
            f"\\sqrt{{{c * c}}} = {c}$.",
        )
    red, blue = rng.randint(2, 20), rng.randint(2, 20)
    g = math.gcd(red, red + blue)
    return (
        f"A bag contains {red} red and {blue} blue marbles. One marble is drawn at random. "
        f"What is the probability that it is red?",
        f"$P(\\text{{red}}) = \\frac{{{red}}}{{{red} + {blue}}} = "
        f"\\frac{{{red // g}}}{{{(red + blue) // g}}} "
        f"\\approx {red / (red + blue):.3f}$.",
    )


def maths_page(rng: random.Random, topic: str) -> tuple[str, str]:
    subject = rng.choice(
        (
            "linear equations",
            "quadratics",
            "geometry",
            "probability",
            "calculus basics",
            "sequences and series",
            "percentages",
            "mixed revision",
        )
    )
    title = rng.choice(
        (
            "Worked examples: {s}",
            "Practice problems with full solutions ({s})",
            "Exam revision: {s}",
            "Step-by-step solutions for {s}",
        )
    ).format(s=subject)
    k = rng.randint(2, 6)
    blocks = [
        title,
        rng.choice(
            (
                f"Below are {k} practice problems with worked solutions. Try each one yourself before "
                f"reading the answer.",
                f"Here are {k} exercises on {subject} from this week's tutoring session, solved step by "
                f"step.",
                f"These {k} problems come up again and again in exams, so it pays to know the method by "
                f"heart.",
            )
        ),
    ]
    for i in range(1, k + 1):
        st, sol = _math_problem(rng)
        blocks.append(f"Problem {i}. {st}")
        blocks.append(f"Solution. {sol}")
    blocks.append(
        rng.choice(
            (
                "If you spot a mistake, let us know in the comments.",
                "Next week we will look at harder variations of these questions.",
                "Remember to always check your answer by substituting it back into the original problem.",
            )
        )
    )
    return title, "\n\n".join(blocks)


def boilerplate_page(rng: random.Random, dom: Domain) -> tuple[str, str]:
    vocab = TOPIC_VOCAB[dom.topic]
    extra = {"site": dom.site_name, "domain": dom.name}
    lines = []
    for parts in rng.sample(_BOILER_LINES, rng.randint(12, 36)):
        out = []
        for lit, slot in parts:
            out.append(lit)
            if slot == "k":
                out.append(str(rng.randint(1, 99)))
            elif slot in extra:
                out.append(extra[slot])
            elif slot:
                out.append(vocab.pick(slot, rng))
        lines.append("".join(out))
    return dom.site_name, "\n".join(lines)


def spam_page(rng: random.Random, dom: Domain) -> tuple[str, str]:
    products = _SPAM["products"].get(dom.topic, _SPAM["products"]["finance"])
    prod = rng.choice(products)
    # A per-document code breaks up otherwise identical n-grams between spam pages of one site.
    code = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(6))
    lines = []
    for _ in range(rng.randint(6, 18)):
        parts = rng.choice(_SPAM_LINES)
        out = []
        for lit, slot in parts:
            out.append(lit)
            if slot == "p":
                out.append(prod if rng.random() < 0.7 else rng.choice(products))
            elif slot == "P":
                out.append(prod.upper())
            elif slot == "k":
                out.append(str(rng.randint(1, 99)))
            elif slot == "code":
                out.append(code)
            elif slot == "site":
                out.append(dom.name)
        line = "".join(out)
        lines.extend([line] * rng.choice((1, 1, 2, 3, 5)))
    return prod.upper(), "\n".join(lines)


def short_post(rng: random.Random, topic: str) -> tuple[str, str]:
    while True:
        title = make_title(rng, "en", topic)
        body = " ".join(sentences(rng, "en", topic, rng.randint(1, 2)))
        text = f"{title}\n\n{body}" if rng.random() < 0.6 else body
        if word_count(text) < 40:
            return title, text


def non_english_lang(rng: random.Random) -> str:
    """The language of a non-English page: German, French or Spanish, 4:3:3."""
    return rng.choices(("de", "fr", "es"), weights=(4, 3, 3))[0]


def page(rng: random.Random, category: str, dom: Domain, lang: str = "en") -> tuple[str, str]:
    """``(title, text)`` of one page of ``category`` hosted on ``dom`` (``lang``: for non-English pages)."""
    if category == "prose":
        return prose_page(rng, dom.topic)
    if category == "forum":
        return forum_thread(rng, dom.topic)
    if category == "code":
        return code_tutorial(rng, dom.topic if dom.category == "code" else "programming")
    if category == "math":
        return maths_page(rng, dom.topic)
    if category == "boilerplate":
        return boilerplate_page(rng, dom)
    if category == "spam":
        return spam_page(rng, dom)
    if category == "non_english":
        return non_english_page(rng, lang)
    return short_post(rng, dom.topic)

"""Deterministic generator of a web-like sample corpus for the corpuslake pipeline.

The repository ships no data dump; instead this module synthesises, on demand, a small
corpus that looks like what a pretraining-data pipeline meets in the wild, together with
a ground-truth file (``truth.json``) that lets tests check every pipeline stage:

* ``raw/`` holds six input files in every format the ingest stage supports: plain,
  gzip and zstd JSONL, Parquet, a Common Crawl style WET file and a WARC file with
  HTML ``response`` records (plus one ``request`` record readers must skip).
* Documents fall into realistic categories (clean prose, forum talk, code, maths,
  boilerplate, spam, non-English, very short) spread over more than fifty registered
  domains, each with its own topic vocabulary and one dominant category.
* Planted problems: malformed records of every reject reason the ingest stage knows,
  exact duplicates, near duplicates (including transitive chains), documents that only
  share a site header/footer (negatives for near-duplicate detection), and benchmark
  examples copied verbatim into a few documents (contamination).
* ``benchmarks/`` holds three small evaluation sets (multiple-choice science, maths word
  problems, reading comprehension) used by the decontamination stage.
* ``labels/prrc.jsonl`` holds labelled examples (``text``, ``professionalism``, ``readability``,
  ``reasoning``, ``cleanliness`` as integers 0-5, ``category``, ``variant``) for the demo PRRC raters
  that ``jobs.demo_models`` trains; the rules are in :func:`_make_prrc_labels`.  Their texts are made
  like the corpus's but from a separate random stream, and none equals a corpus document.

Everything is derived from ``seed`` through :class:`random.Random` instances seeded with
strings, so the same seed yields byte-identical files on every run and machine (gzip
headers carry ``mtime=0``; no wall-clock time is ever written).

Keys of ``truth.json`` (ids are source ids: the JSONL/Parquet ``id`` field, or the WARC-Record-ID):

* ``docs``: ``{id: {category, lang, domain, file, record_number}}`` for every record that must be
  accepted; ``record_number`` is 1-based (JSONL line, Parquet row, or WET/WARC data record counting
  only ``conversion``/``response`` records).
* ``rejects``: ``[{file, record_number, reason}]`` for every record that must be rejected.
* ``counts``: ``records_total``, ``expected_accepted``, ``expected_rejected``, ``rejected_by_reason``,
  plus breakdowns ``by_file``, ``by_category``, ``by_lang`` and the number of ``domains``.
* ``exact_duplicates`` (``[original, copy]``, identical after collapsing whitespace), split into
  ``exact_duplicates_byte_identical`` and ``exact_duplicates_whitespace_variants``.
* ``near_duplicates`` (``[a, b]``, word 5-gram Jaccard about 0.8-0.93, values in
  ``near_duplicate_details``), ``chains`` (``[a, b, c]``: a~b and b~c, a and c less similar; see
  ``chain_details``) and ``boilerplate_negatives`` (same site header/footer, Jaccard < 0.5).
* ``contaminated``: ``[{doc_id_source, benchmark, example_id, field, snippet, overlapping_example_ids}]``.
* ``files``, ``benchmarks``, ``domains``, ``notes`` and the generation parameters.

Originals always come before their copies in file-name-then-record order, so a first-wins
deduplicator keeps the original.

Run ``python -m jobs.sample_corpus --out data/sample`` to (re)create the default sample.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import html
import io
import json
import math
import random
import re
import shutil
import sys
import time
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

__all__ = [
    "BENCHMARK_NAMES",
    "CATEGORY_SHARES",
    "RAW_FILES",
    "REJECT_REASONS",
    "generate",
    "main",
]

GENERATOR_VERSION = "1"

#: Reject reasons understood by the ingest stage (exact strings).
REJECT_REASONS = (
    "malformed_json",
    "not_an_object",
    "missing_text",
    "empty_text",
    "non_string_text",
    "invalid_utf8",
    "too_large",
    "duplicate_doc_id",
)

#: Target share of each document category among the ``n_docs`` accepted documents.
CATEGORY_SHARES = {
    "prose": 0.45,
    "forum": 0.10,
    "code": 0.07,
    "math": 0.07,
    "boilerplate": 0.10,
    "spam": 0.08,
    "non_english": 0.08,
    "short": 0.05,
}

#: Raw files, in file-name order (the order that decides which duplicate id wins).
RAW_FILES = (
    "raw/crawl-000.warc.wet.gz",
    "raw/crawl-001.warc.gz",
    "raw/web-000.jsonl",
    "raw/web-001.jsonl.gz",
    "raw/web-002.jsonl.zst",
    "raw/web-003.parquet",
)

BENCHMARK_NAMES = ("mc_science", "math_word", "reading_comp")

_WET, _WARC, _W0, _W1, _W2, _PQ = RAW_FILES
# Share of documents per file; most go to the JSONL files.
_FILE_SHARES = {_W0: 0.33, _W1: 0.20, _W2: 0.20, _PQ: 0.12, _WET: 0.09, _WARC: 0.06}
_SOURCE_TAGS = {
    _W0: "cc-main-2024-10",
    _W1: "cc-main-2024-18",
    _W2: "news-partner-feed",
    _PQ: "legacy-dump",
}

# Planted rejects in the JSONL files: (file, reason, count).  Fixed counts (not scaled with
# n_docs) so even a tiny sample exercises every reason at least twice.
_JSONL_REJECTS = (
    (_W0, "malformed_json", 3),
    (_W0, "not_an_object", 3),
    (_W0, "missing_text", 2),
    (_W0, "empty_text", 2),
    (_W0, "non_string_text", 3),
    (_W0, "invalid_utf8", 2),
    (_W0, "too_large", 2),
    (_W1, "malformed_json", 1),
    (_W1, "missing_text", 1),
    (_W1, "empty_text", 1),
    (_W1, "invalid_utf8", 1),
    (_W1, "duplicate_doc_id", 2),
    (_W2, "duplicate_doc_id", 1),
)
_PARQUET_REJECTS = (("missing_text", 2), ("empty_text", 1))
_WET_REJECTS = (("invalid_utf8", 1), ("empty_text", 1))

_MIN_DOCS = 200

# ---------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------

# topic -> (nouns, adjectives, past-tense verbs, roles); comma separated to allow multi-word items.
_TOPICS_RAW = {
    "science": (
        "telescope, experiment, molecule, sample, hypothesis, enzyme, laboratory, particle detector, "
        "climate model, fossil record, gene sequence, neutron star, microscope, research grant, data set, "
        "field study, protein, satellite, comet, crystal",
        "experimental, peer-reviewed, surprising, precise, microscopic, theoretical, reliable, unexpected, "
        "promising, controversial",
        "measured, analysed, observed, confirmed, challenged, replicated, detected, published, modelled, "
        "tested",
        "physicist, biologist, chemist, astronomer, researcher, lab technician, geologist, student",
    ),
    "cooking": (
        "sourdough starter, casserole, recipe, cast iron pan, spice blend, roast chicken, pastry, risotto, "
        "marinade, oven, chopping board, stock pot, tomato sauce, lemon tart, spice rack, bread dough, soup, "
        "pantry",
        "crispy, savoury, homemade, tender, seasonal, rich, fragrant, simple, golden, hearty",
        "baked, simmered, seasoned, roasted, whisked, tasted, prepared, grilled, kneaded, served",
        "chef, baker, home cook, food writer, restaurant owner, butcher, farmer, nutritionist",
    ),
    "sports": (
        "midfielder, penalty kick, season opener, training session, league table, stadium, relay team, "
        "marathon, transfer window, scoreboard, coaching staff, tournament, derby match, injury report, "
        "free kick, final whistle, trophy, squad",
        "decisive, defensive, unbeaten, exhausting, dramatic, young, physical, tactical, promising, late",
        "defeated, scored, trained, coached, signed, equalised, dominated, won, lost, tackled",
        "striker, goalkeeper, manager, referee, supporter, captain, analyst, physio",
    ),
    "finance": (
        "interest rate, mortgage, pension fund, index fund, stock market, savings account, credit score, "
        "quarterly report, inflation figure, bond yield, budget, dividend, tax return, loan, exchange rate, "
        "portfolio, annual statement, bank",
        "volatile, long-term, conservative, fixed, cautious, profitable, rising, modest, steady, risky",
        "invested, borrowed, reported, forecast, lowered, raised, audited, withdrew, saved, calculated",
        "investor, economist, accountant, banker, trader, financial adviser, saver, regulator",
    ),
    "programming": (
        "compiler, database, code review, function, pull request, test suite, framework, release, "
        "memory leak, API, configuration file, deployment, container, query planner, logging library, "
        "build server, type checker, package manager",
        "asynchronous, open-source, legacy, efficient, modular, buggy, readable, stable, lightweight, "
        "verbose",
        "refactored, deployed, debugged, compiled, merged, profiled, rewrote, documented, benchmarked, "
        "patched",
        "developer, programmer, maintainer, engineer, tester, architect, contributor, sysadmin",
    ),
    "math": (
        "equation, proof, theorem, fraction, integral, polynomial, geometry lesson, probability puzzle, "
        "number line, prime number, matrix, graph, formula, textbook, worksheet, exam paper, derivative, "
        "sequence",
        "elegant, rigorous, tricky, basic, abstract, numerical, famous, clever, simple, symmetric",
        "proved, solved, simplified, derived, plotted, estimated, checked, factored, explained, generalised",
        "mathematician, tutor, teacher, student, statistician, lecturer, examiner, puzzle fan",
    ),
    "travel": (
        "itinerary, train journey, hostel, coastal path, mountain pass, ferry, boutique hotel, road trip, "
        "guidebook, airport lounge, night market, walking tour, campsite, backpack, border crossing, "
        "old town, beach, visa",
        "scenic, remote, crowded, affordable, charming, quiet, historic, breathtaking, busy, rugged",
        "visited, explored, booked, crossed, photographed, recommended, hiked, reviewed, mapped, discovered",
        "traveller, tour guide, hotel owner, backpacker, pilot, local guide, photographer, ranger",
    ),
    "health": (
        "vaccine, sleep schedule, blood pressure, exercise routine, clinical trial, diet, hospital ward, "
        "vitamin supplement, heart rate, physiotherapy session, check-up, immune system, symptom, "
        "prescription, mental health service, walking habit, clinic, treatment",
        "healthy, chronic, preventive, balanced, mild, effective, routine, gentle, serious, daily",
        "prescribed, treated, diagnosed, recommended, monitored, reduced, improved, examined, tracked, "
        "prevented",
        "doctor, nurse, patient, physiotherapist, pharmacist, dietitian, surgeon, carer",
    ),
    "history": (
        "manuscript, empire, treaty, castle, archive, dynasty, battle, parliament, trade route, monastery, "
        "census record, monument, revolution, coin hoard, letter, harbour, railway, museum collection",
        "medieval, ancient, forgotten, royal, colonial, famous, ruined, industrial, rare, contested",
        "excavated, restored, recorded, discovered, translated, founded, conquered, rebuilt, catalogued, "
        "studied",
        "historian, archivist, archaeologist, curator, monk, merchant, soldier, librarian",
    ),
    "gaming": (
        "console, boss fight, open world, patch, controller, speedrun, save file, multiplayer mode, "
        "level editor, frame rate, expansion pack, indie game, quest line, leaderboard, graphics card, "
        "sequel, soundtrack, tutorial",
        "immersive, addictive, retro, difficult, competitive, polished, cooperative, pixelated, ambitious, "
        "casual",
        "played, released, patched, streamed, unlocked, completed, reviewed, modded, upgraded, replayed",
        "gamer, streamer, developer, designer, speedrunner, reviewer, tester, modder",
    ),
    "law": (
        "contract, tribunal, appeal, statute, court ruling, tenancy agreement, judge, witness statement, "
        "legal aid scheme, consultation, copyright claim, employment law, lawsuit, settlement, regulation, "
        "hearing, verdict, legislation",
        "binding, landmark, unfair, lengthy, statutory, civil, criminal, complex, fair, recent",
        "ruled, appealed, drafted, signed, challenged, overturned, amended, upheld, reviewed, filed",
        "lawyer, barrister, judge, solicitor, tenant, landlord, clerk, paralegal",
    ),
    "gardening": (
        "compost heap, greenhouse, tomato plant, raised bed, hedge, seed tray, lawn, rose bush, "
        "vegetable patch, watering can, potting mix, fruit tree, herb garden, pond, mulch, allotment, bulb, "
        "trellis",
        "shady, sunny, overgrown, fertile, drought-tolerant, native, tidy, wild, seasonal, frost-hardy",
        "planted, pruned, watered, harvested, sowed, weeded, grew, transplanted, fed, protected",
        "gardener, grower, landscaper, horticulturist, allotment holder, florist, beekeeper, volunteer",
    ),
    "music": (
        "album, concert, guitar, orchestra, vinyl record, setlist, rehearsal, chorus, studio session, "
        "festival, piano, drum kit, melody, tour, playlist, microphone, choir, string quartet",
        "acoustic, live, haunting, upbeat, classical, experimental, raw, melodic, loud, intimate",
        "recorded, performed, composed, released, rehearsed, mixed, produced, toured, sang, remastered",
        "musician, singer, drummer, producer, composer, conductor, guitarist, fan",
    ),
    "automotive": (
        "engine, gearbox, electric car, brake pad, service schedule, fuel economy, tyre, battery pack, "
        "dashboard, road test, hybrid model, exhaust system, charging point, clutch, suspension, MOT test, "
        "paint job, spare wheel",
        "fuel-efficient, reliable, noisy, electric, powerful, second-hand, compact, expensive, smooth, "
        "sporty",
        "repaired, tested, replaced, drove, serviced, tuned, inspected, charged, upgraded, restored",
        "mechanic, driver, engineer, dealer, test driver, owner, inspector, racer",
    ),
    "environment": (
        "wetland, carbon budget, recycling scheme, wind farm, river, rainforest, air quality report, "
        "solar panel, wildlife corridor, coral reef, heatwave, flood defence, species, emissions target, "
        "glacier, tree planting project, ocean, landfill",
        "sustainable, endangered, renewable, polluted, coastal, fragile, protected, warming, green, local",
        "protected, restored, monitored, polluted, measured, planted, cleaned, surveyed, reduced, reported",
        "ecologist, activist, ranger, volunteer, scientist, farmer, campaigner, planner",
    ),
    "education": (
        "curriculum, classroom, exam season, reading scheme, school library, timetable, homework policy, "
        "lecture, scholarship, tutoring programme, report card, playground, school budget, "
        "teaching assistant, science fair, term, syllabus, lesson plan",
        "primary, secondary, inclusive, demanding, creative, practical, underfunded, digital, bilingual, "
        "weekly",
        "taught, assessed, introduced, funded, revised, graded, organised, attended, supported, planned",
        "teacher, pupil, headteacher, parent, lecturer, governor, tutor, student",
    ),
    "real_estate": (
        "property market, terraced house, mortgage offer, rental flat, estate agency, deposit, asking price, "
        "renovation, planning application, housing estate, loft conversion, valuation, conveyancing, "
        "apartment block, garden flat, survey, lease, kitchen extension",
        "affordable, detached, overpriced, spacious, modern, period, leasehold, vacant, suburban, renovated",
        "bought, sold, valued, renovated, listed, rented, inspected, extended, mortgaged, advertised",
        "buyer, seller, agent, landlord, tenant, surveyor, builder, first-time buyer",
    ),
    "parenting": (
        "bedtime routine, toddler, school run, packed lunch, nursery, screen time rule, family holiday, "
        "birthday party, pocket money, nappy, sleep regression, playdate, childminder, homework table, "
        "car seat, tantrum, story book, weekend plan",
        "tired, patient, busy, gentle, noisy, consistent, sleepless, flexible, cheerful, stressful",
        "tried, managed, organised, planned, juggled, changed, cooked, packed, encouraged, survived",
        "parent, grandparent, childminder, teacher, nurse, health visitor, babysitter, dad",
    ),
    "pets": (
        "puppy, cat flap, dog lead, vet visit, aquarium, hamster cage, litter tray, flea treatment, "
        "walking route, pet insurance policy, rescue centre, grooming kit, bird feeder, rabbit hutch, "
        "chew toy, training class, food bowl, kitten",
        "playful, nervous, loyal, curious, elderly, energetic, fluffy, rescued, sleepy, friendly",
        "adopted, groomed, trained, fed, walked, vaccinated, rescued, brushed, weighed, rehomed",
        "vet, dog walker, owner, breeder, trainer, volunteer, groomer, pet sitter",
    ),
}

_FIRST_NAMES = (
    "Maria James Aisha Tom Priya Daniel Chloe Samuel Fatima Oliver Grace Mohammed Hannah Lucas Mei "
    "Ethan Sofia Liam Zara Noah Ruth Kofi Isla Mateo Amelia Jack Leila Arjun Emma Ben"
).split()
_LAST_NAMES = (
    "Lopez Smith Okafor Brennan Patel Nguyen Fischer Walsh Haddad Turner Murphy Kowalski Silva "
    "Campbell Tanaka Byrne Rossi Mensah Clarke Novak Evans Ahmed Hughes Larsen Moreau Reid Bianchi "
    "Doyle Kaur Wright"
).split()
_PLACES = (
    "Leeds",
    "Melbourne",
    "Toronto",
    "Austin",
    "Dublin",
    "Auckland",
    "Cape Town",
    "Manchester",
    "Brisbane",
    "Denver",
    "Glasgow",
    "Perth",
    "Seattle",
    "Bristol",
    "Adelaide",
    "Portland",
    "Wellington",
    "Cardiff",
    "Boston",
    "Ottawa",
    "Edinburgh",
    "Hobart",
    "Chicago",
    "Vancouver",
    "Nottingham",
    "the Midlands",
    "northern Queensland",
    "rural Ohio",
    "the Scottish Highlands",
    "the Bay Area",
)
_MONTHS = ("January February March April May June July August September October November December").split()
_ADVERBS = (
    "surprisingly",
    "remarkably",
    "increasingly",
    "clearly",
    "largely",
    "quietly",
    "steadily",
    "genuinely",
    "noticeably",
    "perhaps",
    "broadly",
    "fairly",
)
_CONNECTORS = (
    "However,",
    "Meanwhile,",
    "In practice,",
    "At the same time,",
    "For example,",
    "Still,",
    "In contrast,",
    "As a result,",
    "Interestingly,",
    "Of course,",
    "In recent years,",
    "Even so,",
)
# Words used by the near-duplicate editor when it swaps a word.
_EN_SWAP_WORDS = (
    "new",
    "local",
    "recent",
    "major",
    "small",
    "large",
    "early",
    "later",
    "several",
    "important",
    "modern",
    "popular",
    "quiet",
    "careful",
    "famous",
    "useful",
    "strange",
    "common",
    "rare",
    "final",
)

_EN_TEMPLATES = (
    "{conn} the {a} {n} {v} the {n2} [in|near|around] {p}.",
    "According to {name}, a {r} from {p}, the {n} has become {adv} {a} over the [last|past] {num} years.",
    "Most {rs} [agree|would say|will tell you] that a {a} {n} is more useful than a {a2} {n2}.",
    "In {m} {y}, {name} {v} a {a} {n} that [surprised|impressed|worried] many {rs}.",
    "The {n} is not always {a}, but it is {adv} {a2} when you [compare it|set it side by side] with the "
    "{n2}.",
    "If you [want|hope|are trying] to understand the {n}, start with the {n2} and then look "
    "[closely|carefully] at the {n3}.",
    "There are at least {num} [reasons|good reasons] why the {n} matters to {rs} and to {rs2} alike.",
    "{name} told [us|reporters|our team] that the {n} in {p} was {adv} {a} this year.",
    "One {r} explained that the {a} {n} {v} the {n2} much faster than [expected|anyone predicted|planned].",
    "It is [worth noting|important to remember|easy to forget] that the {n} and the {n2} are {adv} "
    "connected.",
    "We spoke with {name}, who has [worked|lived and worked] as a {r} in {p} for {num} years.",
    "The {a} {n} was first described by a {r} in {y}, long before the {n2} became "
    "[popular|fashionable|common].",
    "Some {rs} in {p} still prefer the {n}, while others have [moved on to|switched to] the {n2}.",
    "This is why the {n} should be {adv} checked before [every|each] {n2}.",
    "The result was a {a} {n} that {v} the {n2} without much [effort|fuss|trouble].",
    "Over the next {num} months, the {n} will be tested by {rs} from {p} and {p2}.",
    'As {name} put it, "the {n} is only as {a} as the {n2} [behind|around|beside] it."',
    "Few people realise how {a} the {n} can be when [it is paired|it is combined|used together] with a {a2} "
    "{n2}.",
    "In the end, the {n} {v} the {n2}, and the {rs} were {adv} [pleased|relieved|satisfied].",
    "Critics argue that the {n} is {a}, yet the figures from {y} tell a [different|more complicated] story.",
    "Roughly {pct} percent of {rs} in {p} said they had [tried|used] the {a} {n} at least once.",
    "Before {y}, the {n} was mostly used by {rs}; today it [turns up|appears] in almost every {n2}.",
    "Our team {v} the {n} for {num} weeks and found it {adv} {a}.",
    "You can read more about the {n} in our [earlier|recent|previous] [piece|article|report] on the {a} "
    "{n2}.",
    "The {n}, which {v} the {n2} last {m}, is expected to [grow|improve|change] again [next year|soon].",
    "That said, no {n} is perfect, and the {a} {n2} has its own [problems|limits|quirks].",
    "A {a} {n} may look simple, but the {n2} underneath is {adv} complex.",
    "Local {rs} in {p} have {adv} welcomed the [changes|updates] to the {n}.",
    "When the {n} fails, the {n2} usually [fails|suffers] with it, as {name} learned in {y}.",
    "{name} and {name2} {v} the {n} together in {p} during {m}.",
    "The real question is whether the {n} can keep up with the {a} {n2}.",
    "Many readers asked how the {n} compares with the {n2}, so here is a [short|quick|brief] answer.",
    "The {a} {n} cost about {price} in {y}, which was a lot of money [at the time|back then].",
    "Here the {n} plays a {a} role, and the {n2} follows {adv}.",
    "Even a small {n} can change how a {r} [thinks about|approaches] the {n2}.",
    "Experts in {p} have warned that the {n} could become {a} if nothing [is done|changes].",
    "For [beginners|newcomers], the [best|simplest|safest] approach is to focus on the {n} first and leave "
    "the {n2} for later.",
    "By {m} {y}, more than {num} {rs} had signed up for the {a} {n} [programme|scheme|course].",
    "It took {name} almost {num} days to get the {n} right, and the {n2} took even longer.",
    "The {n} and the {n2} may sound similar, but they serve [very|quite] different purposes.",
    "What makes the {n} so {a} is not the {n2} itself but the way {rs} use it.",
    "{name}, a {r} who lives near {p}, keeps a {a} {n} close at hand [for emergencies|just in case].",
    "On a typical day, a {r} spends about {num} minutes on the {n} and much less on the {n2}.",
    "There is no single right way to handle the {n}; it depends on the {n2} and on your [budget|time].",
    "Last {m}, a {a} {n} in {p} {v} the {n2} for the first time since {y}.",
    "Ask any {r} in {p} about the {n} and you will hear a {a} story.",
    "The numbers are striking: {pct} percent of the {n} budget now goes on the {n2}.",
    "{name} still remembers the first {a} {n} that {v} the {n2} back in {y}.",
    "Not everyone is convinced, and {name} points out that the {n2} has {adv} improved as well.",
    "Between {y} and last year, the cost of the {n} rose by {pct} percent.",
    "A {r} we interviewed described the {n} as {a} but {a2}.",
    "[Weather|Timing|Money], patience and the {n2} all affect how the {n} performs in {p}.",
    "In {p}, the {n} is {adv} seen as a {a} choice for {rs}.",
    "The {a} {n} is one of {num} examples that {rs} in {p} [often|regularly] mention.",
    "It would be easy to blame the {n}, but the {n2} deserves some of the [credit|blame] too.",
    "Whatever you decide about the {n}, keep a note of the {n2} you used and when.",
    "Since {y}, {rs} in {p} have {v} more than {num} of them.",
    "People often underestimate the {n}, {adv} when the {n2} is {a}.",
    "That is why {name} now checks the {n} every {m} and again before [winter|the holidays].",
    "We will come back to the {n} in a [later|future] article, together with the {a} {n2}.",
)
_EN_TITLES = (
    "{a} {n}: what {rs} in {p} need to know",
    "How the {a} {n} changed {p}",
    "{num} things nobody tells you about the {n}",
    "Why {rs} are rethinking the {n}",
    "The {a} {n} and the future of the {n2}",
    "A beginner's guide to the {n}",
    "Inside the {a} world of the {n}",
    "What we learned from {num} weeks with the {n}",
)

# Non-English vocabularies.  Slot fillers are whole phrases in the grammatical form their template
# position needs, so sentences stay correct without a morphology engine.
_LANGS = {
    "de": {
        "subj": (
            "die Stadtverwaltung",
            "der Bürgermeister",
            "die Landesregierung",
            "das Unternehmen",
            "eine Sprecherin der Firma",
            "der Verein",
            "die Schule",
            "das Museum",
            "ein Experte aus München",
            "die Polizei",
            "der Trainer",
            "die Bäckerei im Zentrum",
            "der Gemeinderat",
            "die Universität",
            "ein Sprecher des Ministeriums",
            "die Feuerwehr",
        ),
        "obj": (
            "einen neuen Plan",
            "das Projekt",
            "die Ergebnisse der Studie",
            "mehr Geld für die Schulen",
            "eine neue Strategie",
            "den Bericht",
            "die Preise für Lebensmittel",
            "ein neues Angebot für Familien",
            "die Pläne für den Bahnhof",
            "einen Vorschlag zur Verkehrsberuhigung",
            "die neuen Öffnungszeiten",
            "ein Programm für junge Leute",
            "die Zahlen für das erste Quartal",
            "eine Ausstellung über die Geschichte der Stadt",
        ),
        "time": (
            "im vergangenen Jahr",
            "am Montag",
            "seit dem Frühjahr",
            "in diesem Sommer",
            "nach langen Verhandlungen",
            "vor wenigen Wochen",
            "am Wochenende",
            "im Herbst",
            "in der vergangenen Woche",
            "Anfang des Monats",
        ),
        "place": (
            "in Berlin",
            "in der Innenstadt",
            "auf dem Land",
            "in Hamburg",
            "im Süden des Landes",
            "in der Region",
            "in Köln",
            "in Leipzig",
            "am Stadtrand",
            "in Österreich",
        ),
        "part": (
            "vorgestellt",
            "angekündigt",
            "kritisiert",
            "veröffentlicht",
            "geplant",
            "unterstützt",
            "abgelehnt",
            "verbessert",
            "überprüft",
            "eröffnet",
            "verteidigt",
            "beschlossen",
        ),
        "inf": ("vorstellen", "prüfen", "umsetzen", "verbessern", "finanzieren", "erweitern", "ändern"),
        "adj": (
            "wichtig",
            "schwierig",
            "teuer",
            "notwendig",
            "sehr beliebt",
            "nicht einfach",
            "überraschend erfolgreich",
            "umstritten",
            "sinnvoll",
        ),
        "adjw": ("heiß", "trocken", "regnerisch", "kalt", "windig"),
        "city": ("Berlin", "Hamburg", "München", "Köln", "Leipzig", "Dresden", "Wien", "Graz", "Zürich"),
        "first": (
            "Anna",
            "Lukas",
            "Sabine",
            "Jonas",
            "Katrin",
            "Felix",
            "Monika",
            "Stefan",
            "Lena",
            "Tobias",
        ),
        "last": ("Schmidt", "Müller", "Weber", "Wagner", "Becker", "Hoffmann", "Schulz", "Keller", "Huber"),
        "templates": (
            "{subj} hat {time} {obj} {part}.",
            "{subj} hat {place} {obj} {part}, wie {name} bestätigte.",
            "Das ist nicht nur für die Menschen {place} {adj}, sondern auch für die Wirtschaft.",
            "Viele Bürger sind der Meinung, dass die Entscheidung {adj} ist, aber nicht alle sind "
            "einverstanden.",
            "Es gibt aber auch Kritik an dem Vorhaben, denn die Kosten sind {adj} und der Zeitplan ist "
            "unklar.",
            "Wie {subj} mitteilte, soll das Projekt bis zum Jahr {y} abgeschlossen werden.",
            "Die meisten Menschen {place} wissen nicht, wie {adj} diese Frage eigentlich ist.",
            "Im Jahr {y} waren es noch {num} Prozent, heute sind es deutlich mehr.",
            "Nach Ansicht von Fachleuten wird sich die Lage {place} so schnell nicht ändern.",
            "„Ich glaube, dass wir mit dieser Entscheidung auf dem richtigen Weg sind“, sagte {name}.",
            "{subj} will {obj} {inf}, aber dafür fehlt noch das Geld.",
            "Es ist noch nicht klar, ob {subj} {obj} {time} {inf} kann.",
            "Für viele Familien ist das {adj}, weil die Preise in den letzten Jahren stark gestiegen sind.",
            "Die Zahl der Besucher ist im Vergleich zum Vorjahr um {num} Prozent gestiegen.",
            "Dabei spielt auch das Wetter eine Rolle, denn der Sommer war in diesem Jahr sehr {adjw}.",
            "Auch {subj} hat sich zu dem Thema geäußert und {obj} {part}.",
            "Wer mehr darüber wissen möchte, kann sich {time} bei einer Veranstaltung {place} informieren.",
            "Bis jetzt haben sich mehr als {num} Menschen {place} an der Umfrage beteiligt.",
            "{name} arbeitet seit {num} Jahren {place} und kennt die Probleme sehr gut.",
            "Man muss aber auch sagen, dass es {time} schon einige Verbesserungen gegeben hat.",
            "Ob die Maßnahmen {place} wirklich etwas bringen, wird sich erst im Laufe der Zeit zeigen.",
        ),
        "titles": (
            "Neues aus {city}",
            "Was die Menschen {place} bewegt",
            "Kommentar: Warum das Thema {adj} ist",
            "Bericht aus der Region {city}",
        ),
    },
    "fr": {
        "subj": (
            "la mairie",
            "le gouvernement",
            "l'entreprise",
            "le maire de la ville",
            "une porte-parole du ministère",
            "le club",
            "l'école du quartier",
            "le musée",
            "un expert de Lyon",
            "la police",
            "l'entraîneur",
            "la boulangerie du centre",
            "le conseil municipal",
            "l'université",
            "un représentant des habitants",
            "la région",
        ),
        "obj": (
            "un nouveau projet",
            "les résultats de l'étude",
            "plus d'argent pour les écoles",
            "une nouvelle stratégie",
            "le rapport annuel",
            "les prix des produits alimentaires",
            "une nouvelle offre pour les familles",
            "les plans de la nouvelle gare",
            "une proposition pour réduire la circulation",
            "les nouveaux horaires d'ouverture",
            "un programme pour les jeunes",
            "les chiffres du premier trimestre",
            "une exposition sur l'histoire de la ville",
        ),
        "time": (
            "l'année dernière",
            "lundi dernier",
            "depuis le printemps",
            "cet été",
            "après de longues négociations",
            "il y a quelques semaines",
            "ce week-end",
            "à l'automne",
            "la semaine dernière",
            "au début du mois",
        ),
        "place": (
            "à Paris",
            "dans le centre-ville",
            "à la campagne",
            "à Lyon",
            "dans le sud du pays",
            "dans la région",
            "à Marseille",
            "à Bordeaux",
            "en banlieue",
            "à Montréal",
        ),
        "part": (
            "présenté",
            "annoncé",
            "critiqué",
            "publié",
            "prévu",
            "soutenu",
            "refusé",
            "amélioré",
            "vérifié",
            "ouvert",
            "défendu",
            "adopté",
        ),
        "inf": ("présenter", "vérifier", "mettre en place", "améliorer", "financer", "élargir", "modifier"),
        "adj": (
            "difficile",
            "nécessaire",
            "utile",
            "raisonnable",
            "possible",
            "très populaire",
            "indispensable",
            "inévitable",
            "discutable",
        ),
        "adjw": ("chaud", "sec", "pluvieux", "froid", "humide"),
        "city": ("Paris", "Lyon", "Marseille", "Bordeaux", "Lille", "Nantes", "Montréal", "Québec", "Genève"),
        "first": ("Camille", "Julien", "Claire", "Antoine", "Sophie", "Nicolas", "Élodie", "Pierre", "Léa"),
        "last": ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Petit", "Durand", "Leroy", "Moreau"),
        "templates": (
            "{subj} a {part} {obj} {time}.",
            "{subj} a {part} {obj} {place}, comme l'a confirmé {name}.",
            "Ce n'est pas seulement {adj} pour les habitants {place}, mais aussi pour l'économie de la "
            "région.",
            "Beaucoup de gens pensent que cette décision est {adj}, mais tout le monde n'est pas d'accord.",
            "Il y a aussi des critiques, car les coûts sont élevés et le calendrier reste flou.",
            "Selon {subj}, le projet devrait être terminé avant la fin de l'année {y}.",
            "La plupart des habitants {place} ne savent pas à quel point cette question est {adj}.",
            "En {y}, ils étaient encore {num} pour cent, mais aujourd'hui ils sont beaucoup plus nombreux.",
            "Selon les spécialistes, la situation {place} ne va pas changer rapidement.",
            "« Je pense que nous sommes sur la bonne voie avec cette décision », a déclaré {name}.",
            "{subj} veut {inf} {obj}, mais il manque encore de l'argent pour le faire.",
            "On ne sait pas encore si {subj} pourra {inf} {obj} avant la fin de l'année.",
            "Pour de nombreuses familles, c'est {adj}, parce que les prix ont fortement augmenté ces "
            "dernières années.",
            "Le nombre de visiteurs a augmenté de {num} pour cent par rapport à l'année précédente.",
            "La météo joue aussi un rôle, car l'été a été très {adjw} cette année.",
            "{subj} a également pris la parole sur ce sujet et a {part} {obj}.",
            "Ceux qui veulent en savoir plus peuvent participer à une réunion publique {place}.",
            "Jusqu'à présent, plus de {num} personnes {place} ont participé à l'enquête.",
            "{name} travaille depuis {num} ans {place} et connaît très bien les problèmes.",
            "Il faut cependant reconnaître qu'il y a déjà eu quelques améliorations {time}.",
            "Il est encore trop tôt pour dire si ces mesures vont vraiment changer les choses {place}.",
        ),
        "titles": (
            "Les nouvelles de {city}",
            "Ce qui préoccupe les habitants {place}",
            "Éditorial : pourquoi ce sujet est {adj}",
            "Reportage dans la région de {city}",
        ),
    },
    "es": {
        "subj": (
            "el ayuntamiento",
            "el gobierno",
            "la empresa",
            "el alcalde de la ciudad",
            "una portavoz del ministerio",
            "el club",
            "la escuela del barrio",
            "el museo",
            "un experto de Sevilla",
            "la policía",
            "el entrenador",
            "la panadería del centro",
            "el consejo municipal",
            "la universidad",
            "un representante de los vecinos",
            "la comunidad autónoma",
        ),
        "obj": (
            "un nuevo proyecto",
            "los resultados del estudio",
            "más dinero para las escuelas",
            "una nueva estrategia",
            "el informe anual",
            "los precios de los alimentos",
            "una nueva oferta para las familias",
            "los planes de la nueva estación",
            "una propuesta para reducir el tráfico",
            "los nuevos horarios de apertura",
            "un programa para los jóvenes",
            "las cifras del primer trimestre",
            "una exposición sobre la historia de la ciudad",
        ),
        "time": (
            "el año pasado",
            "el lunes",
            "desde la primavera",
            "este verano",
            "después de largas negociaciones",
            "hace unas semanas",
            "el fin de semana",
            "en otoño",
            "la semana pasada",
            "a principios de mes",
        ),
        "place": (
            "en Madrid",
            "en el centro de la ciudad",
            "en el campo",
            "en Valencia",
            "en el sur del país",
            "en la región",
            "en Sevilla",
            "en Bilbao",
            "en las afueras",
            "en Buenos Aires",
        ),
        "part": (
            "presentado",
            "anunciado",
            "criticado",
            "publicado",
            "planeado",
            "apoyado",
            "rechazado",
            "mejorado",
            "revisado",
            "abierto",
            "defendido",
            "aprobado",
        ),
        "inf": ("presentar", "revisar", "poner en marcha", "mejorar", "financiar", "ampliar", "cambiar"),
        "adj": (
            "importante",
            "difícil",
            "útil",
            "razonable",
            "posible",
            "muy popular",
            "imprescindible",
            "discutible",
            "inevitable",
        ),
        "adjw": ("caluroso", "seco", "lluvioso", "frío", "húmedo"),
        "city": ("Madrid", "Sevilla", "Valencia", "Bilbao", "Granada", "Málaga", "México", "Buenos Aires"),
        "first": ("Lucía", "Javier", "Carmen", "Diego", "Elena", "Pablo", "Marta", "Andrés", "Isabel"),
        "last": ("García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez", "Romero"),
        "templates": (
            "{subj} ha {part} {obj} {time}.",
            "{subj} ha {part} {obj} {place}, según ha confirmado {name}.",
            "No solo es {adj} para los vecinos {place}, sino también para la economía de la región.",
            "Mucha gente piensa que esta decisión es {adj}, pero no todos están de acuerdo.",
            "También hay críticas, porque los costes son altos y el calendario no está claro.",
            "Según {subj}, el proyecto debería estar terminado antes del final del año {y}.",
            "La mayoría de los vecinos {place} no saben lo {adj} que es esta cuestión.",
            "En {y} eran todavía el {num} por ciento, pero hoy son muchos más.",
            "Según los expertos, la situación {place} no va a cambiar rápidamente.",
            "«Creo que con esta decisión vamos por el buen camino», ha declarado {name}.",
            "{subj} quiere {inf} {obj}, pero todavía falta dinero para hacerlo.",
            "Todavía no se sabe si {subj} podrá {inf} {obj} antes de que termine el año.",
            "Para muchas familias es {adj}, porque los precios han subido mucho en los últimos años.",
            "El número de visitantes ha aumentado un {num} por ciento con respecto al año anterior.",
            "El tiempo también juega un papel, porque el verano ha sido muy {adjw} este año.",
            "{subj} también se ha pronunciado sobre el tema y ha {part} {obj}.",
            "Quienes quieran saber más pueden asistir a una reunión pública {place}.",
            "Hasta ahora, más de {num} personas {place} han participado en la encuesta.",
            "{name} trabaja desde hace {num} años {place} y conoce muy bien los problemas.",
            "Hay que reconocer, sin embargo, que {time} ya ha habido algunas mejoras.",
            "Todavía es pronto para saber si estas medidas van a cambiar realmente las cosas {place}.",
        ),
        "titles": (
            "Noticias de {city}",
            "Lo que preocupa a los vecinos {place}",
            "Opinión: por qué este tema es {adj}",
            "Crónica desde {city}",
        ),
    },
}


@dataclass(frozen=True)
class _Domain:
    """One registered domain of the sample web."""

    name: str  # registered domain (eTLD+1), e.g. "cooking-notes.co.uk"
    hosts: tuple[str, ...]
    topic: str
    category: str  # dominant category of the documents hosted here
    lang: str

    @property
    def site_name(self) -> str:
        """Human-readable site name derived from the registered domain."""
        return self.name.split(".")[0].replace("-", " ").title()


def _d(name: str, hosts: str, topic: str, category: str = "prose", lang: str = "en") -> _Domain:
    return _Domain(name, tuple(hosts.split()), topic, category, lang)


# Multi-part public suffixes (.co.uk, .com.au, .qc.ca, ...) and subdomains on purpose: the pipeline's
# domain extraction must map every host to its registered domain.
_DOMAINS = (
    _d("news-harbor.com", "www.news-harbor.com news-harbor.com m.news-harbor.com", "history"),
    _d("cooking-notes.co.uk", "blog.cooking-notes.co.uk www.cooking-notes.co.uk", "cooking"),
    _d("daily-science-review.com", "www.daily-science-review.com", "science"),
    _d("stargazer-journal.org", "www.stargazer-journal.org blog.stargazer-journal.org", "science"),
    _d("kitchen-table.com.au", "www.kitchen-table.com.au recipes.kitchen-table.com.au", "cooking"),
    _d("matchday-report.co.uk", "www.matchday-report.co.uk", "sports"),
    _d("trackside-weekly.com", "trackside-weekly.com www.trackside-weekly.com", "sports"),
    _d("money-compass.com", "www.money-compass.com", "finance"),
    _d("pension-digest.co.nz", "www.pension-digest.co.nz", "finance"),
    _d("wanderlust-diaries.net", "blog.wanderlust-diaries.net www.wanderlust-diaries.net", "travel"),
    _d("outback-trails.com.au", "www.outback-trails.com.au", "travel"),
    _d("healthy-habits.org.uk", "www.healthy-habits.org.uk", "health"),
    _d("clinic-letters.com", "news.clinic-letters.com", "health"),
    _d("old-archives.ac.uk", "history.old-archives.ac.uk", "history"),
    _d("pixel-arcade.net", "www.pixel-arcade.net reviews.pixel-arcade.net", "gaming"),
    _d("legal-brief.co.uk", "www.legal-brief.co.uk", "law"),
    _d("courtroom-notes.com", "blog.courtroom-notes.com", "law"),
    _d("green-fingers.co.uk", "www.green-fingers.co.uk", "gardening"),
    _d("backyard-growers.com.au", "www.backyard-growers.com.au", "gardening"),
    _d("vinyl-sessions.com", "www.vinyl-sessions.com", "music"),
    _d("concert-hall-news.org", "www.concert-hall-news.org", "music"),
    _d("gearhead-garage.com", "www.gearhead-garage.com", "automotive"),
    _d("eco-watch.org.nz", "www.eco-watch.org.nz", "environment"),
    _d("classroom-corner.org", "www.classroom-corner.org", "education"),
    _d("campus-chronicle.ac.nz", "news.campus-chronicle.ac.nz", "education"),
    _d("home-market-news.co.za", "www.home-market-news.co.za", "real_estate"),
    _d("parenting-today.com", "www.parenting-today.com", "parenting"),
    _d("pet-pals.co.uk", "www.pet-pals.co.uk", "pets"),
    _d("linuxhelp.org", "forum.linuxhelp.org", "programming", "forum"),
    _d("gamers-den.net", "community.gamers-den.net forum.gamers-den.net", "gaming", "forum"),
    _d("gardeners-chat.co.uk", "talk.gardeners-chat.co.uk", "gardening", "forum"),
    _d("angling-forum.com.au", "boards.angling-forum.com.au", "sports", "forum"),
    _d("carfix-forum.com", "forum.carfix-forum.com", "automotive", "forum"),
    _d("parents-lounge.co.nz", "forum.parents-lounge.co.nz", "parenting", "forum"),
    _d("devsnippets.io", "www.devsnippets.io devsnippets.io", "programming", "code"),
    _d("pycraft.dev", "blog.pycraft.dev", "programming", "code"),
    _d("js-corner.com.au", "www.js-corner.com.au", "programming", "code"),
    _d("stackhints.net", "answers.stackhints.net", "programming", "code"),
    _d("mathworld-tutor.net", "www.mathworld-tutor.net mathworld-tutor.net", "math", "math"),
    _d("algebra-help.com", "homework.algebra-help.com", "math", "math"),
    _d("numberdrills.co.uk", "www.numberdrills.co.uk", "math", "math"),
    _d("portal-landing.com", "www.portal-landing.com", "finance", "boilerplate"),
    _d("citydirectory.com.au", "m.citydirectory.com.au www.citydirectory.com.au", "travel", "boilerplate"),
    _d("webhost-parking.net", "parked.webhost-parking.net", "programming", "boilerplate"),
    _d("shop-front-uk.co.uk", "www.shop-front-uk.co.uk", "gaming", "boilerplate"),
    _d("best-cheap-deals.biz", "www.best-cheap-deals.biz", "finance", "spam"),
    _d("pills-discount.info", "pills-discount.info www.pills-discount.info", "health", "spam"),
    _d("casino-bonus-win.net", "www.casino-bonus-win.net", "gaming", "spam"),
    _d("replica-outlet.com.cn", "shop.replica-outlet.com.cn", "finance", "spam"),
    _d("microblog-now.com", "status.microblog-now.com", "music", "short"),
    _d("quick-takes.net", "www.quick-takes.net", "sports", "short"),
    _d("nachrichten-blick.de", "www.nachrichten-blick.de", "history", "non_english", "de"),
    _d("kochen-zuhause.de", "blog.kochen-zuhause.de", "cooking", "non_english", "de"),
    _d("bergwelt-reisen.at", "www.bergwelt-reisen.at", "travel", "non_english", "de"),
    _d("stadtleben-zuerich.ch", "www.stadtleben-zuerich.ch", "history", "non_english", "de"),
    _d("actualites-du-jour.fr", "www.actualites-du-jour.fr", "history", "non_english", "fr"),
    _d("cuisine-maison.fr", "recettes.cuisine-maison.fr", "cooking", "non_english", "fr"),
    _d("vie-quebec.qc.ca", "www.vie-quebec.qc.ca", "travel", "non_english", "fr"),
    _d("noticias-del-sur.es", "www.noticias-del-sur.es", "history", "non_english", "es"),
    _d(
        "tecnologia-hoy.com.mx",
        "foro.tecnologia-hoy.com.mx www.tecnologia-hoy.com.mx",
        "programming",
        "non_english",
        "es",
    ),
    _d("cocina-facil.com.ar", "www.cocina-facil.com.ar", "cooking", "non_english", "es"),
)

# ---------------------------------------------------------------------------------------------
# Template machinery
# ---------------------------------------------------------------------------------------------

# ``{slot}`` is filled from a vocabulary; ``[a|b|c]`` picks one literal alternative.  Alternatives every
# few words keep fixed word runs short, so reused templates do not create repeated n-grams that would make
# clean prose look repetitive to quality filters.
_SLOT_RE = re.compile(r"\{(\w+)\}|\[([^\[\]]+)\]")
_WORD_RE = re.compile(r"\w+")
_AN_RE = re.compile(r"\b([Aa]) (?=[aeiouAEIOU])")

_Parts = tuple[tuple[str, "str | tuple[str, ...]"], ...]


def _compile(template: str) -> _Parts:
    """Split a template into (literal, slot) pairs.

    A slot is a vocabulary name (numeric suffix dropped, so ``{n2}`` draws another ``n``), a tuple of
    literal alternatives, or ``""`` after the final literal.
    """
    parts: list = []
    pos = 0
    for m in _SLOT_RE.finditer(template):
        slot = m.group(1).rstrip("0123456789") if m.group(1) else tuple(m.group(2).split("|"))
        parts.append((template[pos : m.start()], slot))
        pos = m.end()
    parts.append((template[pos:], ""))
    return tuple(parts)


def _split_list(raw: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in raw.split(",") if s.strip())


def _plural(word: str) -> str:
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


class _Vocab:
    """Slot fillers for one topic or language; ``fill`` expands a compiled template."""

    def __init__(self, lists: dict[str, tuple[str, ...]], first: tuple[str, ...], last: tuple[str, ...]):
        self.lists = lists
        self.first = first
        self.last = last

    def pick(self, slot: str, rng: random.Random) -> str:
        lst = self.lists.get(slot)
        if lst is not None:
            return lst[int(rng.random() * len(lst))]
        if slot == "name":
            return f"{rng.choice(self.first)} {rng.choice(self.last)}"
        if slot == "y":
            return str(rng.randint(1990, 2024))
        if slot == "num":
            return str(rng.randint(2, 40))
        if slot == "pct":
            return str(rng.randint(5, 95))
        if slot == "price":
            return f"{rng.choice('$£')}{rng.randint(5, 900)}"
        raise KeyError(slot)

    def fill(self, parts: _Parts, rng: random.Random, cap: bool = True) -> str:
        out = []
        for lit, slot in parts:
            out.append(lit)
            if isinstance(slot, tuple):
                out.append(slot[int(rng.random() * len(slot))])
            elif slot:
                out.append(self.pick(slot, rng))
        s = "".join(out)
        return s[0].upper() + s[1:] if cap else s


def _make_topic_vocab(topic: str) -> _Vocab:
    nouns, adjs, verbs, roles = (_split_list(x) for x in _TOPICS_RAW[topic])
    return _Vocab(
        {
            "n": nouns,
            "a": adjs,
            "v": verbs,
            "r": roles,
            "rs": tuple(_plural(r) for r in roles),
            "p": _PLACES,
            "m": tuple(_MONTHS),
            "adv": _ADVERBS,
            "conn": _CONNECTORS,
        },
        tuple(_FIRST_NAMES),
        tuple(_LAST_NAMES),
    )


def _make_lang_vocab(lang: str) -> _Vocab:
    spec = _LANGS[lang]
    lists = {k: v for k, v in spec.items() if k not in ("first", "last", "templates", "titles")}
    return _Vocab(lists, spec["first"], spec["last"])


_TOPIC_VOCAB = {t: _make_topic_vocab(t) for t in _TOPICS_RAW}
_LANG_VOCAB = {lang: _make_lang_vocab(lang) for lang in _LANGS}
_EN_COMPILED = tuple(_compile(t) for t in _EN_TEMPLATES)
_EN_TITLES_COMPILED = tuple(_compile(t) for t in _EN_TITLES)
_LANG_COMPILED = {lang: tuple(_compile(t) for t in spec["templates"]) for lang, spec in _LANGS.items()}
_LANG_TITLES_COMPILED = {lang: tuple(_compile(t) for t in spec["titles"]) for lang, spec in _LANGS.items()}


def _sentences(rng: random.Random, lang: str, topic: str, k: int) -> list[str]:
    """Return ``k`` sentences, cycling through a shuffled template list to limit repetition."""
    if lang == "en":
        vocab, templates = _TOPIC_VOCAB[topic], _EN_COMPILED
    else:
        vocab, templates = _LANG_VOCAB[lang], _LANG_COMPILED[lang]
    order = list(range(len(templates)))
    rng.shuffle(order)
    out = []
    for i in range(k):
        s = vocab.fill(templates[order[i % len(order)]], rng)
        out.append(_AN_RE.sub(r"\1n ", s) if lang == "en" else s)
    return out


def _title(rng: random.Random, lang: str, topic: str) -> str:
    if lang == "en":
        return _AN_RE.sub(r"\1n ", _TOPIC_VOCAB[topic].fill(rng.choice(_EN_TITLES_COMPILED), rng))
    return _LANG_VOCAB[lang].fill(rng.choice(_LANG_TITLES_COMPILED[lang]), rng)


def _shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    """Word ``n``-grams over lower-cased ``\\w+`` tokens (the Jaccard convention recorded in truth)."""
    toks = _WORD_RE.findall(text.lower())
    if len(toks) < n:
        return {tuple(toks)} if toks else set()
    return set(zip(*(toks[i:] for i in range(n)), strict=False))


def _jaccard(a: set, b: set) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _word_count(text: str) -> int:
    return len(text.split())


# ---------------------------------------------------------------------------------------------
# Category generators: each returns (title, text)
# ---------------------------------------------------------------------------------------------


def _paragraphs(rng: random.Random, lang: str, topic: str, target_words: int, lo: int, hi: int) -> list[str]:
    """Sentences for a whole article drawn in one pass (so templates are not reused early), then cut
    into paragraphs of ``lo``..``hi`` sentences until about ``target_words`` words."""
    # Sentences average ~14 words, so dividing by 11 over-generates a little; cut at the target.
    sents = _sentences(rng, lang, topic, target_words // 11 + 6)
    paras: list[str] = []
    words = i = 0
    while words < target_words:
        if i >= len(sents):
            sents += _sentences(rng, lang, topic, 10)
        k = rng.randint(lo, hi)
        para = " ".join(sents[i : i + k])
        i += k
        if not para:
            continue
        words += _word_count(para)
        paras.append(para)
    return paras


def _prose(rng: random.Random, topic: str) -> tuple[str, str]:
    # Skewed length distribution: most articles are a few hundred words, some run long.
    target = int(160 + 1000 * rng.random() ** 1.8)
    title = _title(rng, "en", topic)
    blocks = [title]
    if rng.random() < 0.6:
        d = rng.randint(1, 28)
        blocks.append(
            f"By {rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}, "
            f"{d} {rng.choice(_MONTHS)} {rng.randint(2015, 2024)}"
        )
    blocks += _paragraphs(rng, "en", topic, target, 3, 6)
    return title, "\n\n".join(blocks)


def _non_english(rng: random.Random, lang: str) -> tuple[str, str]:
    target = int(130 + 260 * rng.random() ** 1.5)
    title = _title(rng, lang, "")
    return title, "\n\n".join([title, *_paragraphs(rng, lang, "", target, 3, 5)])


_FORUM_TITLES = (
    "Problem with my {n} after the update",
    "Best {a} {n} for a beginner?",
    "Anyone else seeing this with the {n}?",
    "{n} vs {n2} - which one?",
    "Help!! {n} not working",
    "Quick question about the {n}",
)
_FORUM_LINES = tuple(
    _compile(t)
    for t in (
        "has anyone else had trouble with the {n}? mine stopped working after {num} days",
        "lol same here, the {n} is basically useless until they fix it",
        "did you try resetting the {n} first? that fixed it for me",
        "thx, that worked!! cheers",
        "imo the {a} {n} is overrated tbh",
        "+1 for the {n}, been using it for {num} years no issues",
        "edit: nvm, turns out the {n2} was the problem all along",
        "I'm in {p} and we've had the same problem since {m}.",
        "Not sure why people hate on the {n}, works fine for me.",
        "Can you post a photo of the {n}? hard to tell from the description",
        "this ^^^",
        "Have a look at the sticky thread about the {n}, it covers most of this.",
        "my {r} said it's normal for the {n} to do that, but idk",
        "Any update on this? still waiting for a reply...",
        "Ugh, spent the whole weekend on the {n} and got nowhere :(",
        "Quick question: does the {a} {n} work with the {n2} or do I need an adapter?",
        "Thanks everyone for the replies, really appreciate it :)",
        "yeah the {n2} is way better than the {n}, not even close",
        "Welcome to the forum! Please read the rules before posting.",
        "Same issue. Following.",
        "tried that, didn't help. going to ask a {r} on {m} {num}",
        "honestly just buy a {a} {n} and save yourself the headache",
    )
)
_FORUM_USER_PARTS = (
    "tux",
    "green",
    "night",
    "pixel",
    "old",
    "river",
    "mad",
    "quiet",
    "captain",
    "lazy",
    "turbo",
    "happy",
)
_FORUM_USER_TAILS = ("fan", "thumb", "owl", "wolf", "dad", "mum", "geek", "rider", "cook", "nerd", "fox")


def _username(rng: random.Random) -> str:
    return f"{rng.choice(_FORUM_USER_PARTS)}_{rng.choice(_FORUM_USER_TAILS)}{rng.randint(1, 99)}"


def _forum(rng: random.Random, topic: str) -> tuple[str, str]:
    vocab = _TOPIC_VOCAB[topic]
    title = "Re: " + vocab.fill(_compile(rng.choice(_FORUM_TITLES)), rng)
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
                f"Posted by {user} on {rng.randint(1, 28)} {rng.choice(_MONTHS)} {rng.randint(2012, 2024)}"
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


_PY_SNIPPETS = (
    'def @F@(@X@):\n    """Return the @K@ values above @N@."""\n    result = []\n    for item in @X@:\n'
    '        if item["@K@"] > @N@:\n            result.append(item["@K@"])\n    return result\n',
    'import json\n\n\ndef load_@K@(path):\n    with open(path, encoding="utf-8") as fh:\n'
    '        data = json.load(fh)\n    return {row["id"]: row["@K@"] for row in data}\n',
    "class @C@Cache:\n    def __init__(self, size=@N@):\n        self.size = size\n"
    "        self.items = {}\n\n"
    "    def get(self, key):\n        return self.items.get(key)\n\n    def put(self, key, value):\n"
    "        if len(self.items) >= self.size:\n            self.items.pop(next(iter(self.items)))\n"
    "        self.items[key] = value\n",
    "def @F@(values):\n    total = 0\n    for v in values:\n        total += v * @N@\n"
    "    return total / max(len(values), 1)\n\n\nprint(@F@([1, 2, 3]))\n",
    'from collections import Counter\n\n\ndef top_@K@(rows, n=@N@):\n    counts = Counter(row["@K@"] '
    "for row in rows)\n    return counts.most_common(n)\n",
    'import re\n\n@U@_RE = re.compile(r"^@K@-(\\d+)$")\n\n\ndef @F@(name):\n    m = @U@_RE.match(name)\n'
    "    return int(m.group(1)) if m else None\n",
)
_JS_SNIPPETS = (
    "function @F@(@X@) {\n  return @X@.filter((item) => item.@K@ > @N@).map((item) => item.@K@);\n}\n",
    'const @X@ = document.querySelectorAll(".@K@");\n@X@.forEach((el) => {\n  el.addEventListener("click", '
    '() => {\n    el.classList.toggle("active");\n  });\n});\n',
    "async function fetch@C@(id) {\n  const res = await fetch(`/api/@K@/${id}`);\n  if (!res.ok) {\n"
    '    throw new Error("request failed: " + res.status);\n  }\n  return res.json();\n}\n',
    "export function @F@(list) {\n  let sum = 0;\n  for (let i = 0; i < list.length; i++) {\n"
    "    sum += list[i].@K@;\n  }\n  return sum / list.length;\n}\n",
    "const @X@ = new Map();\nfunction remember(key, value) {\n  if (@X@.size > @N@) {\n"
    "    @X@.delete(@X@.keys().next().value);\n  }\n  @X@.set(key, value);\n}\n",
)
_CODE_INTRO = tuple(
    _compile(t)
    for t in (
        "Here is a small {lang} snippet that I use to handle the {n} data in my projects.",
        "A {r} asked how to clean up a list of {n} records without a third-party library, so here it is.",
        "This is the {lang} version of the helper we discussed in the last post about the {n}.",
        "The code below reads the records and keeps only the ones we actually need for the {n} report.",
        "If you have ever struggled with the {a} {n}, this short {lang} example might save you some time.",
    )
)
_CODE_OUTRO = tuple(
    _compile(t)
    for t in (
        "Note that this version does not handle errors, so wrap it in a try block if the input is untrusted.",
        "It runs in linear time, which is fine for a few thousand records.",
        "Feel free to adapt it; the logic is the same in most languages.",
        "I tested it with {lang} on a {a} {n} data set and it finished in under a second.",
        "Let me know in the comments if you find a bug or a cleaner way to write it.",
        "The important part is the loop: everything else is just setup.",
    )
)
_CODE_VERBS = ("get", "load", "parse", "filter", "count", "compute", "update", "clean", "collect")


def _ident(words: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", words.lower()).strip("_")


def _code(rng: random.Random, topic: str) -> tuple[str, str]:
    vocab = _TOPIC_VOCAB[topic]
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
        snippet = rng.choice(_PY_SNIPPETS if lang == "Python" else _JS_SNIPPETS)
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
        blocks.append(vocab.fill(_compile_lang(rng.choice(_CODE_OUTRO), lang), rng))
    return title, "\n\n".join(blocks)


def _compile_lang(parts: _Parts, lang: str) -> _Parts:
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


def _math(rng: random.Random, topic: str) -> tuple[str, str]:
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
                f"Below are {k} practice problems with worked solutions. Try each one yourself before reading the "
                f"answer.",
                f"Here are {k} exercises on {subject} from this week's tutoring session, solved step by step.",
                f"These {k} problems come up again and again in exams, so it pays to know the method by heart.",
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


_BOILER_LINES = tuple(
    _compile(t)
    for t in (
        "We use cookies to improve your experience on our website. By continuing to browse, you agree to our "
        "use of cookies.",
        "Accept all cookies",
        "Reject non-essential cookies",
        "Manage cookie preferences",
        "JavaScript must be enabled in your browser to use this site.",
        "Please enable JavaScript to view the comments.",
        "Your browser is out of date. Please update it for the best experience.",
        "Skip to main content",
        "Menu",
        "Search",
        "Log in",
        "Sign up",
        "My account",
        "Basket ({k})",
        "Home | About | Contact | Blog | Shop",
        "Home > {n} > {n2}",
        "Privacy Policy",
        "Terms of Use",
        "Cookie Policy",
        "Accessibility statement",
        "Sitemap",
        "© {y} {site}. All rights reserved.",
        "Subscribe to our newsletter",
        "Enter your email address",
        "Follow us on social media",
        "Share this page",
        "Print this page",
        "Back to top",
        "Loading...",
        "Page {k} of {k2}",
        "« Previous | Next »",
        "Advertisement",
        "Related articles",
        "{k} comments",
        "Leave a comment",
        "Contact us: info@{domain}",
        "Call us on 0{k}{k2} {k3}{k}{k2}",
        "This site is protected by reCAPTCHA and the Privacy Policy and Terms of Service apply.",
        "We and our {k} partners store and access information on your device.",
        "Our privacy policy was last updated in {m} {y}.",
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit.",
        "Sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.",
        "Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo "
        "consequat.",
        "Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur.",
        "Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id est "
        "laborum.",
        "Categories: {n} · {n2} · {n3}",
        "Tags: {n}, {n2}, {a}",
        "Opening hours: Mon–Fri 9:00–17:00",
        "Free delivery on orders over £{k}",
        "Download our app",
        "Sign in with Google",
        "Forgot your password?",
        "Terms and conditions apply.",
        "All prices include VAT.",
        "Registered office: {k} High Street, {p}",
    )
)


def _boilerplate(rng: random.Random, dom: _Domain) -> tuple[str, str]:
    vocab = _TOPIC_VOCAB[dom.topic]
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


_SPAM_PRODUCTS = {
    "finance": (
        "cheap loans",
        "crypto signals",
        "instant credit",
        "seo backlinks",
        "forex robot",
        "cheap followers",
    ),
    "health": ("diet pills", "weight loss tea", "cheap meds", "muscle powder", "miracle cream", "detox kit"),
    "gaming": ("casino bonus", "free spins", "poker chips", "game coins", "lottery tips", "bingo credits"),
}
_SPAM_LINES = tuple(
    _compile(t)
    for t in (
        "BUY CHEAP {P} NOW!!! BEST PRICE ONLINE!!!",
        "cheap {p} cheap {p} cheap {p} best {p} discount {p} free {p}",
        "Click here >>> www.{site}/deal{k} <<< limited offer...",
        "$$$ EARN MONEY FAST $$$ WORK FROM HOME $$$ CODE {code} $$$",
        "100% GUARANTEED!!! NO QUESTIONS ASKED!!! ORDER #{k}{k2}!!!",
        "best {p} best {p} best {p} online cheap cheap cheap...",
        "★★★★★ {P} ★★★★★ ONLY ${k}.99 ★★★★★",
        "order {p} online... order {p} online... order {p} online...",
        "WIN WIN WIN!!! FREE {P}!!! FREE BONUS {code}!!!",
        "{p} {p} {p} {p} {p} {p}",
        "Hot deals on {p}... #1 {p} store... fast shipping... call {k}{k2}-{k3}{k}",
        "!!! LIMITED TIME ONLY !!! ACT NOW !!! DON'T MISS OUT !!!",
        "{P} {P} {P} >>> {code} <<< {P} {P}",
        "discount {p} %%% sale {p} %%% {k}% off {p} %%%",
    )
)


def _spam(rng: random.Random, dom: _Domain) -> tuple[str, str]:
    products = _SPAM_PRODUCTS.get(dom.topic, _SPAM_PRODUCTS["finance"])
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


def _short(rng: random.Random, topic: str) -> tuple[str, str]:
    while True:
        title = _title(rng, "en", topic)
        body = " ".join(_sentences(rng, "en", topic, rng.randint(1, 2)))
        text = f"{title}\n\n{body}" if rng.random() < 0.6 else body
        if _word_count(text) < 40:
            return title, text


# ---------------------------------------------------------------------------------------------
# Benchmarks
# ---------------------------------------------------------------------------------------------

_MC_ITEMS = (
    (
        "{name} left a metal spoon and a wooden spoon on the {place} overnight. In the morning, why does the "
        "metal spoon feel colder to the touch than the wooden one?",
        "Metal conducts heat away from the hand faster than wood does.",
        (
            "The metal spoon is at a much lower temperature than the wooden spoon.",
            "Wood produces a small amount of heat on its own.",
            "Metal absorbs cold from the air during the night.",
        ),
        "Both spoons are at room temperature; metal feels colder because it is a better thermal conductor.",
    ),
    (
        "While studying plants near the {place}, {name} noticed that leaves kept in the dark for a week turned "
        "pale. Which process was most directly prevented by the lack of light?",
        "Photosynthesis",
        ("Respiration", "Transpiration", "Pollination"),
        "Producing chlorophyll and carrying out photosynthesis both require light.",
    ),
    (
        "{name} drops a feather and a steel ball at the same moment inside a sealed chamber at the {place} from "
        "which all the air has been removed. What will be observed?",
        "Both objects hit the bottom at the same time.",
        (
            "The steel ball lands first because it is heavier.",
            "The feather lands first because it is lighter.",
            "Neither object falls because there is no air.",
        ),
        "Without air resistance all objects fall with the same acceleration.",
    ),
    (
        "During a school trip near the {place}, {name} measured the temperature at which pure water boiled on "
        "a high mountain. Compared with sea level, the boiling point was most likely",
        "lower, because the air pressure is lower at high altitude.",
        (
            "higher, because the air is colder at high altitude.",
            "exactly the same, because water always boils at 100 degrees Celsius.",
            "higher, because there is less oxygen at high altitude.",
        ),
        "Lower air pressure lets water molecules escape at a lower temperature.",
    ),
    (
        "{name} mixes baking soda with vinegar in a cup at the {place} and sees many bubbles form. Which "
        "statement best describes what is happening in the cup?",
        "A chemical reaction is producing carbon dioxide gas.",
        (
            "The vinegar is boiling because of the baking soda.",
            "The baking soda is melting into a liquid.",
            "Air trapped in the powder is simply being released.",
        ),
        "An acid and a base react and release carbon dioxide.",
    ),
    (
        "A student named {name} observes the Moon from the {place} every night for a month and records its "
        "shape. What causes the changing shape of the Moon that the student sees?",
        "The changing position of the Moon relative to the Earth and the Sun.",
        (
            "The shadow of the Earth falling on the Moon every night.",
            "Clouds that cover different parts of the Moon.",
            "The Moon changing its size during the month.",
        ),
        "Phases come from how much of the sunlit half of the Moon faces the Earth.",
    ),
    (
        "In an experiment at the {place}, {name} connects a battery, a switch and a small bulb in a single loop "
        "of wire. What happens to the bulb when the switch is opened?",
        "It goes out because the circuit is no longer complete.",
        (
            "It gets brighter because less energy is wasted.",
            "It stays lit because the battery still stores energy.",
            "It flickers because the current changes direction.",
        ),
        "Current only flows through a closed circuit.",
    ),
    (
        "{name} places a glass of ice water on a table at the {place} on a warm and humid afternoon. Where do "
        "the water droplets that form on the outside of the glass come from?",
        "Water vapour in the air condenses on the cold surface.",
        (
            "Water leaks through tiny holes in the glass.",
            "The ice melts and passes through the glass wall.",
            "The glass itself produces water when it is cooled.",
        ),
        "Cooling moist air below its dew point makes water vapour condense.",
    ),
    (
        "While hiking near the {place}, {name} finds a rock containing the imprint of a shell far from any "
        "ocean. What is the best explanation for this discovery?",
        "The area was once covered by water long ago.",
        (
            "A bird carried the shell there recently.",
            "Shells can form inside rocks without any animal.",
            "The rock was made in a factory and brought there.",
        ),
        "Marine fossils show that the land was once under the sea.",
    ),
    (
        "{name} wants to find out which paper towel brand absorbs the most water and sets up a fair test at "
        "the {place}. Which variable should be kept the same for every brand tested?",
        "The amount of water used in each trial.",
        (
            "The brand of paper towel.",
            "The amount of water each towel absorbs.",
            "The colour of each paper towel.",
        ),
        "In a fair test only the independent variable changes.",
    ),
    (
        "At the {place}, {name} rubs a balloon on a wool sweater and then holds it near small pieces of paper. "
        "Why do the pieces of paper jump toward the balloon?",
        "The balloon has gained an electric charge that attracts the paper.",
        (
            "The balloon has become magnetic like an iron nail.",
            "The wool has made the balloon sticky.",
            "Air flowing around the balloon pushes the paper upward.",
        ),
        "Rubbing transfers electrons, leaving the balloon charged.",
    ),
    (
        "{name} notices that a puddle outside the {place} disappears faster on a sunny, windy day than on a "
        "cool, still day. Which process explains the disappearance of the puddle?",
        "Evaporation",
        ("Condensation", "Precipitation", "Freezing"),
        "Heat and wind speed up evaporation.",
    ),
    (
        "A group of students led by {name} counts the rabbits and foxes living near the {place} for several "
        "years. If the number of foxes suddenly increases, what will most likely happen to the rabbit "
        "population?",
        "It will decrease because more rabbits are eaten.",
        (
            "It will increase because foxes protect rabbits.",
            "It will stay the same because the two species do not interact.",
            "It will increase because foxes eat the rabbits' food.",
        ),
        "More predators means more prey are eaten.",
    ),
    (
        "{name} pushes an empty shopping cart and then a full one with the same force across the car park of "
        "the {place}. Why does the empty cart speed up more quickly?",
        "It has less mass, so the same force gives it a greater acceleration.",
        (
            "It has more friction with the ground.",
            "Empty carts are pulled forward by gravity.",
            "The force on an empty cart is automatically larger.",
        ),
        "Newton's second law: acceleration equals force divided by mass.",
    ),
    (
        "While cooking at the {place}, {name} notices that the handle of a metal pan gets hot even though only "
        "the bottom touches the flame. How is the heat transferred to the handle?",
        "By conduction through the metal.",
        (
            "By radiation from the handle.",
            "By convection currents inside the metal.",
            "By evaporation of the metal.",
        ),
        "Heat moves through solids by conduction.",
    ),
    (
        "{name} looks at a drop of pond water collected near the {place} under a microscope and sees tiny "
        "moving organisms. Which feature do all of these living organisms share?",
        "They are made of one or more cells.",
        (
            "They all have a backbone.",
            "They all produce their own food from sunlight.",
            "They are all larger than a grain of sand.",
        ),
        "All living things are made of cells.",
    ),
    (
        "On a clear evening at the {place}, {name} watches the Sun set in the west. Which motion of the Earth "
        "causes the Sun to appear to move across the sky each day?",
        "The Earth rotating on its axis.",
        (
            "The Earth orbiting around the Sun.",
            "The Sun orbiting around the Earth.",
            "The Moon orbiting the Earth.",
        ),
        "The daily motion of the Sun is caused by the rotation of the Earth.",
    ),
    (
        "{name} puts a sealed bag of crisps in the car and drives from the {place} up into the mountains. Why "
        "does the bag puff up as the car climbs higher?",
        "The air pressure outside the bag decreases with altitude.",
        (
            "The crisps release gas when they are shaken.",
            "The temperature inside the car increases the mass of the air.",
            "Gravity is much weaker at the top of a mountain.",
        ),
        "The air inside the bag expands as the outside pressure drops.",
    ),
    (
        "To test whether plants need soil, {name} grows one bean plant in soil and one in water with nutrients "
        "at the {place}. Both plants grow well. What conclusion is best supported by this result?",
        "Plants can get the nutrients they need without soil.",
        (
            "Plants do not need water to grow.",
            "Soil is harmful to bean plants.",
            "Bean plants grow only in the dark.",
        ),
        "Hydroponic growth shows nutrients, not soil itself, are what plants need.",
    ),
    (
        "{name} hears thunder several seconds after seeing a flash of lightning over the {place}. Why is the "
        "thunder heard some time after the lightning is seen?",
        "Light travels much faster than sound.",
        (
            "Thunder is produced after the lightning ends.",
            "Sound travels faster than light but starts later.",
            "The eyes react more slowly than the ears.",
        ),
        "Light arrives almost instantly while sound travels about 343 metres per second.",
    ),
)
_BENCH_NAMES = (
    "Maya",
    "Jonah",
    "Priya",
    "Lucas",
    "Amara",
    "Tomas",
    "Hannah",
    "Kenji",
    "Zoe",
    "Omar",
    "Ines",
    "Caleb",
    "Nadia",
    "Felix",
    "Rosa",
    "Dev",
    "Elena",
    "Marcus",
    "Yuki",
    "Samir",
)
_BENCH_PLACES = (
    "school garden",
    "kitchen counter",
    "science museum",
    "community centre",
    "lake shore",
    "village hall",
    "greenhouse",
    "public library",
    "summer camp",
    "youth club",
    "nature reserve",
    "town square",
)


def _mc_science(rng: random.Random) -> list[dict]:
    examples = []
    combos = [(n, p) for n in _BENCH_NAMES for p in _BENCH_PLACES]
    rng.shuffle(combos)
    k = 0
    for _variant in range(3):
        for q, correct, wrong, expl in _MC_ITEMS:
            name, place = combos[k]
            k += 1
            choices = [correct, *wrong]
            rng.shuffle(choices)
            examples.append(
                {
                    "question": q.format(name=name, place=place),
                    "choices": choices,
                    "answer": "ABCD"[choices.index(correct)],
                    "support": expl,
                }
            )
    return examples


def _math_word(rng: random.Random) -> list[dict]:
    names = _BENCH_NAMES
    seen: set[str] = set()
    examples = []
    while len(examples) < 60:
        kind = len(examples) % 10
        name = rng.choice(names)
        if kind == 0:
            a, b = rng.randint(3, 12), rng.randint(6, 24)
            c = rng.randint(1, a * b - 1)
            q = (
                f"{name} buys {a} boxes of pencils for the school year. Each box holds {b} pencils, and "
                f"{name} gives {c} pencils to classmates. How many pencils does {name} have left?"
            )
            ans, sup = a * b - c, f"{a} x {b} = {a * b}; {a * b} - {c} = {a * b - c}."
        elif kind == 1:
            p, a, b = rng.randint(2, 6), rng.randint(10, 60), rng.randint(10, 60)
            q = (
                f"A bakery sells muffins for {p} dollars each. On Saturday it sold {a} muffins in the "
                f"morning and {b} muffins in the afternoon. How many dollars did the bakery earn from "
                f"muffins on Saturday?"
            )
            ans, sup = p * (a + b), f"{a} + {b} = {a + b} muffins; {a + b} x {p} = {p * (a + b)} dollars."
        elif kind == 2:
            a, d = rng.randint(8, 30), rng.randint(3, 9)
            total = a * d + rng.randint(5, 150)
            q = (
                f"{name} is reading a book with {total} pages and reads {a} pages every day for {d} days. "
                f"How many pages are still left to read after those {d} days?"
            )
            ans, sup = total - a * d, f"{a} x {d} = {a * d}; {total} - {a * d} = {total - a * d}."
        elif kind == 3:
            cap, n = rng.randint(20, 50), rng.randint(60, 400)
            q = (
                f"A school bus can carry {cap} students. If {n} students are going on a field trip, what is "
                f"the smallest number of buses the school needs to rent for the whole group?"
            )
            ans, sup = -(-n // cap), f"{n} / {cap} = {n / cap:.2f}, rounded up to {-(-n // cap)} buses."
        elif kind == 4:
            a, w = rng.randint(5, 25), rng.randint(4, 20)
            b = rng.randint(5, a * w - 1)
            q = (
                f"{name} saves {a} dollars every week. After {w} weeks, {name} spends {b} dollars on a new "
                f"bike helmet. How much money does {name} have saved now?"
            )
            ans, sup = a * w - b, f"{a} x {w} = {a * w}; {a * w} - {b} = {a * w - b}."
        elif kind == 5:
            ln, wd = rng.randint(5, 40), rng.randint(3, 30)
            q = (
                f"A garden is shaped like a rectangle that is {ln} meters long and {wd} meters wide. {name} "
                f"wants to put a fence around the whole garden. How many meters of fence are needed?"
            )
            ans, sup = 2 * (ln + wd), f"Perimeter = 2 x ({ln} + {wd}) = {2 * (ln + wd)}."
        elif kind == 6:
            a, b, c = rng.randint(40, 120), rng.randint(5, 30), rng.randint(5, 40)
            d = rng.randint(5, a - b + c - 1)
            q = (
                f"A train leaves the station with {a} passengers. At the first stop {b} passengers get off "
                f"and {c} get on. At the second stop {d} passengers get off. How many passengers are on the "
                f"train now?"
            )
            ans, sup = a - b + c - d, f"{a} - {b} + {c} - {d} = {a - b + c - d}."
        elif kind == 7:
            k, a = rng.randint(3, 9), rng.randint(20, 99)
            q = (
                f"{name} has {a} stickers and wants to share them equally among {k} friends, keeping any "
                f"leftover stickers. How many stickers will each friend receive?"
            )
            ans, sup = a // k, f"{a} / {k} = {a // k} remainder {a % k}."
        elif kind == 8:
            a, b, m = rng.randint(2, 5), rng.randint(4, 12), rng.randint(2, 6)
            q = (
                f"A recipe uses {a} cups of flour to make {b} pancakes. How many cups of flour are needed "
                f"to make {b * m} pancakes if the same recipe is followed exactly?"
            )
            ans, sup = a * m, f"{b * m} / {b} = {m} batches; {m} x {a} = {a * m} cups."
        else:
            t1, r, f = rng.randint(-5, 15), rng.randint(3, 15), rng.randint(2, 20)
            q = (
                f"The temperature early in the morning was {t1} degrees. By the afternoon it had risen by "
                f"{r} degrees, and by night it had fallen by {f} degrees. What was the temperature at "
                f"night?"
            )
            ans, sup = t1 + r - f, f"{t1} + {r} - {f} = {t1 + r - f}."
        if q in seen:
            continue
        seen.add(q)
        examples.append({"question": q, "choices": None, "answer": str(ans), "support": sup})
    return examples


_RC_TOWNS = (
    "Ashford Vale",
    "Millbrook",
    "Stonehaven",
    "Kettering Cross",
    "Larkspur",
    "Oakridge",
    "Fenmoor",
    "Westerlea",
    "Brightwater",
    "Hollin Bridge",
    "Redcliff",
    "Eastmere",
)
_RC_RIVERS = ("Elm", "Silver", "Marrow", "Tarn", "Colne", "Wend")
_RC_JOBS = ("schoolteacher", "blacksmith", "nurse", "baker", "carpenter", "postmistress")


def _reading_comp(rng: random.Random) -> list[dict]:
    examples = []
    seen: set[str] = set()
    while len(examples) < 60:
        kind = len(examples) % 4
        name = f"{rng.choice(_BENCH_NAMES)} {rng.choice(_LAST_NAMES)}"
        town, town2 = rng.sample(_RC_TOWNS, 2)
        year, k = rng.randint(1820, 1960), rng.randint(2, 9)
        if kind == 0:
            job, river = rng.choice(_RC_JOBS), rng.choice(_RC_RIVERS)
            passage = (
                f"The village of {town} lies in a narrow valley beside the {river} River. For many years, "
                f"the only way to cross the river was a small wooden ferry run by a family of fishermen. In "
                f"{year}, a {job} named {name} persuaded the villagers to raise money for a stone bridge. "
                f"The work took {k} years because the builders could only work during the dry summer months. "
                f"When the bridge finally opened, farmers were able to bring their vegetables to the market "
                f"in {town2} in a single morning. Today the bridge is still used every day, and a small "
                f"plaque near the entrance honours the {job} who started the project."
            )
            q = f"According to the passage, why did building the bridge at {town} take {k} years?"
            correct = "The builders could only work during the dry summer months."
            wrong = (
                "The villagers could not agree on a design.",
                f"The stone had to be brought from {town2}.",
                f"The {job} left the village for several years.",
            )
        elif kind == 1:
            passage = (
                f"{name} grew up on a farm outside {town}, where the winters were long and the roads were "
                f"often closed by snow. To pass the time, {name.split()[0]} repaired old clocks that "
                f"neighbours left at the kitchen door. By {year}, the young repairer had built a clock that "
                f"could run for {k} weeks without being wound, and visitors came from {town2} to see it. "
                f"Although a merchant offered a large sum for the design, {name.split()[0]} refused to sell "
                f"it and instead taught the method to anyone who asked. Many of the clocks in the region "
                f"still carry small marks showing that they were made by former students."
            )
            q = f"Based on the passage, what did {name.split()[0]} do after the merchant made an offer?"
            correct = "Refused to sell the design and taught the method to others."
            wrong = (
                "Sold the design and moved to the city.",
                f"Opened a large clock factory in {town2}.",
                "Stopped repairing clocks altogether.",
            )
        elif kind == 2:
            bird = rng.choice(("grey geese", "white storks", "reed warblers", "swallows"))
            passage = (
                f"Every autumn, thousands of {bird} leave the marshes near {town} and fly south for the "
                f"winter. In {year}, a local naturalist named {name} began counting the birds as they "
                f"gathered on the mudflats. The counts showed that the flocks were leaving about {k} days "
                f"earlier each decade. {name.split()[0]} suspected that warmer summers were changing the "
                f"insects the birds fed on, and asked farmers in {town2} to record the first frost each "
                f"year. Their notebooks, kept for more than forty years, are now stored in the county "
                f"archive."
            )
            q = "What is the main idea of the passage about the birds and the naturalist?"
            correct = "A long-term count revealed a change in when the birds migrate."
            wrong = (
                f"The {bird} stopped visiting {town} entirely.",
                "Farmers tried to stop the birds from leaving.",
                "The naturalist wanted to build a new archive.",
            )
        else:
            passage = (
                f"When the old mill in {town} closed in {year}, the building stood empty for almost a "
                f"decade. A group of neighbours led by {name} decided to turn the ground floor into a "
                f"lending library. They collected books from houses in {town} and {town2}, repaired the roof "
                f"themselves, and opened the doors with only {k} shelves of books. At first the library "
                f"opened on Saturdays only, but so many children came that volunteers soon kept it open "
                f"every afternoon. The mill wheel, which no longer turns, now appears on the library's "
                f"membership cards."
            )
            q = f"According to the passage, why did the library in {town} begin opening every afternoon?"
            correct = "So many children came that volunteers kept it open longer."
            wrong = (
                "The town council ordered it to open daily.",
                "The mill started working again.",
                f"Books from {town2} needed more space.",
            )
        if passage in seen:
            continue
        seen.add(passage)
        choices = [correct, *wrong]
        rng.shuffle(choices)
        examples.append(
            {"question": q, "choices": choices, "answer": "ABCD"[choices.index(correct)], "support": passage}
        )
    return examples


def _make_benchmarks(seed: int) -> dict[str, list[dict]]:
    """Build the three benchmark sets; independent of ``n_docs`` so they are stable per seed."""
    out = {}
    for name, fn in (("mc_science", _mc_science), ("math_word", _math_word), ("reading_comp", _reading_comp)):
        rng = random.Random(f"corpuslake-sample:{seed}:bench:{name}")
        rows = []
        for i, ex in enumerate(fn(rng), start=1):
            split = "validation" if rng.random() < 0.25 else "test"
            rows.append(
                {
                    "benchmark": name,
                    "split": split,
                    "id": f"{name}-{i:04d}",
                    "question": ex["question"],
                    "choices": ex["choices"],
                    "answer": ex["answer"],
                    "support": ex["support"],
                }
            )
        out[name] = rows
    return out


# ---------------------------------------------------------------------------------------------
# Corpus planning
# ---------------------------------------------------------------------------------------------


@dataclass
class _Doc:
    """One accepted document while the corpus is being planned."""

    key: int  # serial used in URLs; unique across the corpus
    category: str
    lang: str
    topic: str
    dom: _Domain
    host: str
    title: str
    text: str
    day: date
    role: str = ""  # "" when the document takes part in no planted structure
    file: str = ""
    record_number: int = 0
    doc_id: str = ""
    url: str = ""
    lang_hint: bool = False


_SENT_SPLIT = re.compile(r"(?<=[.!?\"])\s+(?=[A-Z\"])")
_YEAR_RE = re.compile(r"\b(19[5-9]\d|20[0-2]\d)\b")


def _quotas(n: int) -> dict[str, int]:
    """Largest-remainder rounding of ``CATEGORY_SHARES`` to integer counts summing to ``n``."""
    raw = {c: s * n for c, s in CATEGORY_SHARES.items()}
    out = {c: int(v) for c, v in raw.items()}
    rest = n - sum(out.values())
    for c in sorted(raw, key=lambda c: (-(raw[c] - out[c]), c))[:rest]:
        out[c] += 1
    return out


def _bench_index(bench: dict[str, list[dict]], n: int = 13) -> dict[tuple[str, ...], set[str]]:
    """Word ``n``-gram -> ids of the benchmark examples whose question or support contains it."""
    index: dict[tuple[str, ...], set[str]] = {}
    for rows in bench.values():
        for ex in rows:
            for g in _shingles(ex["question"], n) | _shingles(ex["support"], n):
                index.setdefault(g, set()).add(ex["id"])
    return index


def _unique_span(text: str, own_id: str, index: dict[tuple[str, ...], set[str]], n: int = 13) -> str:
    """Longest run of whole sentences of ``text`` whose ``n``-grams occur in no other example."""
    sents = re.split(r"(?<=[.?!])\s+", text)
    best = ""
    for i in range(len(sents)):
        for j in range(i, len(sents)):
            span = " ".join(sents[i : j + 1])
            if any(index.get(g, {own_id}) != {own_id} for g in _shingles(span, n)):
                break  # longer runs keep the shared n-gram
            if len(_WORD_RE.findall(span)) >= n and len(span) > len(best):
                best = span
    return best


class _Planner:
    """Builds the list of accepted documents and the planted duplicate/contamination structure."""

    def __init__(self, rng: random.Random, n_docs: int, benchmarks: dict[str, list[dict]]):
        self.rng = rng
        self.n_docs = n_docs
        self.bench = benchmarks
        self.docs: list[_Doc] = []
        self.by_cat_domains: dict[str, list[_Domain]] = {}
        for dom in _DOMAINS:
            self.by_cat_domains.setdefault(dom.category, []).append(dom)
        self.en_prose_domains = [d for d in _DOMAINS if d.category == "prose"]
        self.exact_pairs: list[tuple[_Doc, _Doc, bool]] = []  # (original, copy, byte_identical)
        self.near_pairs: list[tuple[_Doc, _Doc, float]] = []
        self.chains: list[tuple[_Doc, _Doc, _Doc, float]] = []  # (a, b, c, jaccard_ac)
        self.negatives: list[tuple[_Doc, _Doc, float]] = []
        # (doc, benchmark, example_id, field, leaked text, ids of all examples sharing a 13-gram with the doc)
        self.contaminated: list[tuple[_Doc, str, str, str, str, list[str]]] = []
        self.groups: list[list[_Doc]] = []  # docs whose global order must follow the list order

    # -- helpers ----------------------------------------------------------------------------------
    def _pick_domain(self, category: str, lang: str = "en") -> _Domain:
        rng = self.rng
        if category == "non_english":
            return rng.choice([d for d in self.by_cat_domains["non_english"] if d.lang == lang])
        if category == "prose" or rng.random() < 0.75:
            return rng.choice(self.by_cat_domains[category])
        # The rest spills onto general-interest sites so that no domain is perfectly pure.
        return rng.choice(self.en_prose_domains)

    def _host(self, dom: _Domain) -> str:
        if len(dom.hosts) == 1 or self.rng.random() < 0.7:
            return dom.hosts[0]
        return self.rng.choice(dom.hosts[1:])

    def _day(self) -> date:
        return date(2018, 1, 1) + timedelta(days=self.rng.randrange(7 * 365))

    def _text_for(self, category: str, dom: _Domain, lang: str) -> tuple[str, str]:
        rng = self.rng
        if category == "prose":
            return _prose(rng, dom.topic)
        if category == "forum":
            return _forum(rng, dom.topic)
        if category == "code":
            return _code(rng, dom.topic if dom.category == "code" else "programming")
        if category == "math":
            return _math(rng, dom.topic)
        if category == "boilerplate":
            return _boilerplate(rng, dom)
        if category == "spam":
            return _spam(rng, dom)
        if category == "non_english":
            return _non_english(rng, lang)
        return _short(rng, dom.topic)

    def _new_doc(self, category: str, lang: str = "en") -> _Doc:
        if category == "non_english":
            lang = self.rng.choices(("de", "fr", "es"), weights=(4, 3, 3))[0]
        dom = self._pick_domain(category, lang)
        title, text = self._text_for(category, dom, lang)
        return _Doc(len(self.docs), category, lang, dom.topic, dom, self._host(dom), title, text, self._day())

    def _derived(self, src: _Doc, text: str, same_domain_p: float) -> _Doc:
        dom = src.dom if self.rng.random() < same_domain_p else self._pick_domain(src.category, src.lang)
        doc = _Doc(
            len(self.docs),
            src.category,
            src.lang,
            src.topic,
            dom,
            self._host(dom),
            src.title,
            text,
            self._day(),
        )
        self.docs.append(doc)
        return doc

    # -- plan ---------------------------------------------------------------------------------------
    def build(self) -> None:
        rng, n = self.rng, self.n_docs
        quotas = _quotas(n)
        n_exact = max(6, round(0.03 * n))
        n_near = max(8, round(0.03 * n))
        n_chains = max(2, round(n / 1000))
        n_neg = max(3, round(n / 500))
        # Copies take the category of their original, so reserve them inside the category quotas.
        cats = list(quotas)
        exact_cats = rng.choices(cats, weights=[quotas[c] for c in cats], k=n_exact)
        derived = {c: exact_cats.count(c) for c in cats}
        derived["prose"] += n_near  # near duplicates are edited English prose articles
        seen: set[str] = set()
        for cat in cats:
            for _ in range(quotas[cat] - derived[cat]):
                while True:
                    doc = self._new_doc(cat)
                    norm = " ".join(doc.text.split())
                    if norm not in seen:  # no accidental exact duplicates
                        seen.add(norm)
                        break
                self.docs.append(doc)
        order = list(self.docs)
        rng.shuffle(order)  # choose planted docs at random, not by generation order
        self._plant_negatives(order, n_neg)
        self._plant_contamination(order)
        self._plant_near(order, n_near, n_chains)
        self._plant_exact(order, exact_cats)
        assert len(self.docs) == n, (len(self.docs), n)

    def _plant_negatives(self, order: list[_Doc], n_pairs: int) -> None:
        rng = self.rng
        pool = [d for d in order if not d.role and d.category == "prose" and _word_count(d.text) >= 200]
        for _ in range(n_pairs):
            if len(pool) < 2:
                break
            a, b = pool.pop(), pool.pop()
            b.dom, b.host, b.topic = a.dom, a.host, a.topic  # same site, same chrome, different article
            site = a.dom.site_name
            header = (
                f"{site}\nHome | News | Features | Opinion | Reviews | About us | Contact\n"
                f"Skip to main content\nWe use cookies to give you the best experience on {site}. "
                f"Read our cookie policy to find out more."
            )
            footer = (
                f"Subscribe to the {site} newsletter for weekly updates straight to your inbox.\n"
                f"Privacy Policy | Terms of Use | Cookie Settings | Accessibility | Advertise with us\n"
                f"© {rng.randint(2019, 2024)} {site} Media Ltd. All rights reserved. "
                f"Registered in England and Wales, company number {rng.randint(1000000, 9999999)}."
            )
            for d in (a, b):
                d.text = f"{header}\n\n{d.text}\n\n{footer}"
                d.role = "negative"
            j = _jaccard(_shingles(a.text), _shingles(b.text))
            self.negatives.append((a, b, j))

    def _plant_contamination(self, order: list[_Doc]) -> None:
        rng = self.rng
        pool = [d for d in order if not d.role and d.category == "prose"]
        intros = {
            "mc_science": "Here is a practice question from our study group that caught everyone out: {q}",
            "math_word": "A reader sent us this homework problem last week: {q} We will go through the "
            "solution step by step in the next post.",
            "reading_comp": "The following text was used in a reading exercise at a local school: {q}",
        }
        index = _bench_index(self.bench)
        for bench_name in BENCHMARK_NAMES:
            field = "support" if bench_name == "reading_comp" else "question"
            # Examples built from one template share long phrases, so leak a run of sentences whose 13-grams
            # belong to this example alone: a 13-gram decontaminator then matches exactly one example.
            cands = []
            for ex in self.bench[bench_name]:
                span = _unique_span(ex[field], ex["id"], index)
                if len(_WORD_RE.findall(span)) >= 15:
                    cands.append((ex, span))
            # Prefer the longer leaks (a long verbatim run is the typical contamination pattern).
            cands.sort(key=lambda c: (-len(c[1]), c[0]["id"]))
            for ex, span in rng.sample(cands[:12], 2):
                doc = pool.pop()
                blocks = doc.text.split("\n\n")
                blocks.insert(rng.randint(2, len(blocks)), intros[bench_name].format(q=span))
                doc.text = "\n\n".join(blocks)
                doc.role = "contaminated"
                found: set[str] = set()
                for g in _shingles(doc.text, 13):
                    found |= index.get(g, set())
                self.contaminated.append((doc, bench_name, ex["id"], field, span, sorted(found)))

    def _plant_near(self, order: list[_Doc], n_near: int, n_chains: int) -> None:
        rng = self.rng
        pool = [d for d in order if not d.role and d.category == "prose" and _word_count(d.text) >= 150]
        made = 0
        for _ in range(n_chains):
            a = pool.pop()
            b_text, j_ab = _near_duplicate(rng, a.text, a.topic, target=(0.86, 0.92))
            b = self._derived(a, b_text, 0.6)
            c_text, j_bc = _near_duplicate(rng, b.text, a.topic, target=(0.86, 0.92))
            c = self._derived(a, c_text, 0.6)
            j_ac = _jaccard(_shingles(a.text), _shingles(c.text))
            for d, role in ((a, "near_source"), (b, "near_copy"), (c, "near_copy")):
                d.role = role
            self.near_pairs += [(a, b, j_ab), (b, c, j_bc)]
            self.chains.append((a, b, c, j_ac))
            self.groups.append([a, b, c])
            made += 2
        while made < n_near:
            a = pool.pop()
            b_text, j = _near_duplicate(rng, a.text, a.topic)
            b = self._derived(a, b_text, 0.6)
            a.role, b.role = "near_source", "near_copy"
            self.near_pairs.append((a, b, j))
            self.groups.append([a, b])
            made += 1

    def _plant_exact(self, order: list[_Doc], exact_cats: list[str]) -> None:
        rng = self.rng
        pools: dict[str, list[_Doc]] = {}
        for d in order:
            if not d.role:
                pools.setdefault(d.category, []).append(d)
        last_src: _Doc | None = None
        for cat in exact_cats:
            # About one copy in ten is a second copy of the previous original (clusters of three).
            if last_src is not None and last_src.category == cat and rng.random() < 0.1:
                src = last_src
            else:
                src = pools[cat].pop()
                src.role = "exact_source"
                self.groups.append([src])
            last_src = src
            identical = rng.random() < 0.67
            text = src.text if identical else _whitespace_variant(rng, src.text)
            copy = self._derived(src, text, 0.35)
            copy.role = "exact_copy"
            self.exact_pairs.append((src, copy, identical))
            next(g for g in self.groups if g[0] is src).append(copy)


def _whitespace_variant(rng: random.Random, text: str) -> str:
    """Copy of ``text`` that differs only in whitespace (identical after collapsing runs)."""
    kind = rng.randrange(4)
    if kind == 0:
        out = text.replace("\n\n", "\n\n\n") + "\n"
    elif kind == 1:
        words = text.split(" ")
        out = " ".join(w + (" " if i % 7 == 3 else "") for i, w in enumerate(words))
    elif kind == 2:
        out = "  " + text.replace("\n", " \n") + "   "
    else:
        out = text.replace(". ", ".\t")
    if out == text:
        out = text + " "
    return out


def _split_blocks(text: str) -> list[list[str]]:
    return [_SENT_SPLIT.split(b) for b in text.split("\n\n")]


def _join_blocks(blocks: list[list[str]]) -> str:
    return "\n\n".join(" ".join(b) for b in blocks if b)


def _edit_once(rng: random.Random, blocks: list[list[str]], topic: str, kind: str) -> bool:
    """Apply one small edit in place; returns False when the edit was not applicable."""
    body = list(range(1, len(blocks)))
    if not body:
        return False
    bi = rng.choice(body)
    sents = blocks[bi]
    if kind == "sub":
        si = rng.randrange(len(sents))
        words = sents[si].split(" ")
        cands = [i for i, w in enumerate(words) if i > 0 and w.isalpha() and len(w) > 2]
        if not cands:
            return False
        wi = rng.choice(cands)
        new = rng.choice(_EN_SWAP_WORDS)
        if new == words[wi].lower():
            return False
        words[wi] = new
        sents[si] = " ".join(words)
    elif kind == "drop":
        if len(sents) < 2:
            return False
        sents.pop(rng.randrange(len(sents)))
    elif kind == "add":
        sents.insert(rng.randint(0, len(sents)), _sentences(rng, "en", topic, 1)[0])
    else:  # "date": move a year by a few years, the typical re-published-article edit
        for bi in [i for i in range(1, len(blocks)) if _YEAR_RE.search(" ".join(blocks[i]))]:
            for si, s in enumerate(blocks[bi]):
                m = _YEAR_RE.search(s)
                if m:
                    year = int(m.group(1)) + rng.choice((-3, -2, -1, 1, 2))
                    blocks[bi][si] = s[: m.start()] + str(year) + s[m.end() :]
                    return True
        return False
    return True


def _near_duplicate(
    rng: random.Random, text: str, topic: str, lo: float = 0.80, target: tuple[float, float] = (0.82, 0.93)
) -> tuple[str, float]:
    """Edit ``text`` until its word-5-gram Jaccard with the original drops to a goal drawn from ``target``.

    Edits are word swaps, sentence drops/additions and a date change; any edit that would push the
    similarity below ``lo`` is discarded, so the result always stays a near duplicate.

    Returns:
        The edited text and its Jaccard similarity with ``text`` (rounded to 4 places).
    """
    goal = rng.uniform(*target)
    base = _shingles(text)
    cur = _split_blocks(text)
    if rng.random() < 0.6:
        _edit_once(rng, cur, topic, "date")
    if rng.random() < 0.7:
        trial = [list(b) for b in cur]
        if _edit_once(rng, trial, topic, rng.choice(("drop", "add"))) and _jaccard(
            base, _shingles(_join_blocks(trial))
        ) >= max(goal, lo):
            cur = trial
    # A word swap replaces about five shingles, so estimate the swaps needed and do most of them in
    # one batch: recomputing the Jaccard after every single edit would dominate the run time.
    n_words = len(_WORD_RE.findall(text))
    est = int(n_words * (1 - goal) / (1 + goal) / 5 * 0.7)
    for _ in range(est):
        _edit_once(rng, cur, topic, "sub")
    j = _jaccard(base, _shingles(_join_blocks(cur)))
    for _ in range(500):
        if j <= goal:
            break
        trial = [list(b) for b in cur]
        kind = rng.choices(("sub", "drop", "add"), weights=(8, 1, 1))[0]
        if not _edit_once(rng, trial, topic, kind):
            continue
        jj = _jaccard(base, _shingles(_join_blocks(trial)))
        if jj >= lo:
            cur, j = trial, jj
    return _join_blocks(cur), round(j, 4)


# ---------------------------------------------------------------------------------------------
# PRRC labelled examples (training data for the demo raters)
# ---------------------------------------------------------------------------------------------

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
    """The labelling rules (see :func:`_make_prrc_labels`); returns the four ratings, each clamped to 0-5."""
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


def _prrc_example(rng: random.Random, category: str, variant: str) -> tuple[str, dict]:
    """One text of ``category`` (built by the corpus's own category generators) and what went into it."""
    doms = [d for d in _DOMAINS if d.category == category] or [d for d in _DOMAINS if d.category == "prose"]
    dom = rng.choice(doms)
    extra: dict = {}
    if category == "prose":
        _, text = _prose(rng, dom.topic)
        extra["byline"] = text.split("\n\n")[1].startswith("By ")
        if variant == "site_chrome":
            _, chrome = _boilerplate(rng, dom)
            lines = chrome.split("\n")
            cut = rng.randint(2, max(2, len(lines) - 2))
            text = "\n".join(lines[:cut]) + "\n\n" + text + "\n\n" + "\n".join(lines[cut:])
        elif variant == "spam_lines":
            spam_dom = rng.choice([d for d in _DOMAINS if d.category == "spam"])
            spam = _spam(rng, spam_dom)[1].split("\n")
            blocks = text.split("\n\n")
            extra["injected"] = rng.randint(1, 3)
            for _ in range(extra["injected"]):
                blocks.insert(rng.randint(1, len(blocks)), rng.choice(spam))
            text = "\n\n".join(blocks)
        elif variant == "run_on":
            text = re.sub(r"\.\s+", lambda m: " " if rng.random() < 0.7 else ", ", text.replace("\n\n", " "))
            text = text.lower()
    elif category == "forum":
        _, text = _forum(rng, dom.topic)
    elif category == "code":
        _, text = _code(rng, dom.topic)
        # Every snippet is followed by exactly one outro sentence; their opening words are fixed.
        extra["snippets"] = sum(text.count(parts[0][0]) for parts in _CODE_OUTRO)
    elif category == "math":
        _, text = _math(rng, dom.topic)
        extra["problems"] = text.count("\n\nProblem ")
    elif category == "boilerplate":
        _, text = _boilerplate(rng, dom)
    elif category == "spam":
        _, text = _spam(rng, dom)
    elif category == "non_english":
        _, text = _non_english(rng, rng.choices(("de", "fr", "es"), weights=(4, 3, 3))[0])
    else:
        _, text = _short(rng, dom.topic)
    return text, extra


def _make_prrc_labels(seed: int, corpus_texts: set[str]) -> list[dict]:
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


# ---------------------------------------------------------------------------------------------
# Placement and writing
# ---------------------------------------------------------------------------------------------


def _slug(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    s = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return s[:60].rstrip("-") or "page"


def _url(doc: _Doc) -> str:
    slug = _slug(doc.title)
    if doc.category == "forum":
        return f"https://{doc.host}/t/{slug}/{doc.key}"
    if doc.category == "code":
        return f"https://{doc.host}/snippets/{slug}-{doc.key}"
    if doc.category == "spam":
        return f"https://{doc.host}/?p={doc.key}&ref={slug[:12]}"
    return f"https://{doc.host}/{doc.day.year}/{doc.day.month:02d}/{slug}-{doc.key}"


def _warc_id(seed: int, file: str, k: int) -> str:
    digest = hashlib.sha256(f"corpuslake-sample:{seed}:{file}:{k}".encode()).digest()
    return f"<urn:uuid:{uuid.UUID(bytes=digest[:16], version=4)}>"


def _place(rng: random.Random, docs: list[_Doc], groups: list[list[_Doc]]) -> dict[str, list[_Doc]]:
    """Assign documents to files, keeping every original ahead of its copies in global order."""
    n = len(docs)
    n_warc = round(_FILE_SHARES[_WARC] * n)
    warc_pool = [d for d in docs if not d.role and d.category in ("prose", "non_english", "short")]
    rng.shuffle(warc_pool)
    warc = warc_pool[:n_warc]
    for d in warc:
        d.role = "warc"
    rest = [d for d in docs if d.role != "warc"]
    rng.shuffle(rest)
    files = [_W0, _W1, _W2, _PQ, _WET]
    total_share = sum(_FILE_SHARES[f] for f in files)
    per_file: dict[str, list[_Doc]] = {_WARC: warc}
    start = 0
    for i, f in enumerate(files):
        cnt = len(rest) - start if i == len(files) - 1 else round(len(rest) * _FILE_SHARES[f] / total_share)
        per_file[f] = rest[start : start + cnt]
        start += cnt
    # Global order = file-name order, then position.  Reassign slots inside each planted group so the
    # original precedes its copies (a first-wins deduplicator then keeps the original).
    slot = {}
    for f in RAW_FILES:
        for i, d in enumerate(per_file[f]):
            slot[id(d)] = (RAW_FILES.index(f), i)
    for group in groups:
        slots = sorted(slot[id(d)] for d in group)
        for d, s in zip(group, slots, strict=True):
            per_file[RAW_FILES[s[0]]][s[1]] = d
    return per_file


def _json_line(obj, ensure_ascii: bool = False) -> bytes:
    return json.dumps(obj, ensure_ascii=ensure_ascii).encode("utf-8")


def _doc_record(doc: _Doc, tag: str) -> dict:
    rec = {"id": doc.doc_id, "url": doc.url, "text": doc.text, "date": doc.day.isoformat(), "source_tag": tag}
    if doc.lang_hint:
        rec["lang_hint"] = doc.lang
    return rec


def _reject_line(rng: random.Random, reason: str, rid: str, url: str, k: int, max_doc_bytes: int) -> bytes:
    """Raw bytes (without newline) of one planted bad JSONL record; ``k`` picks the variant."""
    meta = {"date": "2023-06-01", "source_tag": "cc-main-2024-10"}
    if reason == "malformed_json":
        variants = (
            f'{{"id": "{rid}", "text": "abc',
            f'{{"id": "{rid}", "url": "{url}", "text": "Half a record", "date": "2023-04-01"',
            f'{{"id": "{rid}", "text": "two strings" "glued together"}}',
            f'{{"id": "{rid}" "text": "missing comma between fields"}}',
        )
        return variants[k % len(variants)].encode()
    if reason == "not_an_object":
        variants = (
            _json_line([rid, "an array instead of an object"]),
            b"42",
            _json_line("just a bare string"),
        )
        return variants[k % len(variants)]
    if reason == "missing_text":
        variants = (
            {"id": rid, "url": url, "body": "The text sits under the wrong key.", **meta},
            {"id": rid, "url": url, **meta},
        )
        return _json_line(variants[k % len(variants)])
    if reason == "empty_text":
        return _json_line({"id": rid, "url": url, "text": ("", "   \n\t  ")[k % 2], **meta})
    if reason == "non_string_text":
        values = (12345, ["a list", "of strings"], {"body": "nested object"})
        return _json_line({"id": rid, "url": url, "text": values[k % len(values)], **meta})
    if reason == "invalid_utf8":
        bad = (b"Caf\xc3 cr\xe8me and \xff\xfe broken bytes", b"a lone continuation \x80 byte in the text")
        return (
            f'{{"id": "{rid}", "url": "{url}", "text": "'.encode()
            + bad[k % 2]
            + b'", "date": "2023-06-01", "source_tag": "cc-main-2024-10"}'
        )
    if reason == "too_large":
        chunk = []
        size = 0
        while size < max_doc_bytes + 50_000:
            para = " ".join(_sentences(rng, "en", "history", 8))
            chunk.append(para)
            size += len(para.encode("utf-8")) + 2
        text = "\n\n".join(chunk).encode("utf-8")[: max_doc_bytes + 50_000].decode("utf-8", "ignore")
        return _json_line({"id": rid, "url": url, "text": text, **meta})
    raise ValueError(reason)


def _html_page(doc: _Doc) -> bytes:
    blocks = doc.text.split("\n\n")
    if len(blocks) > 1 and blocks[0] == doc.title:
        blocks = blocks[1:]  # the headline goes to <title>; the body keeps every other block
    title = html.escape(doc.title, quote=False)
    paras = "\n".join(f"<p>{html.escape(b, quote=False)}</p>" for b in blocks)
    page = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{title}</title>"
        "<style>body { font-family: Georgia, serif; } .nav, .cookie-banner { display: none; }</style>"
        "<script>window.dataLayer = window.dataLayer || []; function track(e) { dataLayer.push(e); } "
        'var banner = "We use cookies. Accept all cookies?";</script>'
        f"</head><body>\n{paras}\n</body></html>\n"
    )
    return page.encode("utf-8")


class _Writer:
    """Writes the raw files and collects per-record truth."""

    def __init__(self, out: Path, seed: int, rng: random.Random, max_doc_bytes: int):
        self.out = out
        self.seed = seed
        self.rng = rng
        self.max_doc_bytes = max_doc_bytes
        self.rejects: list[dict] = []
        self.records: dict[str, int] = {}
        self.accepted: list[_Doc] = []
        base = datetime(2024, 1, 1) + timedelta(days=seed % 365)
        self.crawl_base = base

    def _warc_date(self, k: int) -> str:
        return (self.crawl_base + timedelta(seconds=37 * k)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _reject(self, file: str, rn: int, reason: str) -> None:
        self.rejects.append({"file": file, "record_number": rn, "reason": reason})

    def _accept(self, doc: _Doc, file: str, rn: int) -> None:
        doc.file, doc.record_number = file, rn
        if len(doc.text.encode("utf-8")) > self.max_doc_bytes:
            # Only possible with a tiny max_doc_bytes; keep truth consistent with the ingest rule.
            self._reject(file, rn, "too_large")
        else:
            self.accepted.append(doc)

    @staticmethod
    def _interleave(rng: random.Random, docs: list[_Doc], bad: list[str], head: int = 0) -> list:
        """Insert bad-record markers at random positions (not before ``head`` docs)."""
        items: list = list(docs)
        for reason in bad:
            items.insert(rng.randint(min(head, len(items)), len(items)), reason)
        return items

    def plan_jsonl(self, per_file: dict[str, list[_Doc]]) -> dict[str, list]:
        rng = self.rng
        layouts = {}
        for f in (_W0, _W1, _W2):
            bad = [reason for ff, reason, cnt in _JSONL_REJECTS if ff == f for _ in range(cnt)]
            rng.shuffle(bad)
            layouts[f] = self._interleave(rng, per_file[f], bad, head=3)
        return layouts

    def write_jsonl(self, layouts: dict[str, list], per_file: dict[str, list[_Doc]]) -> None:
        rng = self.rng
        # Assign ids from line numbers first: duplicate-id records need ids of earlier files.
        for f in (_W0, _W1, _W2):
            stem = Path(f).name.split(".")[0]
            for rn, item in enumerate(layouts[f], start=1):
                if isinstance(item, _Doc):
                    item.doc_id = f"{stem}-{rn:06d}"
        variant: dict[str, int] = {}
        serial = 10_000_000
        for f, ensure_ascii in ((_W0, False), (_W1, False), (_W2, True)):
            stem = Path(f).name.split(".")[0]
            prev = {_W1: _W0, _W2: _W1}.get(f)
            lines = []
            for rn, item in enumerate(layouts[f], start=1):
                if isinstance(item, _Doc):
                    item.lang_hint = rng.random() < (0.6 if item.lang != "en" else 0.25)
                    tag = _SOURCE_TAGS[f] if rng.random() < 0.9 else "manual-upload"
                    lines.append(_json_line(_doc_record(item, tag), ensure_ascii))
                    self._accept(item, f, rn)
                    continue
                reason = item
                k = variant.get(reason, 0)
                variant[reason] = k + 1
                serial += 1
                url = f"https://www.news-harbor.com/archive/item-{serial}"
                if reason == "duplicate_doc_id":
                    # Same source id as a document accepted from an earlier file: a re-crawl with new text.
                    accepted = {id(d) for d in self.accepted}
                    orig = rng.choice([d for d in per_file[prev] if id(d) in accepted])
                    text = " ".join(_sentences(rng, "en", orig.topic, 3))
                    rec = {
                        "id": orig.doc_id,
                        "url": orig.url,
                        "text": text,
                        "date": "2024-02-02",
                        "source_tag": _SOURCE_TAGS[f],
                    }
                    lines.append(_json_line(rec, ensure_ascii))
                    if len(text.encode("utf-8")) > self.max_doc_bytes:
                        reason = "too_large"  # the size check comes first (tiny max_doc_bytes only)
                else:
                    lines.append(_reject_line(rng, reason, f"{stem}-{rn:06d}", url, k, self.max_doc_bytes))
                self._reject(f, rn, reason)
            data = b"".join(line + b"\n" for line in lines)
            self.records[f] = len(lines)
            path = self.out / f
            if f.endswith(".gz"):
                data = gzip.compress(data, compresslevel=6, mtime=0)
            elif f.endswith(".zst"):
                data = zstandard.ZstdCompressor(level=10).compress(data)
            path.write_bytes(data)

    def write_parquet(self, docs: list[_Doc]) -> None:
        rng = self.rng
        bad = [reason for reason, cnt in _PARQUET_REJECTS for _ in range(cnt)]
        items = self._interleave(rng, docs, bad, head=2)
        cols: dict[str, list] = {k: [] for k in ("id", "url", "text", "date", "source_tag", "lang_hint")}
        for rn, item in enumerate(items, start=1):
            rid = f"web-003-{rn:06d}"
            if isinstance(item, _Doc):
                item.doc_id = rid
                item.lang_hint = rng.random() < 0.3
                rec = _doc_record(item, _SOURCE_TAGS[_PQ])
                self._accept(item, _PQ, rn)
            else:
                rec = {
                    "id": rid,
                    "url": f"https://www.portal-landing.com/row/{rn}",
                    "text": None if item == "missing_text" else "",
                    "date": "2022-11-30",
                    "source_tag": _SOURCE_TAGS[_PQ],
                }
                self._reject(_PQ, rn, item)
            for k in cols:
                cols[k].append(rec.get(k))
        schema = pa.schema([(k, pa.string()) for k in cols])
        table = pa.table(cols, schema=schema)
        pq.write_table(table, self.out / _PQ, compression="snappy")
        self.records[_PQ] = len(items)

    def write_wet(self, docs: list[_Doc]) -> None:
        rng = self.rng
        bad = [reason for reason, cnt in _WET_REJECTS for _ in range(cnt)]
        items = self._interleave(rng, docs, bad, head=1)
        buf = io.BytesIO()
        writer = WARCWriter(buf, gzip=True)
        info = (
            b"Software-Info: corpuslake-sample-generator/" + GENERATOR_VERSION.encode() + b"\r\n"
            b"Extracted-Date: " + self._warc_date(0).encode() + b"\r\n"
            b"isPartOf: CC-MAIN-SAMPLE\r\noperator: corpuslake\r\n"
            b"description: Synthetic WET sample (plain text extracted from HTML)\r\n"
        )
        writer.write_record(
            writer.create_warc_record(
                "",
                "warcinfo",
                payload=io.BytesIO(info),
                length=len(info),
                warc_content_type="application/warc-fields",
                warc_headers_dict={
                    "WARC-Date": self._warc_date(0),
                    "WARC-Record-ID": _warc_id(self.seed, _WET, 0),
                    "WARC-Filename": Path(_WET).name,
                },
            )
        )
        iso3 = {"en": "eng", "de": "deu", "fr": "fra", "es": "spa"}
        for rn, item in enumerate(items, start=1):
            rid = _warc_id(self.seed, _WET, rn)
            headers = {
                "WARC-Date": self._warc_date(rn),
                "WARC-Record-ID": rid,
                "WARC-Refers-To": _warc_id(self.seed, _WET + "#response", rn),
            }
            if isinstance(item, _Doc):
                item.doc_id = rid
                uri, body = item.url, item.text.encode("utf-8")
                headers["WARC-Identified-Content-Language"] = iso3[item.lang]
                self._accept(item, _WET, rn)
            else:
                uri = f"https://www.citydirectory.com.au/listing/{rn}"
                # Latin-1 bytes in a body that claims to be UTF-8 text: a classic broken conversion.
                body = b"Caf\xe9 cr\xe8me br\xfbl\xe9e \xff\xfe" if item == "invalid_utf8" else b""
                self._reject(_WET, rn, item)
            writer.write_record(
                writer.create_warc_record(
                    uri,
                    "conversion",
                    payload=io.BytesIO(body),
                    length=len(body),
                    warc_content_type="text/plain",
                    warc_headers_dict=headers,
                )
            )
        (self.out / _WET).write_bytes(buf.getvalue())
        self.records[_WET] = len(items)

    def write_warc(self, docs: list[_Doc]) -> None:
        buf = io.BytesIO()
        writer = WARCWriter(buf, gzip=True)
        k = 0
        for rn, doc in enumerate(docs, start=1):
            k += 1
            rid = _warc_id(self.seed, _WARC, k)
            doc.doc_id = rid
            body = _html_page(doc)
            http_date = (self.crawl_base + timedelta(seconds=37 * k)).strftime("%a, %d %b %Y %H:%M:%S GMT")
            http_headers = StatusAndHeaders(
                "200 OK",
                [
                    ("Content-Type", "text/html; charset=utf-8"),
                    ("Content-Length", str(len(body))),
                    ("Date", http_date),
                    ("Server", "nginx"),
                ],
                protocol="HTTP/1.1",
            )
            writer.write_record(
                writer.create_warc_record(
                    doc.url,
                    "response",
                    payload=io.BytesIO(body),
                    length=len(body),
                    http_headers=http_headers,
                    warc_headers_dict={"WARC-Date": self._warc_date(k), "WARC-Record-ID": rid},
                )
            )
            self._accept(doc, _WARC, rn)
            if rn == 1:
                # The matching request record: readers must skip it (not a data record).
                k += 1
                path = doc.url.split("/", 3)[3] if doc.url.count("/") >= 3 else ""
                req = StatusAndHeaders(
                    f"GET /{path} HTTP/1.1",
                    [
                        ("Host", doc.host),
                        ("User-Agent", "corpuslake-sample-crawler/1.0"),
                        ("Accept", "text/html"),
                    ],
                    is_http_request=True,
                )
                writer.write_record(
                    writer.create_warc_record(
                        doc.url,
                        "request",
                        payload=io.BytesIO(b""),
                        length=0,
                        http_headers=req,
                        warc_headers_dict={
                            "WARC-Date": self._warc_date(k),
                            "WARC-Record-ID": _warc_id(self.seed, _WARC, k),
                            "WARC-Concurrent-To": rid,
                        },
                    )
                )
        (self.out / _WARC).write_bytes(buf.getvalue())
        self.records[_WARC] = len(docs)


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def _clean(out: Path) -> None:
    """Remove only what this generator owns, never unrelated files in ``out``."""
    for sub in ("raw", "benchmarks", "labels"):
        if (out / sub).is_dir():
            shutil.rmtree(out / sub)
    (out / "truth.json").unlink(missing_ok=True)
    for sub in ("raw", "benchmarks", "labels"):
        (out / sub).mkdir(parents=True)


def generate(out_dir: str | Path, n_docs: int = 5000, seed: int = 0, max_doc_bytes: int = 200_000) -> dict:
    """Generate the sample corpus, benchmarks and ground truth under ``out_dir``.

    Existing ``raw/``, ``benchmarks/``, ``labels/`` and ``truth.json`` inside ``out_dir`` are replaced; other
    files there are left alone.  The same arguments always produce byte-identical files.

    Args:
        out_dir: Target directory (created if missing).
        n_docs: Number of documents the ingest stage should accept (planted bad records come on top).
            Must be at least 200 so every planted structure fits.
        seed: Seed for every random choice; different seeds give different corpora.
        max_doc_bytes: The ingest size limit; the ``too_large`` records exceed it by 50,000 bytes.

    Returns:
        The ground-truth dictionary, also written to ``out_dir/truth.json`` (see the module docstring
        and ``truth["notes"]`` for the meaning of each key).

    Raises:
        ValueError: If ``n_docs`` is below 200 or ``max_doc_bytes`` is not positive.
    """
    if n_docs < _MIN_DOCS:
        raise ValueError(f"n_docs must be >= {_MIN_DOCS}, got {n_docs}")
    if max_doc_bytes <= 0:
        raise ValueError("max_doc_bytes must be positive")
    out = Path(out_dir)
    _clean(out)
    benchmarks = _make_benchmarks(seed)
    for name, rows in benchmarks.items():
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        (out / "benchmarks" / f"{name}.jsonl").write_bytes(data.encode("utf-8"))

    rng = random.Random(f"corpuslake-sample:{seed}:corpus")
    planner = _Planner(rng, n_docs, benchmarks)
    planner.build()
    per_file = _place(rng, planner.docs, planner.groups)
    for d in planner.docs:
        d.url = _url(d)

    writer = _Writer(out, seed, rng, max_doc_bytes)
    layouts = writer.plan_jsonl(per_file)
    writer.write_wet(per_file[_WET])
    writer.write_warc(per_file[_WARC])
    writer.write_jsonl(layouts, per_file)
    writer.write_parquet(per_file[_PQ])

    truth = _truth(planner, writer, benchmarks, n_docs, seed, max_doc_bytes)
    data = json.dumps(truth, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    (out / "truth.json").write_bytes(data.encode("utf-8"))

    # Last, and from its own random stream, so the corpus files and truth.json do not depend on it.
    labels = _make_prrc_labels(seed, {" ".join(d.text.split()) for d in planner.docs})
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in labels)
    (out / "labels" / "prrc.jsonl").write_bytes(data.encode("utf-8"))
    return truth


def _truth(
    planner: _Planner,
    writer: _Writer,
    benchmarks: dict[str, list[dict]],
    n_docs: int,
    seed: int,
    max_doc_bytes: int,
) -> dict:
    accepted = {id(d) for d in writer.accepted}

    def ok(*docs: _Doc) -> bool:
        return all(id(d) in accepted for d in docs)

    rejects = sorted(writer.rejects, key=lambda r: (RAW_FILES.index(r["file"]), r["record_number"]))
    by_reason = {r: 0 for r in REJECT_REASONS}
    for r in rejects:
        by_reason[r["reason"]] += 1
    by_file = {}
    for f in RAW_FILES:
        rej = sum(1 for r in rejects if r["file"] == f)
        by_file[f] = {"records": writer.records[f], "accepted": writer.records[f] - rej, "rejected": rej}
    by_cat: dict[str, int] = {c: 0 for c in CATEGORY_SHARES}
    by_lang: dict[str, int] = {}
    for d in writer.accepted:
        by_cat[d.category] += 1
        by_lang[d.lang] = by_lang.get(d.lang, 0) + 1
    records_total = sum(writer.records.values())
    docs = {
        d.doc_id: {
            "category": d.category,
            "lang": d.lang,
            "domain": d.dom.name,
            "file": d.file,
            "record_number": d.record_number,
        }
        for d in sorted(writer.accepted, key=lambda d: (RAW_FILES.index(d.file), d.record_number))
    }
    exact = [(a, b, ident) for a, b, ident in planner.exact_pairs if ok(a, b)]
    near = [(a, b, j) for a, b, j in planner.near_pairs if ok(a, b)]
    return {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "n_docs": n_docs,
        "max_doc_bytes": max_doc_bytes,
        "files": {f: {"records": writer.records[f]} for f in RAW_FILES},
        "benchmarks": {
            name: {
                "file": f"benchmarks/{name}.jsonl",
                "examples": len(rows),
                "splits": {s: sum(1 for r in rows if r["split"] == s) for s in ("test", "validation")},
            }
            for name, rows in benchmarks.items()
        },
        "domains": {
            d.name: {"hosts": list(d.hosts), "topic": d.topic, "category": d.category, "lang": d.lang}
            for d in _DOMAINS
        },
        "docs": docs,
        "rejects": rejects,
        "counts": {
            "records_total": records_total,
            "expected_accepted": len(writer.accepted),
            "expected_rejected": len(rejects),
            "rejected_by_reason": by_reason,
            "by_file": by_file,
            "by_category": by_cat,
            "by_lang": dict(sorted(by_lang.items())),
            "domains": len({d.dom.name for d in writer.accepted}),
        },
        "exact_duplicates": [[a.doc_id, b.doc_id] for a, b, _ in exact],
        "exact_duplicates_byte_identical": [[a.doc_id, b.doc_id] for a, b, ident in exact if ident],
        "exact_duplicates_whitespace_variants": [[a.doc_id, b.doc_id] for a, b, ident in exact if not ident],
        "near_duplicates": [[a.doc_id, b.doc_id] for a, b, _ in near],
        "near_duplicate_details": [{"a": a.doc_id, "b": b.doc_id, "jaccard": j} for a, b, j in near],
        "chains": [[a.doc_id, b.doc_id, c.doc_id] for a, b, c, _ in planner.chains if ok(a, b, c)],
        "chain_details": [
            {"chain": [a.doc_id, b.doc_id, c.doc_id], "jaccard_ac": round(j, 4)}
            for a, b, c, j in planner.chains
            if ok(a, b, c)
        ],
        "boilerplate_negatives": [[a.doc_id, b.doc_id] for a, b, _ in planner.negatives if ok(a, b)],
        "boilerplate_negative_details": [
            {"a": a.doc_id, "b": b.doc_id, "jaccard": round(j, 4)}
            for a, b, j in planner.negatives
            if ok(a, b)
        ],
        "contaminated": [
            {
                "doc_id_source": d.doc_id,
                "benchmark": b,
                "example_id": ex,
                "field": field,
                "snippet": snippet,
                "overlapping_example_ids": hits,
            }
            for d, b, ex, field, snippet, hits in planner.contaminated
            if ok(d)
        ],
        "notes": {
            "record_number": "1-based ordinal within the file: JSONL line, Parquet row, or WET/WARC data "
            "record counting only conversion/response records",
            "doc_ids": "JSONL/Parquet: the id field; WET/WARC: the WARC-Record-ID header",
            "duplicate_doc_id": "first occurrence in file-name order, then record order, is accepted",
            "jaccard": "word 5-gram Jaccard over re.findall(r'\\w+', text.lower())",
            "exact_duplicates": "identical text after collapsing whitespace runs; [original_id, copy_id]",
            "contamination": "snippet (>= 15 words of the example's question, or of its passage for "
            "reading_comp) appears verbatim in the document; overlapping_example_ids lists "
            "every benchmark example whose question or support shares a word 13-gram with "
            "the document (by construction only example_id)",
            "warc_text": "crawl-001.warc.gz documents are HTML pages: the headline is the <title>, every "
            "other block of the document is one <p>; <style> and <script> hold no document text",
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: generate the sample corpus and print a short summary.

    Args:
        argv: Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns:
        Process exit code (0 on success).
    """
    parser = argparse.ArgumentParser(description="Generate the deterministic corpuslake sample corpus.")
    parser.add_argument("--out", default="data/sample", help="output directory (default: data/sample)")
    parser.add_argument("--docs", type=int, default=5000, help="documents to be accepted (default: 5000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--max-doc-bytes", type=int, default=200_000, help="ingest size limit in bytes")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    truth = generate(args.out, n_docs=args.docs, seed=args.seed, max_doc_bytes=args.max_doc_bytes)
    counts = truth["counts"]
    print(f"wrote sample corpus to {args.out} in {time.perf_counter() - start:.1f}s")
    print(
        f"  records: {counts['records_total']}  accepted: {counts['expected_accepted']}  "
        f"rejected: {counts['expected_rejected']}  domains: {counts['domains']}"
    )
    print("  rejected by reason: " + ", ".join(f"{k}={v}" for k, v in counts["rejected_by_reason"].items()))
    print(
        f"  exact duplicates: {len(truth['exact_duplicates'])}  near duplicates: "
        f"{len(truth['near_duplicates'])}  contaminated docs: {len(truth['contaminated'])}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

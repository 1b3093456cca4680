"""What the sample corpus holds: its files, document categories and planted rejects.

These constants shape the output byte for byte; changing one changes every sample.
"""

from __future__ import annotations

# 2: benchmark splits train/dev/test (were validation/test); 3: blocked pages and PII paragraphs;
# 4: the instruction pool (raw/instruct-000.jsonl: chat records, malformed_messages) and its chat_* targets.
GENERATOR_VERSION = "4"

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
    "malformed_messages",
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

#: The web pages' files, in file-name order (the order that decides which duplicate id wins).
WEB_FILES = (
    "raw/crawl-000.warc.wet.gz",
    "raw/crawl-001.warc.gz",
    "raw/web-000.jsonl",
    "raw/web-001.jsonl.gz",
    "raw/web-002.jsonl.zst",
    "raw/web-003.parquet",
)
#: The instruction pool: chat records in the messages format (jobs/demo/instruct.py); ids never clash with
#: the web pages' (``instruct-000-<line>``).
CHAT_FILE = "raw/instruct-000.jsonl"
#: Every raw file, in file-name order.
RAW_FILES = tuple(sorted((*WEB_FILES, CHAT_FILE)))

BENCHMARK_NAMES = ("mc_science", "math_word", "reading_comp")
#: The instruction pool's task families; each is also the name of its target file (benchmarks/<name>.jsonl).
CHAT_TASKS = ("chat_arithmetic", "chat_rewrite", "chat_summary", "chat_code")
#: Chat examples per family in the pool, and targets per family (24 train / 12 dev / 24 test, as the other
#: benchmark files: BETR's balancing cuts every benchmark to the smallest one's target count).
N_CHAT_POOL = 12
N_CHAT_TARGETS = 60

WET, WARC, W0, W1, W2, PQ = WEB_FILES
#: Share of documents per file; most go to the JSONL files.
FILE_SHARES = {W0: 0.33, W1: 0.20, W2: 0.20, PQ: 0.12, WET: 0.09, WARC: 0.06}
SOURCE_TAGS = {
    W0: "cc-main-2024-10",
    W1: "cc-main-2024-18",
    W2: "news-partner-feed",
    PQ: "legacy-dump",
}

#: Planted rejects in the JSONL files: (file, reason, count).  Fixed counts (not scaled with n_docs) so even
#: a tiny sample exercises every reason at least twice.
JSONL_REJECTS = (
    (W0, "malformed_json", 3),
    (W0, "not_an_object", 3),
    (W0, "missing_text", 2),
    (W0, "empty_text", 2),
    (W0, "non_string_text", 3),
    (W0, "invalid_utf8", 2),
    (W0, "too_large", 2),
    (W1, "malformed_json", 1),
    (W1, "missing_text", 1),
    (W1, "empty_text", 1),
    (W1, "invalid_utf8", 1),
    (W1, "duplicate_doc_id", 2),
    (W2, "duplicate_doc_id", 1),
)
PARQUET_REJECTS = (("missing_text", 2), ("empty_text", 1))
WET_REJECTS = (("invalid_utf8", 1), ("empty_text", 1))

MIN_DOCS = 200

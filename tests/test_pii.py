"""PII redaction: crafted documents with exact counts, look-alikes that must not match, the action per type,
the conf, and the Spark step (the clean stage on the sample: tests/test_clean.py)."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest

from jobs.config import ConfError
from jobs.config.pii import PiiConf
from jobs.methods import pii as pii_step
from udfs.pii import COLUMNS, Redactor, RegexDetector, TypeRule

# text → the matches a detector must count, by type (every look-alike here must count nothing).
CASES = {
    "Write to Jane.Doe@Example.org or ops@mail.example.co.uk today.": {"email": 2},
    "Not addresses: icon@2x.png, user@localhost, @handle, newsletter@ and name@domain.": {},
    "Call (415) 555-0132, 415.555.0132 or +44 20 7946 0958.": {"phone": 3},
    "ISBN 0306406152; order no. 555 123 45678; 2023-10-15, 15.10.2023, 10/15/2023, 1999-2000, 12:30:45.": {},
    "Reach the mirror at 81.2.69.160 or [2a00:1450:4001:82a::200e].": {"ipv4": 1, "ipv6": 1},
    "Private 192.168.1.1, 10.0.0.7, 172.16.5.4, 127.0.0.1, shared 100.64.0.1, documentation 192.0.2.1 "
    "and 203.0.113.9, multicast 224.0.0.1, no address 256.1.1.1 or 01.02.03.04.": {},
    "Upgrade to 1.2.3.4 or version 10.2.30.4; OID 1.3.6.1.4.1.311; build 10.0.19.41.": {},
    "Our DNS resolver is 1.1.1.1.": {"ipv4": 1},
    "Link-local fe80::1, loopback ::1, documentation 2001:db8::1, std::vector, MAC 00:1A:2B:3C:4D:5E.": {},
    "An address literal a@[81.2.69.160] is one e-mail, not an e-mail and an IP.": {"email": 1},
}


@pytest.mark.parametrize("text", list(CASES))
def test_detector_counts_and_lookalikes(text):
    got = Counter(s.type for s in RegexDetector(phone_formats=("nanp", "international")).find(text))
    assert got == Counter(CASES[text])


def test_detector_spans_and_options():
    text = "Mail Jane.Doe@Example.org, call (415) 555-0132 or +44 20 7946 0958, ping 10.1.2.3."
    spans = [(s.type, text[s.start : s.end]) for s in RegexDetector().find(text)]
    # Dolma's phone pattern is North American only; private addresses do not count by default.
    assert spans == [("email", "Jane.Doe@Example.org"), ("phone", "(415) 555-0132")]
    every = RegexDetector(["phone", "ipv4"], ("nanp", "international"), public_ips_only=False)
    spans = [(s.type, text[s.start : s.end]) for s in every.find(text)]
    assert spans == [("phone", "(415) 555-0132"), ("phone", "+44 20 7946 0958"), ("ipv4", "10.1.2.3")]


def test_redactor_actions_per_type():
    rules = {
        "email": TypeRule("mask", "<E>"),
        "phone": TypeRule("drop_document", "<P>", max_count=1),
        "ipv4": TypeRule("flag", "<I>"),
        "ipv6": TypeRule("mask", "<I6>"),
    }
    docs = pd.DataFrame(
        {
            "doc_id": ["a", "b", "c", "d", "e"],
            "text": [
                "Mail a@b.com and c@d.org from 81.2.69.160.",
                "Call (415) 555-0132 or (212) 555-0199 now.",
                "Call (415) 555-0132 or mail a@b.com, x@y.net, z@w.io.",
                "Nothing here.",
                "Host 2a00:1450:4001:82a::200e answers.",
            ],
        },
        index=[5, 6, 7, 8, 9],  # a batch's own index does not matter
    )
    got = Redactor(rules, max_total=3)(docs)
    assert list(got.columns) == ["doc_id", "text", *COLUMNS]
    got = got.astype(object).where(got.notna(), None)
    assert got.to_dict("records") == [
        {
            "doc_id": "a",
            "text": "Mail <E> and <E> from 81.2.69.160.",  # ipv4 only flagged: the text keeps it
            **{"pii_email": 2, "pii_phone": 0, "pii_ipv4": 1, "pii_ipv6": 0},
            **{"pii_masked": 2, "pii_flagged": ["ipv4"], "pii_drop_reason": None, "pii_drop_value": None},
            "pii_drop_detail": None,
        },
        {
            "doc_id": "b",
            "text": docs["text"][6],  # dropped: kept as it was (silver never holds it)
            **{"pii_email": 0, "pii_phone": 2, "pii_ipv4": 0, "pii_ipv6": 0},
            **{"pii_masked": 0, "pii_flagged": [], "pii_drop_reason": "pii:phone", "pii_drop_value": 2.0},
            "pii_drop_detail": "more than max_count 1 phone matches (drop_document)",
        },
        {
            "doc_id": "c",
            "text": docs["text"][7],
            **{"pii_email": 3, "pii_phone": 1, "pii_ipv4": 0, "pii_ipv6": 0},
            **{"pii_masked": 0, "pii_flagged": [], "pii_drop_reason": "pii:total", "pii_drop_value": 4.0},
            "pii_drop_detail": "more than max_total 3 matches of masked types",
        },
        {
            "doc_id": "d",
            "text": "Nothing here.",
            **{"pii_email": 0, "pii_phone": 0, "pii_ipv4": 0, "pii_ipv6": 0},
            **{"pii_masked": 0, "pii_flagged": [], "pii_drop_reason": None, "pii_drop_value": None},
            "pii_drop_detail": None,
        },
        {
            "doc_id": "e",
            "text": "Host <I6> answers.",
            **{"pii_email": 0, "pii_phone": 0, "pii_ipv4": 0, "pii_ipv6": 1},
            **{"pii_masked": 1, "pii_flagged": [], "pii_drop_reason": None, "pii_drop_value": None},
            "pii_drop_detail": None,
        },
    ]


def test_conf_defaults_follow_dolma_and_reject_bad_actions(tmp_path):
    c = PiiConf()
    assert not c.enabled and c.max_total == 5 and c.phone_formats == ["nanp"] and c.public_ips_only
    assert {t: (r.action, r.placeholder) for t, r in c.rules().items()} == {
        "email": ("mask", "|||EMAIL_ADDRESS|||"),
        "phone": ("mask", "|||PHONE_NUMBER|||"),
        "ipv4": ("mask", "|||IP_ADDRESS|||"),
        "ipv6": ("mask", "|||IP_ADDRESS|||"),
    }
    # A type given without a placeholder keeps its own; a type turned off is not looked for.
    c = PiiConf(email={"action": "drop_document", "max_count": 2}, ipv6={"enabled": False})
    assert c.rules()["email"] == TypeRule("drop_document", "|||EMAIL_ADDRESS|||", 2)
    assert list(c.rules()) == ["email", "phone", "ipv4"]
    from tests.conftest import write_conf

    conf = write_conf(
        tmp_path / "c.yaml", tmp_path / "wh", [], {"clean": {"pii": {"email": {"action": "hide"}}}}
    )
    from jobs.config import load_conf

    with pytest.raises(ConfError, match=r"clean\.pii\.email\.action"):
        load_conf(str(conf))


def test_redact_step_on_spark(spark):
    rules = PiiConf().rules()
    docs = spark.createDataFrame(
        [
            ("a", "Write to jane@mail.example.com or call (415) 555-0132.", 1),
            ("b", "Directory: " + ", ".join(f"u{i}@x.org" for i in range(6)), 2),
            ("c", "No PII at 192.168.0.1.", 3),
        ],
        "doc_id string, norm_text string, n long",
    ).coalesce(1)
    redacted = docs.transform(pii_step.redact(rules, 5, text_col="norm_text")).persist()  # one UDF pass
    kept = {r["doc_id"]: (r["norm_text"], r["n"]) for r in pii_step.survivors(redacted).collect()}
    assert kept == {
        "a": ("Write to |||EMAIL_ADDRESS||| or call |||PHONE_NUMBER|||.", 1),
        "c": ("No PII at 192.168.0.1.", 3),
    }
    assert [
        (r["doc_id"], r["pii_drop_reason"], r["pii_drop_value"]) for r in pii_step.drops(redacted).collect()
    ] == [("b", "pii:total", 6.0)]
    rows = sorted(tuple(r) for r in redacted.transform(pii_step.score_rows("clean-1")).collect())
    redacted.unpersist()
    assert rows == [
        ("a", 1, 1, 0, 0, 2, 2, [], False, "regex", "clean-1"),
        ("b", 6, 0, 0, 0, 6, 0, [], True, "regex", "clean-1"),
        ("c", 0, 0, 0, 0, 0, 0, [], False, "regex", "clean-1"),
    ]

"""The HTML report of a lakehouse: one self-contained file a person can open, mail or attach to a ticket.

Sections (each ``<section id=…>``): summary, funnel, scores, domains, rater-weights, selection,
evaluation, gates, versions. The tables come from the saved queries of ``jobs/sql/`` (the same ones
``corpuslake sql`` runs); plots are matplotlib PNGs embedded as base64, drawn on ``Figure`` objects with
the Agg canvas so pyplot's global state (a notebook's backend) is never touched. Nothing is loaded from
outside the file.

A lakehouse where some stages never ran still renders: a section whose tables are empty says which stage
to run instead.

The package: ``queries`` (what the report reads), ``plots`` (matplotlib figures), ``markup`` (HTML pieces),
``sections`` (one renderer per section), ``chromium`` (screenshots); this module puts the page together.

Run it:  corpuslake report --out reports/report.html
         python -m jobs.report --conf conf/local.yaml --out reports/report.html \\
             --screenshot reports/report.png
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from pyspark.sql import SparkSession

from jobs.config import Conf
from jobs.report import chromium
from jobs.report.chromium import find_chromium, screenshot
from jobs.report.markup import CSS, MAX_ROWS, esc, figure_html, fmt, not_run, table_html
from jobs.report.plots import plot_domains, plot_funnel, plot_histograms, plot_rater_weights, plot_selection
from jobs.report.queries import HISTOGRAM_SQL, NEEDS, ReportContext, bind_tables, load, selection_totals
from jobs.report.sections import RENDERERS, SECTION_IDS, SECTIONS

__all__ = [
    "HISTOGRAM_SQL",
    "MAX_ROWS",
    "SECTIONS",
    "SECTION_IDS",
    "bind_tables",
    "chromium",
    "esc",
    "figure_html",
    "find_chromium",
    "fmt",
    "main",
    "not_run",
    "plot_domains",
    "plot_funnel",
    "plot_histograms",
    "plot_rater_weights",
    "plot_selection",
    "render",
    "screenshot",
    "selection_totals",
    "table_html",
    "write_report",
]


def render(spark: SparkSession, lakehouse, conf: Conf, sections: Iterable[str] | None = None) -> str:
    """The report as one HTML string (see ``write_report``)."""
    wanted = list(SECTION_IDS) if sections is None else [s for s in SECTION_IDS if s in set(sections)]
    unknown = sorted(set(sections or ()) - set(SECTION_IDS))
    if unknown:
        from jobs.runtime import UsageError

        raise UsageError(f"unknown report sections {unknown}; sections: {', '.join(SECTION_IDS)}")
    ctx = ReportContext(spark, lakehouse, conf)
    try:
        data = load(ctx, [n for s in wanted for n in NEEDS[s]])
    finally:
        ctx.drop_views()
    bodies = {s: RENDERERS[s](ctx, data) for s in wanted}
    titles = dict(SECTIONS)
    nav = " ".join(f'<a href="#{s}">{esc(titles[s])}</a>' for s in wanted)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>corpuslake report: {esc(conf.profile)}</title>",
        f"<style>{CSS}</style></head><body>",
        f'<header><h1>corpuslake report</h1><div class="sub">profile <b>{esc(conf.profile)}</b> · '
        f"{esc(getattr(lakehouse, 'warehouse', conf.storage.warehouse))} · {esc(data['generated_at'])}</div>"
        f"<nav>{nav}</nav></header><main>",
    ]
    for s in wanted:
        n_img = ctx.images.get(s, 0)
        parts.append(
            f'<section id="{s}" data-images="{n_img}"><h2>{esc(titles[s])}</h2>\n{bodies[s]}\n</section>'
        )
    parts.append("</main></body></html>\n")
    return "\n".join(parts)


def write_report(
    spark: SparkSession, lakehouse, conf: Conf, out: str | Path, sections: Iterable[str] | None = None
) -> Path:
    """Write the self-contained HTML report of the lakehouse.

    Args:
        spark: a session in which every table is registered (``jobs.catalog.connect``).
        lakehouse: the lakehouse of ``conf``.
        conf: the profile (names, budget, estimator).
        out: the HTML file; parent folders are created, the file is replaced atomically.
        sections: only these section ids (default: all, in report order).

    Returns:
        The absolute path written.
    """
    page = render(spark, lakehouse, conf, sections)
    path = Path(out).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(page)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m jobs.report --conf … --out … [--screenshot PNG] [--sections a,b]``."""
    from jobs.catalog import connect
    from jobs.config import ConfError, load_conf
    from jobs.runtime import EXIT_ERROR, EXIT_OK, EXIT_USAGE, UsageError, _error_log, add_conf_args

    p = add_conf_args(argparse.ArgumentParser(prog="corpuslake-report", description=__doc__.split("\n")[0]))
    p.add_argument("--out", default="reports/report.html", help="the HTML file to write")
    p.add_argument("--screenshot", default=None, metavar="PNG", help="also render it with headless Chromium")
    p.add_argument(
        "--sections",
        default=None,
        help="comma-separated section ids (default: all): " + ", ".join(SECTION_IDS),
    )
    args = p.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()] if args.sections else None
    try:
        conf = load_conf(args.conf, args.overrides)
        if sections:
            unknown = sorted(set(sections) - set(SECTION_IDS))
            if unknown:
                raise UsageError(f"unknown report sections {unknown}; sections: {', '.join(SECTION_IDS)}")
    except (ConfError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        spark, lh = connect(conf)
        path = write_report(spark, lh, conf, args.out, sections)
        print(f"report: {path}")
        if args.screenshot:
            print(f"screenshot: {screenshot(path, args.screenshot)}")
    except RuntimeError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # one line for the user, the traceback in a file
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"report: failed: {type(exc).__name__}: {first} (details: {_error_log(exc)})", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK

"""Write the report (HTML, Markdown, PDF) from an AnalysisResult.

Nothing is refitted: the report is a pure function of the result (so
``causal-hcc report RESULTS_DIR`` rebuilds it from ``results.json``). Only
aggregate numbers are shown. Each section is one module of
:mod:`causal_hcc.report.sections` plus one HTML and one Markdown template;
this module only orders them, renders the templates and writes the files.

Every string that comes from the spec or the data is escaped: HTML through
Jinja2 autoescaping, Markdown through a finalizer that escapes HTML and
Markdown metacharacters in every value not explicitly marked as Markdown
produced here (:class:`MdSafe`).

``report.html`` is self-contained: figures are base64 PNGs at twice their
display resolution, the style sheet and the small table-sorting script are
inline, and nothing is loaded from the network. ``report.pdf`` is that page
printed by headless Chromium (same layout).
"""
from __future__ import annotations

import html as _html
import importlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Any, Sequence

from causal_hcc.errors import OutputError, SpecError
from causal_hcc.report._fmt import MdSafe, md_escape, md_finalize, primary_outcome, time_unit
from causal_hcc.report.figset import FigureSet
from causal_hcc.report.sections import SECTIONS, SUMMARY_SECTIONS

__all__ = ["write_report", "build_context", "render_html", "render_markdown", "REPORT_FORMATS", "md_escape",
           "MdSafe", "find_chromium", "print_pdf", "disclosure_rule"]

REPORT_FORMATS = ("html", "md", "pdf")


@dataclass
class Context:
    """What every section's ``build`` gets: the result, the figures drawn so far, the primary outcome, the unit,
    and the study's readable names (:class:`causal_hcc.report._labels.Names`: the spec's ``title`` and
    ``labels``)."""

    result: Any
    figs: FigureSet = field(default_factory=FigureSet)
    outcome: str | None = None
    unit: str = "months"
    names: Any = None
    #: the disclosure rule in words ('' when counts are exact): named in every caption that shows counts
    disclosure: str = ""

    def __post_init__(self) -> None:
        if self.names is None:
            from causal_hcc.report._labels import Names

            self.names = Names(self.result)


def build_context(result: Any) -> dict[str, Any]:
    """Every section's numbers and figures (PNG), keyed by section id, plus the section list.

    The report shows what may be written: the result as
    :meth:`~causal_hcc.results.AnalysisResult.disclosed` (curves on the grid,
    counts of 1 .. min_cell-1 patients suppressed), so a report rebuilt from
    the output folder is the same as the one the run wrote.
    """
    import matplotlib

    if hasattr(result, "disclosed"):
        result = result.disclosed()
    ctx = Context(result, FigureSet(), primary_outcome(result), time_unit(result), disclosure=disclosure_rule(result))
    out: dict[str, Any] = {"study": str(result.study), "unit": ctx.unit, "outcome": ctx.outcome or "",
                           "truth": result.truth is not None, "title": ctx.names.title,
                           "subtitle": _subtitle(result, ctx), "outcome_name": ctx.names.outcome_lower(ctx.outcome or ""),
                           "disclosure": disclosure_rule(result)}
    sections = []
    with matplotlib.rc_context({"font.size": 9.5, "axes.titlesize": 10.5, "legend.fontsize": 9,
                                "axes.labelsize": 9.5, "xtick.labelsize": 9, "ytick.labelsize": 9.5,
                                "svg.fonttype": "none",
                                # user strings (labels, column names) are text, never mathtext: '$x$' is shown
                                # as typed, and an unbalanced '$' cannot stop the report
                                "text.parse_math": False}):
        for sid, module, title in SECTIONS:
            data = importlib.import_module(f"causal_hcc.report.sections.{module}").build(ctx)
            out[sid] = data
            if data is not None:
                sections.append({"id": sid, "title": title, "summary": sid in SUMMARY_SECTIONS})
    # the appendix: every section after the summary, lettered
    k = 0
    for sec in sections:
        if not sec["summary"]:
            sec["letter"] = chr(ord("A") + k)
            k += 1
    if sections:
        sections[0]["title"] = "Summary"
    out["sections"] = sections
    out["first_appendix"] = next((sec["id"] for sec in sections if not sec["summary"]), None)
    out["figures"] = ctx.figs.items
    return out


def _subtitle(result: Any, ctx: Context) -> str:
    """'zhang2024-twin · 150 patients, 26 with surgery · overall survival, progression-free survival · months'."""
    c = result.cohort or {}
    parts = []
    if "n" in c:
        parts.append(f"{c['n']} patients, {c.get('n_treated', '?')} with {ctx.names.treatment_lower}")
    outs = list(dict.fromkeys(r.outcome for r in result.records))
    if outs:
        parts.append(", ".join(ctx.names.outcome_lower(o) for o in outs))
    parts.append(f"time in {ctx.unit}")
    when = str((result.provenance or {}).get("date") or (result.provenance or {}).get("time") or "")[:10]
    if when:
        parts.append(when)
    return " · ".join(parts)


def disclosure_rule(result: Any) -> str:
    """The disclosure rule applied to every count shown, in words (for captions); '' when counts are exact.

    Taken from :mod:`causal_hcc.disclosure` (``rule_text``) where it has one,
    so captions follow the rule the outputs were written with.
    """
    m = int(getattr(result, "min_cell", 0) or 0)
    if m <= 1:  # 0: off (the twin); 1: counts as they are
        return ""
    try:
        from causal_hcc.disclosure import rule_text  # the rule object's own words
    except ImportError:
        rule_text = None
    if rule_text is not None:
        return f"{rule_text(m)} (OpenSAFELY method)"
    return (f"counts of fewer than {m} patients are shown as <{m}; a count that would reveal such a count by "
            f"subtraction is hidden (*)")


# ---------------------------------------------------------------------------
# templates
# ---------------------------------------------------------------------------
def _env(kind: str):
    import jinja2

    loader = jinja2.PackageLoader("causal_hcc.report", "templates")
    if kind == "html":
        return jinja2.Environment(loader=loader, autoescape=True, trim_blocks=True, lstrip_blocks=True,
                                  undefined=jinja2.StrictUndefined)
    env = jinja2.Environment(loader=loader, autoescape=False, trim_blocks=True, lstrip_blocks=True,
                             finalize=md_finalize, undefined=jinja2.StrictUndefined)
    env.filters["raw"] = lambda v: MdSafe(v)  # only for paths the report itself made (figures/<name>.png)
    # inside a fenced code block nothing renders as Markdown/HTML; only a fence could break out
    env.filters["fence"] = lambda v: MdSafe(str(v).replace("```", "` ` `"))
    return env


_ANCHOR = re.compile(r'<a href="#([^"]*)">(.*?)</a>', re.S)
_ID = re.compile(r'\bid="([^"]*)"')


def drop_dead_links(page: str) -> str:
    """Links to a section the report does not have (no Monte Carlo panel, no audit) become plain text."""
    ids = set(_ID.findall(page))
    return _ANCHOR.sub(lambda m: m.group(0) if m.group(1) in ids else m.group(2), page)


def render_html(ctx: dict[str, Any]) -> str:
    """report.html text (self-contained); every in-page link points at an element of the page."""
    return drop_dead_links(_env("html").get_template("report.html.j2").render(**ctx))


def render_markdown(ctx: dict[str, Any]) -> str:
    """report.md text (figures referenced as files under figures/)."""
    return _env("md").get_template("report.md.j2").render(**ctx)


# ---------------------------------------------------------------------------
# PDF: the HTML page printed by headless Chromium
# ---------------------------------------------------------------------------
_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_chromium() -> str | None:
    """Chromium's executable: ``$CAUSAL_HCC_CHROMIUM``, else the first of chromium/google-chrome on PATH."""
    env = os.environ.get("CAUSAL_HCC_CHROMIUM")
    if env:
        return env if os.path.exists(env) else shutil.which(env)
    for name in _CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def print_pdf(html_path: str, pdf_path: str, *, timeout: float = 180.0) -> None:
    """Print ``html_path`` to ``pdf_path`` with headless Chromium (A4 landscape, backgrounds, no header/footer).

    Raises
    ------
    OutputError
        Chromium not found, failed or timed out (one line; no PDF is left behind).
    """
    exe = find_chromium()
    if exe is None:
        raise OutputError("report format 'pdf' needs Chromium: install the 'chromium' package or set "
                          "CAUSAL_HCC_CHROMIUM to its path")
    with tempfile.TemporaryDirectory(prefix="causal-hcc-chromium-") as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--no-default-browser-check", "--disable-extensions",
               f"--user-data-dir={profile}", "--no-pdf-header-footer", "--run-all-compositor-stages-before-draw",
               f"--print-to-pdf={os.path.abspath(pdf_path)}", "file://" + os.path.abspath(html_path)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            _remove(pdf_path)
            raise OutputError(f"Chromium did not print the report within {timeout:g} s") from None
        except OSError as err:
            raise OutputError(f"cannot run Chromium '{exe}': {err.strerror}") from None
    if proc.returncode != 0 or not os.path.exists(pdf_path) or os.path.getsize(pdf_path) == 0:
        _remove(pdf_path)
        last = (proc.stderr or "").strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        raise OutputError(f"Chromium failed to print the report: {last[0]}")


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def write_report(result: Any, folder: str, formats: Sequence[str] | str = ("html", "md")) -> dict[str, str]:
    """Write the report files into ``folder``.

    Parameters
    ----------
    result : AnalysisResult
    folder : str
        Output folder (created if missing).
    formats : sequence of {"html", "md", "pdf"}
        ``html`` writes ``report.html`` (self-contained), ``md`` writes
        ``report.md`` and ``figures/*.png``, ``pdf`` writes ``report.pdf``:
        the HTML page printed by headless Chromium (the same layout).

    Returns
    -------
    dict
        format -> path written.
    """
    formats = [f.strip().lower() for f in (formats.split(",") if isinstance(formats, str) else formats) if f.strip()]
    bad = [f for f in formats if f not in REPORT_FORMATS]
    if bad:
        raise SpecError(f"report format '{bad[0]}' is not supported; valid: {', '.join(REPORT_FORMATS)}")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create report folder '{folder}': {err.strerror}") from None
    ctx = build_context(result)
    written: dict[str, str] = {}
    html_text = render_html(ctx) if ("html" in formats or "pdf" in formats) else ""
    if "html" in formats:
        p = os.path.join(folder, "report.html")
        with open(p, "w", encoding="utf-8") as fh:
            fh.write(html_text)
        written["html"] = p
    if "md" in formats:
        fdir = os.path.join(folder, "figures")
        os.makedirs(fdir, exist_ok=True)
        for item in ctx["figures"]:
            with open(os.path.join(folder, item["file"]), "wb") as fh:
                fh.write(item["png"])
        p = os.path.join(folder, "report.md")
        with open(p, "w", encoding="utf-8") as fh:
            fh.write(render_markdown(ctx))
        written["md"] = p
    if "pdf" in formats:
        p = os.path.join(folder, "report.pdf")
        if "html" in formats:
            print_pdf(written["html"], p)
        else:
            with tempfile.TemporaryDirectory(prefix="causal-hcc-report-") as tmp:
                src = os.path.join(tmp, "report.html")
                with open(src, "w", encoding="utf-8") as fh:
                    fh.write(html_text)
                print_pdf(src, p)
        written["pdf"] = p
    return written


def escape_html(s: Any) -> str:
    """HTML-escape a value (exposed for tests and callers composing HTML)."""
    return _html.escape("" if s is None else str(s))

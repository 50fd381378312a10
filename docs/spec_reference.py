"""Write the spec reference (every key of the YAML analysis spec) from the pydantic models of ``config.py``.

For each model, one table: key, type, default, and the description taken from
the field's ``#:`` comment in the source (the comments Sphinx's autodoc reads)
or the model's docstring. Run by ``docs/conf.py`` when the documentation is
built, so the reference never drifts from the code::

    python docs/spec_reference.py docs/_generated/spec_reference.md
"""
from __future__ import annotations

import inspect
import os
import sys
import typing
from typing import Any

from pydantic import BaseModel

SECTIONS = ("AnalysisSpec", "DataSpec", "RolesSpec", "OutcomeSpec", "VisitsSpec", "EstimandsSpec", "BootstrapSpec",
            "SensitivitySpec", "ReportSpec", "MissingSpec")
#: where a model sits in the YAML
PATHS = {"AnalysisSpec": "(top level)", "DataSpec": "data", "RolesSpec": "roles", "OutcomeSpec": "outcomes.NAME",
         "VisitsSpec": "visits", "EstimandsSpec": "estimands", "BootstrapSpec": "bootstrap",
         "SensitivitySpec": "sensitivity", "ReportSpec": "report", "MissingSpec": "missing (a mapping)"}


#: descriptions of keys whose field has no ``#:`` comment in config.py (kept here so config.py stays small)
DESCRIPTIONS = {
    ("AnalysisSpec", "study"): "names the output folder and the report (unless `title` is given)",
    ("AnalysisSpec", "data"): "where the cohort comes from",
    ("AnalysisSpec", "roles"): "which column plays which part",
    ("AnalysisSpec", "time_unit"): "unit of the times (and of times computed from dates: days, weeks, months, years)",
    ("AnalysisSpec", "outcomes"): "extra outcomes, e.g. `pfs: {time: pfs_months, event: pfs_event}`",
    ("AnalysisSpec", "confounders"): "column names or formula terms (`rcs(age, 4)`, `log(afp)`, `grade:nodes`)",
    ("AnalysisSpec", "codes"): "recode raw values before validation: `{column: {raw: new}}`; `null` makes a value missing",
    ("AnalysisSpec", "categorical"): "confounders to treat as categorical although numeric",
    ("AnalysisSpec", "reference"): "reference level per categorical confounder (default: its most frequent level, "
                                   "chosen once per analysis)",
    ("AnalysisSpec", "missing"): "`error`, `complete_case`, or `{method: mice, m, seed, ...}` (multiple imputation)",
    ("AnalysisSpec", "strategies"): "a preset name, a preset with options, or `{design: ..., adjustment: ..., <options>}`",
    ("AnalysisSpec", "estimands"): "the effect measures besides the hazard ratio",
    ("AnalysisSpec", "bootstrap"): "whole-pipeline bootstrap settings",
    ("AnalysisSpec", "n_jobs"): "parallel workers (capped at the CPU count)",
    ("AnalysisSpec", "on_error"): "`stop` exits 2 naming the failed strategy; `record` lists it in the report",
    ("AnalysisSpec", "published"): "a transcribed paper (YAML) for the audit and the forest plot",
    ("AnalysisSpec", "sensitivity"): "E-values, refuters and the causal graph",
    ("AnalysisSpec", "report"): "report formats, disclosure threshold, Monte Carlo panel",
    ("AnalysisSpec", "output"): "the output folder (default `reports/<study>`)",
    ("RolesSpec", "id"): "patient id (unique)",
    ("RolesSpec", "time"): "follow-up from time zero",
    ("RolesSpec", "event"): "1 event, 0 censored (after `codes`)",
    ("RolesSpec", "treatment"): "1 if treated at any time during follow-up",
    ("RolesSpec", "treatment_time"): "time zero to treatment; empty if never treated",
    ("RolesSpec", "cluster"): "centre: analytic SEs are clustered on it and the bootstrap resamples it",
    ("OutcomeSpec", "time"): "follow-up of this outcome", ("OutcomeSpec", "end_date"): "its event or censoring date",
    ("OutcomeSpec", "event"): "1 event, 0 censored",
    ("EstimandsSpec", "survival_at"): "times of the survival differences (and absolute risks)",
    ("EstimandsSpec", "rmst_tau"): "horizon of the restricted mean survival time difference",
    ("EstimandsSpec", "alpha"): "1 - confidence level",
    ("BootstrapSpec", "replicates"): "number of resamples", ("BootstrapSpec", "seed"): "random seed",
    ("BootstrapSpec", "ci"): "interval from the bootstrap distribution",
    ("SensitivitySpec", "evalues"): "E-values of every estimate",
    ("SensitivitySpec", "refuters"): "DoWhy-style refutation tests",
    ("SensitivitySpec", "refuter_strategy"): "the strategy label the refuters re-run",
    ("SensitivitySpec", "dag"): "causal graph in DOT or GML; DoWhy finds the back-door sets",
    ("ReportSpec", "formats"): "html, md, pdf (the PDF is the HTML printed by headless Chromium)",
    ("ReportSpec", "min_cell"): "disclosure threshold for counts (default 5 on real data, 0 on the twin)",
    ("ReportSpec", "monte_carlo"): "twin replicates for the report's Monte Carlo panel (0 = off)",
    ("DataSpec", "path"): "a file (csv, tsv, parquet, xlsx, sav, dta, sas7bdat) or `twin`",
    ("DataSpec", "twin"): "twin parameters (seed, n, true_hr, ...)", ("DataSpec", "sheet"): "xlsx sheet",
    ("DataSpec", "sep"): "csv delimiter (sniffed when absent)", ("DataSpec", "decimal"): "decimal mark",
}


def _md(text: str) -> str:
    """reST inline markup of the comments as Markdown: ``x`` -> `x`, :mod:`x` -> `x`."""
    import re

    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`").replace("|", "\\|")


def _type(t: Any) -> str:
    origin = typing.get_origin(t)
    if t is type(None):
        return "null"
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(t))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", object)):
        return " or ".join(_type(a) for a in typing.get_args(t))
    if origin in (list, tuple):
        args = typing.get_args(t)
        return f"list of {_type(args[0])}" if args else "list"
    if origin is dict:
        k, v = typing.get_args(t) or (Any, Any)
        return f"mapping {_type(k)} → {_type(v)}"
    if isinstance(t, type) and issubclass(t, BaseModel):
        return f"[{t.__name__}](#{t.__name__.lower()})"
    if t is Any:
        return "any"
    return getattr(t, "__name__", str(t))


def _comments(model: type) -> dict[str, str]:
    """The ``#:`` comment above each field, as Sphinx's ModuleAnalyzer reads it."""
    try:
        from sphinx.pycode import ModuleAnalyzer

        docs = ModuleAnalyzer.for_module(model.__module__).find_attr_docs()
    except Exception:  # noqa: BLE001 - the reference then has types and defaults only
        return {}
    return {name: " ".join(line.strip() for line in lines if line.strip())
            for (cls, name), lines in docs.items() if cls == model.__name__}


def _default(f: Any) -> str:
    if f.is_required():
        return "required"
    if f.default_factory is not None:
        try:
            v = f.default_factory()
        except TypeError:
            return "(computed)"
        return "`[]`" if v == [] else "`{}`" if v == {} else f"`{v!r}`" if not isinstance(v, BaseModel) else "defaults"
    return f"`{f.default!r}`" if f.default is not None else "none"


def reference() -> str:
    from causal_hcc import config

    out = ["# Spec reference", "",
           "Every key of the YAML analysis spec, generated from the pydantic models of `causal_hcc/config.py` when "
           "this site is built. Unknown keys are refused when the spec loads, with the closest valid key. "
           "Strategy options are declared by each design and adjustment: `causal-hcc strategies` lists them.", ""]
    for name in SECTIONS:
        model = getattr(config, name, None)
        if model is None:
            continue
        doc = _md(inspect.cleandoc(model.__doc__ or "").split("\n\n")[0].replace("\n", " "))
        notes = _comments(model)
        out += [f"## {name}", "", f"YAML: `{PATHS.get(name, name)}`. {doc}", "", "| key | type | default | description |",
                "|---|---|---|---|"]
        for key, f in model.model_fields.items():
            if f.exclude:
                continue
            desc = _md(notes.get(key) or f.description or DESCRIPTIONS.get((name, key), ""))
            out.append(f"| `{key}` | {_type(f.annotation)} | {_default(f)} | {desc} |")
        out.append("")
    return "\n".join(out) + "\n"


def write_reference(path: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    text = reference()
    old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
    if old != text:  # unchanged: keep the file's time, so Sphinx does not rebuild it
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    return path


def listed_pages(docs: str) -> set[str]:
    """The docnames listed in the toctrees of ``docs/index.md``."""
    import re

    text = open(os.path.join(docs, "index.md"), encoding="utf-8").read()
    out = set()
    for block in re.findall(r"```\{toctree\}\n(.*?)```", text, re.S):
        out |= {x.strip() for x in block.splitlines() if x.strip() and not x.strip().startswith(":")}
    return out


def more_pages(docs: str) -> list[str]:
    """The ``docs/*.md`` pages that ``index.md`` does not list (each page another branch adds, until listed)."""
    listed = listed_pages(docs)
    return sorted(f[:-3] for f in os.listdir(docs) if f.endswith(".md") and f != "index.md" and f[:-3] not in listed)


def write_more_pages(docs: str, path: str) -> str:
    pages = more_pages(docs)
    body = ["# More pages", ""]
    if pages:
        body += ["```{toctree}", ":maxdepth: 1", ""] + [f"/{p}" for p in pages] + ["```", ""]
    else:
        body += ["Every page is listed in the navigation.", ""]
    text = "\n".join(body)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
    if old != text:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    return path


if __name__ == "__main__":
    print(write_reference(sys.argv[1] if len(sys.argv) > 1 else "docs/_generated/spec_reference.md"))

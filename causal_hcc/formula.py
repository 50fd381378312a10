"""Formula terms in ``confounders:``: ``rcs(age, 4)``, ``log(afp)``, ``grade:nodes``.

A confounder entry that is not a column of the data and contains ``(``,
``:`` or ``*`` is a *term*, evaluated by `formulaic
<https://matthewwardrop.github.io/formulaic/>`_ on the cohort's data (no
``eval`` of arbitrary code: formulaic parses the term and resolves only
names of columns and of the transforms below). Its columns enter the design
matrix ``X`` of the propensity and outcome models under readable names:

* ``rcs(x, k)``: restricted cubic spline with ``k`` knots (3 to 7) at
  Harrell's default quantiles, exactly as R's ``rms::rcs`` /
  ``Hmisc::rcspline.eval`` (``inclx = TRUE``, ``norm = 2``, ``fractied =
  0.05``, outer knots at the 5th smallest / largest value when n < 100);
  columns ``x``, ``x'``, ``x''``… as rms names them. ``rcs(x, [20, 40,
  60])`` gives the knots. With few distinct values the knots are the
  interior distinct values, or Hmisc's alternate quantiles under heavy
  ties, as R does (fewer columns; the cohort's ``warnings`` say so).
* ``log(x)``, ``sqrt(x)``, ``exp(x)``, ``I(x ** 2)`` (numpy functions;
  ``log`` of a value <= 0 is refused naming the rows);
* ``a:b`` an interaction (product; a text/categorical variable gives one
  product per non-reference level, named ``a=level:b``, the reference being
  the first level in sorted order as R's ``contr.treatment``; list the main
  effects too, as in R); ``a*b`` = ``a + b + a:b``.

Knots are computed once on the validated cohort, so a bootstrap resample
(:meth:`~causal_hcc.cohort.Cohort.take`) keeps them, as ``rms`` keeps the
knots of the fitted model.

References
----------
.. [1] Harrell FE. *Regression Modeling Strategies*, 2nd ed. Springer,
   2015, section 2.4.5 (restricted cubic splines, default knot quantiles).
.. [2] Stone CJ, Koo CY. Additive splines in statistics. *Proc Stat Comp
   Sect Am Stat Assoc* 1985:45-48.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from causal_hcc.errors import DataError, SpecError

__all__ = ["is_term", "term_variables", "term_matrix", "rcs_knots", "rcs_basis"]

_TERM_CHARS = re.compile(r"[():*]")
_NAME = re.compile(r"[A-Za-z_.][A-Za-z0-9_.]*")
_FUNCTIONS = ("rcs", "log", "sqrt", "exp", "I", "C")


def is_term(name: str, columns: Sequence[str] = ()) -> bool:
    """True when ``name`` is a formula term rather than a column name."""
    return isinstance(name, str) and name not in columns and bool(_TERM_CHARS.search(name))


def term_variables(term: str) -> list[str]:
    """Column names a term reads, in order (``rcs(age, 4)`` -> ``["age"]``)."""
    out: list[str] = []
    for m in _NAME.finditer(term):
        tok = m.group(0)
        nxt = term[m.end():].lstrip()[:1]
        if nxt == "(":  # a function (unknown ones are refused when the term is evaluated)
            continue
        if re.fullmatch(r"[0-9.]+", tok):
            continue
        if tok not in out:
            out.append(tok)
    return out


# --------------------------------------------------------------------------
# restricted cubic splines (rms::rcs)
# --------------------------------------------------------------------------
def rcs_knots(x: np.ndarray, nk: int, fractied: float = 0.05, notes: list[str] | None = None) -> np.ndarray:
    """Knots of ``rms::rcs(x, nk)``: ``Hmisc::rcspline.eval``'s default algorithm.

    Quantiles ``seq(outer, 1 - outer, length = nk)`` with ``outer`` 0.1 for 3
    knots, 0.05 for 4-6 and 0.025 for 7 (R's type-7 quantiles); with fewer
    than 100 values the outer knots move to the 5th smallest and largest
    value; a value holding at least ``fractied`` of the data at either end
    (and no interior value that does) is replaced by the next value inward.

    Few distinct values are handled as Hmisc does, with a note instead of
    R's warning (appended to ``notes``):

    * ``nxu - 2 <= nk`` (``nxu`` distinct values): the knots are the
      ``nxu - 2`` interior distinct values (R: "knots set to ... interior
      values");
    * quantile knots with fewer than ``min(nk, 3)`` distinct values (heavy
      ties): Hmisc's alternate algorithm, quantiles at ``2 nk`` equally
      spaced probabilities (the middle value of three when a tied end
      value was overridden), then the same < 100 adjustment of the first
      and ``nk``-th knot as R applies.

    Raises
    ------
    DataError
        Fewer than 6 values, or fewer than 3 distinct knots in the end (R
        stops there too).
    """
    xx = np.asarray(x, dtype=float)
    xx = xx[~np.isnan(xx)]
    n = len(xx)
    if n < 6:
        raise DataError("rcs: knots need at least 6 non-missing values")
    notes = notes if notes is not None else []
    xu = np.unique(xx)
    nxu = len(xu)
    if nxu - 2 <= nk:
        if nxu - 2 < 3:
            raise DataError(f"rcs: the variable has only {nxu} distinct values; a spline needs at least 5 "
                            "(3 knots at interior values)")
        notes.append(f"{nk} knots requested with {nxu} distinct values; knots set to the {nxu - 2} interior "
                     "values (as rms::rcs)")
        return xu[1:-1].copy()
    outer = 0.05 if nk > 3 else 0.1
    if nk > 6:
        outer = 0.025
    nke = nk
    first: list[float] = []
    last: list[float] = []
    over_first = over_last = False
    if 0 < fractied < 1:
        vals, counts = np.unique(xx, return_counts=True)
        f = counts / n
        if len(f) > 2 and f[1:-1].max() < fractied:
            if f[0] >= fractied:
                first = [float(xx[xx > xx.min()].min())]
                xx = xx[xx > first[0]]
                nke -= 1
                over_first = True
            if f[-1] >= fractied:
                last = [float(xx[xx < xx.max()].max())]
                xx = xx[xx < last[0]]
                nke -= 1
                over_last = True
    if nke == 1:
        knots = np.array([np.median(xx)])
    elif nxu <= nke:
        knots = xu.copy()
    else:
        p = np.linspace(0.5, 1 - outer, nke) if nke == 2 else np.linspace(outer, 1 - outer, nke)
        knots = np.quantile(xx, p)
        if len(np.unique(knots)) < min(nke, 3):
            knots = np.quantile(xx, np.linspace(outer, 1 - outer, 2 * nke))
            if first and len(np.unique(knots)) < 3:
                mid = (first[0] + last[0]) / 2 if last else float(np.median(xx))
                knots = np.sort(np.array([first[0], mid, last[0] if last else np.quantile(xx, 1 - outer)]))
            nu = len(np.unique(knots))
            if nu < 3:
                raise DataError(f"rcs: fewer than 3 distinct knots for {nk} requested (the variable has too many "
                                "tied values); give the knots, e.g. rcs(x, [20, 40, 60])")
            notes.append(f"could not obtain {nke} knots with the default algorithm (tied values); used the "
                         f"alternate algorithm to obtain {nu} knots (as rms::rcs)")
        if len(xx) < 100:
            srt = np.sort(xx)
            if not over_first:
                knots[0] = srt[4]
            if not over_last:
                if nke - 1 >= len(knots):  # R's knots[nke] <- ... extends the vector (with NA between)
                    knots = np.concatenate([knots, np.full(nke - len(knots), np.nan)])
                knots[nke - 1] = srt[len(srt) - 5]
    knots = np.concatenate([first, knots, last])
    knots = np.unique(knots[~np.isnan(knots)])
    if len(knots) < 3:
        raise DataError(f"rcs: fewer than 3 distinct knots for {nk} requested (the variable has too many tied "
                        "values); give the knots, e.g. rcs(x, [20, 40, 60])")
    return knots


def rcs_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """``Hmisc::rcspline.eval(x, knots, inclx = TRUE)`` (norm = 2): ``n x (k - 1)``."""
    x = np.asarray(x, dtype=float)
    k = np.asarray(knots, dtype=float)
    nk = len(k)
    kd = (k[-1] - k[0]) ** (2.0 / 3.0)
    cols = [x]
    for j in range(nk - 2):
        cols.append(np.maximum((x - k[j]) / kd, 0) ** 3
                    + ((k[-2] - k[j]) * np.maximum((x - k[-1]) / kd, 0) ** 3
                       - (k[-1] - k[j]) * np.maximum((x - k[-2]) / kd, 0) ** 3) / (k[-1] - k[-2]))
    return np.column_stack(cols)


# --------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------
def _rcs_transform(names: dict[str, list[str]], notes: list[str]) -> Callable[..., pd.DataFrame]:
    def rcs(x: Any, parms: Any = 5) -> pd.DataFrame:
        arr = np.asarray(x, dtype=float)
        if isinstance(parms, (list, tuple, np.ndarray)):
            knots = np.sort(np.asarray(parms, dtype=float))
            if len(knots) < 3:
                raise DataError("rcs: give at least 3 knots")
        else:
            if isinstance(parms, float) and not parms.is_integer():
                raise DataError(f"rcs: the number of knots must be a whole number, got {parms!r}")
            nk = int(parms)
            if not 3 <= nk <= 7:
                raise DataError(f"rcs: the number of knots must be 3 to 7 (Harrell's defaults), got {nk}")
            var = getattr(x, "name", None) or "x"
            found: list[str] = []
            knots = rcs_knots(arr, nk, notes=found)
            for msg in found:
                if msg not in notes:  # formulaic may evaluate a transform more than once
                    notes.append(msg)
        var = getattr(x, "name", None) or "x"
        primes = [var + "'" * j for j in range(len(knots) - 1)]
        names[var] = primes
        return pd.DataFrame(rcs_basis(arr, knots), columns=primes, index=getattr(x, "index", None))

    return rcs


def term_matrix(term: str, df: pd.DataFrame, *, categorical: Sequence[str] = (),
                where: Callable[[np.ndarray], str] | None = None,
                notes: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """The design columns of one term on ``df`` and their readable names.

    ``notes``, when given, receives warnings (``rcs`` with few distinct
    values: fewer knots, as R ``rms::rcs`` warns).

    No intercept. A text or declared-categorical variable is coded as
    indicators of its non-reference levels (reference: the first level in
    sorted order, as R's ``factor``), named ``var=level``.

    Raises
    ------
    SpecError
        A term formulaic cannot parse or that uses an unknown function.
    DataError
        ``log`` of a value <= 0 (rows named), an infinite result.
    """
    import formulaic

    for fn in re.findall(r"([A-Za-z_.][A-Za-z0-9_.]*)\s*\(", term):
        if fn not in _FUNCTIONS:
            raise SpecError(f"confounder term '{term}': unknown function '{fn}'; "
                            f"available: {', '.join(f for f in _FUNCTIONS if f != 'C')}")
    variables = term_variables(term)
    data = df[variables].copy()
    for v in variables:
        text = data[v].dtype == object or isinstance(data[v].dtype, pd.StringDtype)  # (pandas 3: str dtype)
        if v in categorical or text or isinstance(data[v].dtype, pd.CategoricalDtype):
            data[v] = data[v].astype(str).astype("category")
        elif "log(" in term.replace(" ", "") and f"log({v})" in term.replace(" ", ""):
            bad = ~(pd.to_numeric(data[v], errors="coerce").to_numpy(dtype=float) > 0)
            if bad.any():
                rows = where(bad) if where else f"{int(bad.sum())} rows"
                raise DataError(f"confounder term '{term}': log of a value <= 0 in '{v}' at {rows}")
    names: dict[str, list[str]] = {}
    context = {"rcs": _rcs_transform(names, notes if notes is not None else []), "log": np.log, "sqrt": np.sqrt,
               "exp": np.exp}
    try:
        mm = formulaic.model_matrix(f"{term} - 1", data, context=context, na_action="ignore")
    except (DataError, SpecError):
        raise
    except Exception as err:  # noqa: BLE001 - formulaic's parse/eval errors become one line
        inner: BaseException | None = err
        while inner is not None:  # our own error raised inside a transform: report it as it is
            if isinstance(inner, (DataError, SpecError)):
                raise inner from None
            inner = inner.__cause__ or inner.__context__
        msg = " ".join(str(err).split())[:200]
        raise SpecError(f"confounder term '{term}' cannot be evaluated: {msg}") from None
    cols = [_readable(str(c)) for c in mm.columns]
    X = np.asarray(mm, dtype=float)
    # a categorical variable is coded by its non-reference levels (R's contr.treatment: the first
    # level in sorted order is the reference), as in a model that has its main effect
    drop = set()
    for v in variables:
        if isinstance(data[v].dtype, pd.CategoricalDtype):
            levels = list(data[v].cat.categories)
            ref = f"{v}={levels[0]}"
            drop |= {j for j, c in enumerate(cols) if ref in c.split(":")}
    keep = [j for j in range(len(cols)) if j not in drop]
    X, cols = X[:, keep], [cols[j] for j in keep]
    if not np.all(np.isfinite(X)):
        bad = ~np.all(np.isfinite(X), axis=1)
        rows = where(bad) if where else f"{int(bad.sum())} rows"
        raise DataError(f"confounder term '{term}' gives non-finite values at {rows}")
    return X, cols


def _readable(name: str) -> str:
    """formulaic's ``grade[T.b]`` -> ``grade=b``; ``rcs(age, 4)[age']`` -> ``age'``."""
    name = re.sub(r"rcs\([^)]*\)\[([^\]]+)\]", r"\1", name)
    name = re.sub(r"\[T\.([^\]]+)\]", r"=\1", name)
    return re.sub(r"\[([^\]]+)\]", r"=\1", name)

"""Input validation shared by the survival core (one-line errors)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from causal_hcc.errors import DataError, SpecError


def _first_rows(mask: np.ndarray, k: int = 3) -> str:
    rows = np.flatnonzero(mask)[:k]
    return ", ".join(str(int(r)) for r in rows)


def as_float(x: Any, name: str, n: int | None = None, *, where: str) -> np.ndarray:
    """1-d finite float array of length ``n`` (a copy-free view when possible)."""
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise DataError(f"{where}: {name} must be numeric") from None
    if a.ndim != 1:
        a = a.reshape(-1) if a.ndim == 2 and 1 in a.shape else a
    if a.ndim != 1:
        raise DataError(f"{where}: {name} must be one-dimensional, got shape {a.shape}")
    if n is not None and a.shape[0] != n:
        raise DataError(f"{where}: {name} has {a.shape[0]} values, expected {n}")
    bad = ~np.isfinite(a)
    if bad.any():
        raise DataError(f"{where}: {name} has missing or infinite values (rows {_first_rows(bad)})")
    return a


def as_event(x: Any, n: int, *, where: str) -> np.ndarray:
    e = as_float(x, "event", n, where=where)
    bad = (e != 0) & (e != 1)
    if bad.any():
        raise DataError(f"{where}: event must be 0/1 (rows {_first_rows(bad)})")
    return e.astype(bool)


def as_codes(x: Any, n: int, name: str, *, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes 0..k-1 and the sorted unique labels of a grouping variable."""
    a = np.asarray(x)
    if a.ndim != 1 or a.shape[0] != n:
        raise DataError(f"{where}: {name} must have {n} values, got shape {a.shape}")
    if a.dtype.kind == "f" and np.isnan(a).any():
        raise DataError(f"{where}: {name} has missing values (rows {_first_rows(np.isnan(a))})")
    if a.dtype.kind == "O":
        miss = np.array([v is None or (isinstance(v, float) and v != v) for v in a])
        if miss.any():
            raise DataError(f"{where}: {name} has missing values (rows {_first_rows(miss)})")
    labels, codes = np.unique(a, return_inverse=True)
    return codes.astype(np.intp), labels


def check_times(time: np.ndarray, entry: np.ndarray | None, *, where: str) -> None:
    if entry is None:
        bad = time < 0
        if bad.any():
            raise DataError(f"{where}: time must be >= 0 (rows {_first_rows(bad)})")
    else:
        bad = entry >= time
        if bad.any():
            raise DataError(f"{where}: entry must be < time (rows {_first_rows(bad)})")


def check_weights(w: np.ndarray, *, where: str) -> None:
    bad = w < 0
    if bad.any():
        raise DataError(f"{where}: weights must be >= 0 (rows {_first_rows(bad)})")
    if not (w > 0).any():
        raise DataError(f"{where}: all weights are zero")


def check_choice(value: Any, name: str, choices: tuple[str, ...], *, where: str) -> str:
    if value not in choices:
        raise SpecError(f"{where}: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


#: R ``survival``'s default ``timefix`` tolerance, ``sqrt(.Machine$double.eps)``
TIMEFIX_TOLERANCE = float(np.sqrt(np.finfo(float).eps))


def timefix(time: np.ndarray, entry: np.ndarray | None = None, *, where: str,
            tolerance: float = TIMEFIX_TOLERANCE) -> tuple[np.ndarray, np.ndarray | None]:
    """Merge times that differ only by floating-point noise (R ``aeqSurv``).

    The distinct finite values of ``time`` and ``entry`` are sorted; a value
    whose gap to the previous one is ``<= tolerance`` in absolute terms or
    relative to the mean absolute distinct time is replaced by the first value
    of its run, as R ``survival::aeqSurv`` does before ``coxph`` and
    ``survfit`` (``coxph.control(timefix = TRUE)``). So ``0.1 + 0.2`` and
    ``0.3`` are one tied time, as in R. Returns new arrays when something was
    merged, the inputs otherwise.

    When merging would give an (entry, time] interval of length zero, R
    stops ("aeqSurv exception"); here nothing is merged and the times are
    returned as given. Such intervals come from splitting at a cut point that
    floating-point arithmetic put a hair below a time (a clone split at
    38.99999999999999 before an event at 39): left unmerged they carry
    their exact risk-set meaning, merged they would count a patient twice.

    References
    ----------
    Therneau TM. Roundoff error and tied times. Vignette of the R package
    survival (``vignette("tiedtimes")``).
    """
    vals = time if entry is None else np.concatenate([time, entry])
    y = np.unique(vals[np.isfinite(vals)])
    if y.size < 2:
        return time, entry
    dy = np.diff(y)
    tied = (dy <= tolerance) | (dy / np.mean(np.abs(y)) <= tolerance)
    if not tied.any():
        return time, entry
    cuts = y[np.concatenate([[True], ~tied])]

    def snap(x: np.ndarray) -> np.ndarray:
        k = np.searchsorted(cuts, x, side="right") - 1
        return cuts[np.maximum(k, 0)]

    t2 = snap(time)
    if entry is None:
        return t2, None
    e2 = snap(entry)
    if np.any((e2 >= t2) & (entry < time)):
        return time, entry
    return t2, e2


def stable_argsort(keys: np.ndarray) -> np.ndarray:
    """``np.argsort(keys, kind="stable")`` for non-negative integer keys, several times faster.

    Each key is made unique by appending the row number (``key * n + i``), so
    numpy's fast (SIMD) unstable sort orders equal keys by row number, which
    is what a stable sort does; the row numbers are the remainders. Falls back
    to the stable argsort when ``key * n + i`` could overflow int64 or a key
    is negative.
    """
    keys = np.asarray(keys)
    n = keys.shape[0]
    if n == 0 or keys.dtype.kind not in "iu":
        return np.argsort(keys, kind="stable")
    lo, hi = int(keys.min()), int(keys.max())
    if lo < 0 or (hi + 1) * n >= 2**63:
        return np.argsort(keys, kind="stable")
    comp = keys.astype(np.int64) * n
    comp += np.arange(n, dtype=np.int64)
    comp.sort()
    comp %= n
    return comp.astype(np.intp, copy=False)


def survival_arrays(time, event, entry, weights, n: int, *, where: str
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray, bool]:
    """Checked ``(time, event, entry, weights, integer_weights)`` of ``n`` rows for a Cox-type fit.

    One place for the checks that coxph, coxph_firth and cox_zph share: times
    (and entry times) finite and ordered, events 0/1, weights finite and >= 0
    (all ones when None); ``integer_weights`` decides R's default robust variance.
    """
    t = as_float(time, "time", n, where=where)
    ev = as_event(event, n, where=where)
    ent = None if entry is None else as_float(entry, "entry", n, where=where)
    check_times(t, ent, where=where)
    if weights is None:
        return t, ev, ent, np.ones(n), True
    w = as_float(weights, "weights", n, where=where)
    check_weights(w, where=where)
    return t, ev, ent, w, bool(np.all(w == np.floor(w)))


def as_matrix(X: Any, *, where: str) -> np.ndarray:
    """Covariates as a 2-d float array (a vector becomes one column; a DataFrame its values)."""
    if isinstance(X, pd.DataFrame | pd.Series):
        X = X.to_numpy(dtype=float)
    try:
        Xa = np.asarray(X, dtype=float)
    except (TypeError, ValueError):
        raise DataError(f"{where}: X must be numeric") from None
    if Xa.ndim == 1:
        Xa = Xa[:, None]
    if Xa.ndim != 2 or Xa.shape[1] < 1:
        raise DataError(f"{where}: X must be a 2-d array with at least one column, got shape {Xa.shape}")
    return Xa

"""Input validation shared by the survival core (one-line errors)."""
from __future__ import annotations

from typing import Any

import numpy as np

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

"""Normal and chi-square tails from :mod:`scipy.special`.

These are the functions ``scipy.stats.norm`` and ``scipy.stats.chi2`` call
(``ndtr``, ``ndtri``, ``chdtrc``, ``gammaincinv``), so the numbers are the
same; importing ``scipy.stats`` costs about 0.4 s of CPU at start-up, a tenth
of a one-million-person-period fit, and the fitting path needs nothing else
from it (benchmarks/bench_time_varying.py).
"""
from __future__ import annotations

import numpy as np
from scipy import special


def norm_sf(x):
    """P(Z > x), Z standard normal (``scipy.stats.norm.sf``)."""
    return special.ndtr(-np.asarray(x, dtype=float))


def norm_ppf(q):
    """The standard normal quantile (``scipy.stats.norm.ppf``)."""
    return special.ndtri(q)


def chi2_sf(x, df):
    """P(X > x), X chi-square with ``df`` degrees of freedom (``scipy.stats.chi2.sf``)."""
    return special.chdtrc(df, x)


def chi2_ppf(q, df):
    """The chi-square quantile (``scipy.stats.chi2.ppf``)."""
    return 2.0 * special.gammaincinv(np.asarray(df, dtype=float) / 2.0, q)


def norm_cdf(x):
    """P(Z <= x), Z standard normal (``scipy.stats.norm.cdf``)."""
    return special.ndtr(np.asarray(x, dtype=float))

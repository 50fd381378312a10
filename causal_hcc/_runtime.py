"""Process settings for the duration of one analysis run (:func:`run_scope`, around ``run_analysis``).

**One BLAS thread.** The models of a run are tall and narrow (millions of rows, a handful of columns: the
X'WX products of the logistic and Cox fits): a second OpenBLAS thread saves little and, on a shared or
loaded machine, spins waiting for its partner (the propensity model of the per-protocol benchmark, 300,000
patient-trials x 3 columns, took 0.13-0.22 s CPU with two threads and 0.07 s with one). The bootstrap
replicates already run with one thread (:func:`causal_hcc._replicate.single_threaded_blas`), so the point
estimate and a replicate now sum in the same order whichever backend runs them. Through threadpoolctl (a
dependency already).
"""
from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def run_scope(func: F) -> F:
    """Decorator: run ``func`` with BLAS (and OpenMP) limited to one thread (see the module docstring)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from causal_hcc._replicate import single_threaded_blas

        with single_threaded_blas():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]

"""Process settings for the duration of one analysis run (:func:`run_scope`, around ``run_analysis``).

**One BLAS thread.** The models of a run are tall and narrow (millions of rows, a handful of columns: the
X'WX products of the logistic and Cox fits): a second OpenBLAS thread saves little and, on a shared or
loaded machine, spins waiting for its partner (the propensity model of the per-protocol benchmark, 300,000
patient-trials x 3 columns, took 0.13-0.22 s CPU with two threads and 0.07 s with one). The bootstrap
replicates already run with one thread (:func:`causal_hcc._replicate.single_threaded_blas`), so the point
estimate and a replicate now sum in the same order whichever backend runs them. Through threadpoolctl (a
dependency already).

**Large temporary arrays reused by the C allocator** (glibc only; elsewhere nothing changes). A run on a million person-periods allocates and frees hundreds of arrays of 30-60 MB (the rows of all
sequential trials, their person-period records, the columns of the pooled logistic models). glibc's malloc
serves every block above its mmap threshold (128 KiB, raised dynamically after frees but never above
32 MiB) by a fresh ``mmap`` and unmaps it at ``free``: each such array is zero-filled and faulted in again
by the kernel, page by page. On the benchmark of docs/benchmarks.md row (i) (per-protocol sequential
trials, 1,000,000 person-periods) that system time was 1.5-3 s of a 4.5-6 s run. While
:func:`reuse_large_arrays` is active the thresholds are raised so that freed blocks stay in the heap and
the next array reuses them (about 0.5 s of system time saved on that benchmark); at the end the thresholds are set to the values glibc's own dynamic rule
reaches after a large free (32 MiB, 64 MiB) and ``malloc_trim(0)`` hands the free memory back to the
system, so the process does not keep the run's peak. Numbers are unaffected (only where arrays live).
No new dependency: ``mallopt``/``malloc_trim`` through ctypes; any failure leaves the allocator as it was.
"""
from __future__ import annotations

import functools
import platform
import threading
from typing import Any, Callable, TypeVar

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: while active: blocks up to 1 GiB come from the heap, which is trimmed only at the end
_RUN_MMAP, _RUN_TRIM = 1 << 30, 1 << 30
#: afterwards: the ceiling of glibc's dynamic thresholds (DEFAULT_MMAP_THRESHOLD_MAX and twice it)
_AFTER_MMAP, _AFTER_TRIM = 32 << 20, 64 << 20

_lock = threading.Lock()
_depth = 0
_libc: Any = None

F = TypeVar("F", bound=Callable[..., Any])


def _glibc() -> Any:
    global _libc
    if _libc is None:
        _libc = False
        try:
            if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
                import ctypes

                lib = ctypes.CDLL("libc.so.6")
                if hasattr(lib, "mallopt") and hasattr(lib, "malloc_trim"):
                    _libc = lib
        except (OSError, AttributeError, ValueError):
            _libc = False
    return _libc


def _enter() -> None:
    global _depth
    with _lock:
        _depth += 1
        lib = _glibc() if _depth == 1 else None
    if lib:
        lib.mallopt(_M_MMAP_THRESHOLD, _RUN_MMAP)
        lib.mallopt(_M_TRIM_THRESHOLD, _RUN_TRIM)


def _exit() -> None:
    global _depth
    with _lock:
        _depth -= 1
        lib = _glibc() if _depth == 0 else None
    if lib:
        lib.mallopt(_M_MMAP_THRESHOLD, _AFTER_MMAP)
        lib.mallopt(_M_TRIM_THRESHOLD, _AFTER_TRIM)
        lib.malloc_trim(0)


def run_scope(func: F) -> F:
    """Decorator: run ``func`` with one BLAS thread and large freed arrays kept for reuse (module docstring)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from causal_hcc._replicate import single_threaded_blas

        _enter()
        try:
            with single_threaded_blas():
                return func(*args, **kwargs)
        finally:
            _exit()

    return wrapper  # type: ignore[return-value]

"""Processes: signals end a run cleanly, workers never outlive their parent.

* :func:`handle_signals` (used by the CLI around each command): SIGINT and
  SIGTERM first terminate every worker process of this run (joblib/loky,
  Dask LocalCluster). While no output is reserved (no lock file, no
  temporary: start-up, reading, checking) the process then exits at once
  with 130 (SIGINT) or 143 (SIGTERM) and one line; otherwise
  :class:`Interrupted` is raised in the main thread so every ``finally`` runs
  (temporary output removed, lock released) and the CLI exits with the same
  code. A watchdog ends the process with the same code if unwinding takes
  longer than :data:`GRACE_S` seconds. Before and after the command the CLI's
  own early handlers (``causal_hcc.cli``) exit the same way.
* :func:`watch_parent` (run in each worker as it imports causal_hcc, through
  :data:`PARENT_ENV` set by :func:`worker_guard`; Dask LocalCluster workers
  also get it by ``client.run``): the worker dies when the run's main process dies, even by
  ``kill -9`` — ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` on Linux, plus a thread
  that polls the parent pid everywhere.
* :func:`cap_jobs`: ``--n-jobs`` never exceeds the number of work items or
  the CPU count.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import Callable, Iterator

#: seconds a signalled run may take to unwind before it is ended outright
GRACE_S = 8.0


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived; ``code`` is the exit status (128 + signal number)."""

    def __init__(self, signum: int):
        self.signum = signum
        self.code = 128 + signum
        super().__init__(signal.Signals(signum).name)


def _is_tracker(proc: object) -> bool:
    """multiprocessing/loky resource trackers: left alone, they clean shared memory when we exit."""
    try:
        return "resource_tracker" in " ".join(proc.cmdline())  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - a process that vanished is not a tracker to spare
        return False


def kill_children(timeout: float = 2.0) -> int:
    """Terminate (then kill) every worker process below this one; return how many there were.

    Resource trackers are spared: they exit by themselves when this process
    ends and remove the shared-memory files the workers left.
    """
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with dask
        return 0
    try:
        kids = [k for k in psutil.Process().children(recursive=True) if not _is_tracker(k)]
    except psutil.Error:
        return 0
    for k in kids:
        with contextlib.suppress(psutil.Error):
            k.terminate()
    _, alive = psutil.wait_procs(kids, timeout=timeout)
    for k in alive:
        with contextlib.suppress(psutil.Error):
            k.kill()
    psutil.wait_procs(alive, timeout=timeout)
    return len(kids)


def _watchdog(code: int, grace: float) -> None:
    def expire() -> None:
        with contextlib.suppress(Exception):  # the finally blocks will not run: remove our temporaries and locks
            from causal_hcc._atomic import emergency_cleanup

            emergency_cleanup()
        with contextlib.suppress(Exception):
            sys.stderr.write(f"{'interrupted' if code == 130 else 'terminated'} (cleanup took over {grace:g}s)\n")
            sys.stderr.flush()
        os._exit(code)

    t = threading.Timer(grace, expire)
    t.daemon = True
    t.start()


def _holds_output() -> bool:
    """Whether this process holds an output lock or a temporary (then the signal must unwind to remove them)."""
    mod = sys.modules.get("causal_hcc._atomic")
    return mod is not None and bool(getattr(mod, "_HELD", None) or getattr(mod, "_ACTIVE_TEMPS", None))


def _leave_now(signum: int) -> None:
    """Stop the workers and exit 128 + signum with one line, without unwinding."""
    with contextlib.suppress(Exception):
        kill_children(timeout=1.0)
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    try:
        os.write(2, b"interrupted\n" if signum == signal.SIGINT else b"terminated\n")
    finally:
        os._exit(128 + signum)


@contextlib.contextmanager
def handle_signals(grace: float = GRACE_S) -> Iterator[None]:
    """Turn SIGINT/SIGTERM into :class:`Interrupted` after stopping the workers.

    A no-op outside the main thread (signal handlers can only be set there).
    Previous handlers are restored on exit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = {"n": 0}

    def handler(signum: int, frame: object) -> None:
        fired["n"] += 1
        if fired["n"] > 1:  # a second signal while unwinding: leave now
            os._exit(128 + signum)
        if not _holds_output():  # nothing to clean up (start-up, reading, fitting before any output is
            _leave_now(signum)   # reserved): leave at once, not through an unwind that an import may swallow
        _watchdog(128 + signum, grace)
        import logging

        logging.disable(logging.CRITICAL)  # Dask's "lost worker" complaints while we tear it down
        kill_children(timeout=1.0)
        raise Interrupted(signum)

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in old:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# --------------------------------------------------------------------------- workers
_WATCHING = {"parent": None}
_PR_SET_PDEATHSIG = 1


def watch_parent(parent_pid: int, poll_s: float = 0.5) -> None:
    """In a worker process: exit as soon as ``parent_pid`` is no longer our parent.

    Idempotent. On Linux the kernel delivers SIGKILL when the parent dies
    (``PR_SET_PDEATHSIG``); a daemon thread polling ``os.getppid()`` covers
    other systems and the window before the first call.
    """
    if _WATCHING["parent"] == parent_pid:
        return
    if os.getppid() != parent_pid:
        os._exit(1)
    _WATCHING["parent"] = parent_pid
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
            if os.getppid() != parent_pid:  # died between the check and prctl
                os._exit(1)

    def poll() -> None:
        import time

        while True:
            time.sleep(poll_s)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=poll, name="causal_hcc-parent-watch", daemon=True).start()


#: set by the CLI to its pid; a child process that imports causal_hcc with this as its parent watches it
PARENT_ENV = "CAUSAL_HCC_PARENT_PID"


def watch_parent_from_env() -> None:
    """Called when causal_hcc is imported: a worker of a CLI run starts watching the run's process.

    Only a *direct* child of the process named in :data:`PARENT_ENV` does so
    (loky workers, Dask LocalCluster workers unpickling our task functions);
    a process that still carries the variable after that process died (a
    worker that was starting up when the run was killed) exits. Anything
    else, remote Dask workers included, is left alone.
    """
    value = os.environ.get(PARENT_ENV, "")
    if not value.isdigit() or int(value) == os.getpid():
        return
    pid = int(value)
    if pid == os.getppid():
        watch_parent(pid)
    elif not _alive(pid):  # the run died while this worker was still starting up
        os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


@contextlib.contextmanager
def worker_guard() -> Iterator[None]:
    """Every worker process started inside the block dies when this process dies.

    joblib: the default backend becomes a loky backend whose workers run
    :func:`watch_parent` as their initializer (as the *default*, so code
    that asks for ``prefer="threads"`` or names a backend still gets it).
    Dask LocalCluster and any other child importing causal_hcc: through
    :data:`PARENT_ENV` (see :func:`watch_parent_from_env`).
    """
    old_env = os.environ.get(PARENT_ENV)
    os.environ[PARENT_ENV] = str(os.getpid())
    restore = None
    try:
        import joblib.parallel as jp
        from joblib import register_parallel_backend
        from joblib._parallel_backends import LokyBackend

        parent = os.getpid()

        class _WatchedLoky(LokyBackend):
            def __init__(self, *args, **kwargs):
                kwargs.setdefault("initializer", watch_parent)
                kwargs.setdefault("initargs", (parent,))
                super().__init__(*args, **kwargs)

        old_default = jp.DEFAULT_BACKEND
        register_parallel_backend("causal_hcc-loky", _WatchedLoky, make_default=True)
        restore = (jp, old_default)
    except Exception:  # noqa: BLE001 - joblib internals moved: workers still watch through the environment
        restore = None
    try:
        yield
    finally:
        if restore is not None:
            jp, old_default = restore
            jp.DEFAULT_BACKEND = old_default
            jp.BACKENDS.pop("causal_hcc-loky", None)
        if old_env is None:
            os.environ.pop(PARENT_ENV, None)
        else:
            os.environ[PARENT_ENV] = old_env


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def cap_jobs(n_jobs: int | None, n_items: int, note: Callable[[str], None] | None = None) -> int | None:
    """``n_jobs`` capped at ``n_items`` and the CPU count; ``note`` says so when it caps.

    ``None`` and negative values (joblib's "all cores but ...") resolve
    against the CPU count first. Zero is left for the callee to reject.
    """
    if n_jobs is None or isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0:
        return n_jobs
    cpus = cpu_count()
    want = cpus + 1 + n_jobs if n_jobs < 0 else n_jobs
    want = max(1, want)
    cap = max(1, min(want, cpus, max(1, int(n_items))))
    if cap < want and note is not None:
        why = []
        if want > cpus:
            why.append(f"{cpus} CPU{'s' if cpus != 1 else ''}")
        if want > n_items:
            why.append(f"{n_items} work item{'s' if n_items != 1 else ''}")
        note(f"note: --n-jobs {n_jobs} capped at {cap} ({' and '.join(why)})")
    return cap

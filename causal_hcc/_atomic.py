"""Output safety: every file or folder causal_hcc writes goes through here.

The rules, enforced in this module only:

1. **Inputs are never touched.** A target that *is* an input (data file, spec,
   published tables), that *contains* one, or that lies *inside* one is
   refused, with or without ``--force`` (paths compared after resolving
   symbolic links, and by inode where the path exists).
2. **No overwrite.** An existing target is refused unless ``force``; and
   ``force`` replaces only a *folder that causal_hcc wrote*: it carries the
   marker file :data:`MARKER` (a JSON stamp), is not a symbolic link and holds
   nothing but the files listed in its marker (a folder from before markers
   is accepted when it holds only the files a run writes). An arbitrary
   folder or any file is never replaced.
3. **Atomic.** Everything is written into a temporary sibling
   ``.<name>.causal_hcc-tmp-<pid>-<hex>`` (a folder stamped with the marker
   from its first moment) and renamed into place at the end — without
   replacing (``renameat2(RENAME_NOREPLACE)`` or ``link``), or, with
   ``force``, swapped in (``RENAME_EXCHANGE``). On any error or signal the
   temporary is removed; a temporary left by a killed run (its pid dead, our
   name pattern, our marker) is removed by the next run writing beside it.
4. **One writer.** A lock file ``.<name>.causal_hcc-lock`` beside the target
   (``flock``) is held from the pre-flight check to the final rename; a second
   run aimed at the same target exits 2 at once, naming the pid holding it.
5. **Stop early.** :func:`reserve` checks everything knowable before fitting:
   not an input, parent not a file, parent writable, name length, free disk.

Every OS error on the target becomes :class:`~causal_hcc.errors.OutputError`
(one line naming the path and what to do), which the CLI turns into exit 2.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import datetime as _dt
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import sys
import time
from typing import Iterable, Iterator, Literal

from causal_hcc.errors import OutputError, short

try:  # POSIX advisory locks; elsewhere runs are not serialised
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: the stamp file in every folder causal_hcc writes
MARKER = ".causal_hcc-output"
#: refuse to start with less free space than this where the output goes
MIN_FREE_BYTES = 32 * 2**20
_TOOL = "causal_hcc"
_TMP_RE = re.compile(r"^\.(?P<stem>.+)\.causal_hcc-(?P<kind>tmp|old)-(?P<pid>\d+)-(?P<rand>[0-9a-f]{8})$")
_LOCK_RE = re.compile(r"^\.(?P<stem>.+)\.causal_hcc-lock$")
#: temporaries of causal_hcc versions before markers and pids (``tempfile.mkdtemp`` names)
_LEGACY_TMP_RE = re.compile(r"^\.(?P<stem>.+)\.(?P<kind>tmp|old)-[A-Za-z0-9_]{8}$")
#: a legacy temporary younger than this may belong to a run still writing (they held no lock)
LEGACY_TMP_AGE_S = 3600.0
Kind = Literal["folder", "file"]


# --------------------------------------------------------------------------- names
def _stem(name: str) -> str:
    """The target's name as used in temp/lock names: short enough to leave room."""
    if len(name.encode("utf-8", "surrogateescape")) <= 64:
        return name
    digest = hashlib.sha1(name.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return name[:24] + "~" + digest


def _temp_name(name: str, kind: str = "tmp") -> str:
    return f".{_stem(name)}.causal_hcc-{kind}-{os.getpid()}-{secrets.token_hex(4)}"


def _lock_name(name: str) -> str:
    return f".{_stem(name)}.causal_hcc-lock"


def _q(path: str) -> str:
    """A path as quoted in a message (long ones shortened)."""
    return short(path, 160)


# --------------------------------------------------------------------------- OS errors
_SPACE = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG)


def os_error(err: OSError, path: str, what: str = "output") -> OutputError:
    """One line for an OS error met while writing ``path``, with what to do."""
    code = err.errno
    if code in _SPACE:
        return OutputError(f"{what} '{_q(path)}': no space left on the disk (nothing was written); "
                           "free some space or choose another --output")
    if code in (errno.EACCES, errno.EPERM):
        return OutputError(f"{what} '{_q(path)}': permission denied (nothing was written); "
                           "choose a folder you can write to")
    if code == errno.EROFS:
        return OutputError(f"{what} '{_q(path)}': the file system is read-only; choose another --output")
    if code == errno.ENAMETOOLONG:
        return OutputError(f"{what} '{_q(path)}': file name too long; choose a shorter name")
    if code == errno.ENOTDIR:
        return OutputError(f"{what} '{_q(path)}': a parent of it is a file, not a folder")
    if code == errno.ENOENT:
        return OutputError(f"{what} '{_q(path)}': its folder does not exist")
    msg = err.strerror or type(err).__name__
    return OutputError(f"{what} '{_q(path)}': {msg} (nothing was written)")


# --------------------------------------------------------------------------- inputs
def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _inside(child: str, parent: str) -> bool:
    return child == parent or child.startswith(parent.rstrip(os.sep) + os.sep)


def check_not_input(target: str, inputs: Iterable[str | os.PathLike[str] | None], what: str = "output") -> None:
    """Refuse a target that is, contains, or lies inside an input path."""
    real = os.path.realpath(target)
    for inp in inputs:
        if inp is None or str(inp) in ("", "twin"):
            continue
        ireal = os.path.realpath(os.fspath(inp))
        if real == ireal or _same_file(real, ireal):
            raise OutputError(f"{what} '{_q(target)}' is the input '{_q(os.fspath(inp))}'; "
                              "causal-hcc never writes over an input: choose another --output")
        if _inside(ireal, real):
            raise OutputError(f"{what} '{_q(target)}' contains the input '{_q(os.fspath(inp))}'; "
                              "causal-hcc never replaces a folder holding an input: choose another --output")
        if _inside(real, ireal):
            raise OutputError(f"{what} '{_q(target)}' lies inside the input '{_q(os.fspath(inp))}'; "
                              "choose another --output")


# --------------------------------------------------------------------------- marker
def read_marker(folder: str) -> dict | None:
    """The JSON stamp of a folder causal_hcc wrote, or None."""
    p = os.path.join(folder, MARKER)
    try:
        if os.path.islink(p) or not os.path.isfile(p) or os.path.getsize(p) > 1_000_000:
            return None
        with open(p, encoding="utf-8") as fh:
            d = json.load(fh)
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) and d.get("tool") == _TOOL else None


def _write_marker(folder: str, command: str, files: list[str] | None = None) -> None:
    from causal_hcc import __version__

    stamp = {"tool": _TOOL, "version": __version__, "command": command, "pid": os.getpid(),
             "host": socket.gethostname(),
             "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    if files is not None:
        stamp["files"] = files
    tmp = os.path.join(folder, MARKER + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(stamp, fh, indent=1)
    os.replace(tmp, os.path.join(folder, MARKER))


def _listing(folder: str) -> list[str]:
    out = []
    for root, dirs, files in os.walk(folder):
        rel = os.path.relpath(root, folder)
        for n in dirs + files:
            r = n if rel == "." else os.path.join(rel, n)
            if r != MARKER:
                out.append(r.replace(os.sep, "/"))
    return sorted(out)


#: what runs wrote before folders carried the marker (accepted by --force when nothing else is there)
_LEGACY_FILES = {"estimates.csv", "results.json", "curves.parquet", "truth.json", "audit.csv", "report.html",
                 "report.md", "report.pdf",
                 "figures", "simulation.csv", "simulation_replicates.csv", "simulation.md", "simulation.png",
                 "simulation.json", "audit.md", "audit.html"}
_LEGACY_KEYS = ("results.json", "simulation.json", "audit.md")


def _legacy_output(folder: str) -> bool:
    """A folder written by causal_hcc before markers existed: only its file names, figures/*.png."""
    names = _listing(folder)
    if not names or not any(k in names for k in _LEGACY_KEYS):
        return False
    for n in names:
        top, _, rest = n.partition("/")
        if top not in _LEGACY_FILES or (rest and (top != "figures" or "/" in rest or not rest.endswith(".png"))):
            return False
        if top == "figures" and not rest and not os.path.isdir(os.path.join(folder, "figures")):
            return False
    return True


def _check_replaceable(folder: str, what: str) -> None:
    """``force``: only a real folder with our marker and nothing but our files."""
    if os.path.islink(folder):
        raise OutputError(f"{what} '{_q(folder)}' is a symbolic link; --force replaces only a folder "
                          "causal-hcc wrote: remove the link or choose another --output")
    if not os.path.isdir(folder):
        raise OutputError(f"{what} '{_q(folder)}' is a file; causal-hcc never replaces a file: "
                          "choose another --output")
    stamp = read_marker(folder)
    if stamp is None and _legacy_output(folder):
        return
    if stamp is None:
        raise OutputError(f"{what} '{_q(folder)}' was not written by causal-hcc (no {MARKER} marker); "
                          "--force replaces only causal-hcc output folders: remove it yourself or choose another "
                          "--output")
    known = stamp.get("files")
    if isinstance(known, list):
        extra = [f for f in _listing(folder) if f not in set(known)]
        if extra:
            raise OutputError(f"{what} '{_q(folder)}' holds '{_q(extra[0])}' that causal-hcc did not write; "
                              "--force replaces only an unchanged causal-hcc output folder: move it first")


# --------------------------------------------------------------------------- pre-flight
def _nearest_existing(path: str) -> str:
    p = os.path.abspath(path)
    while not os.path.lexists(p):
        up = os.path.dirname(p)
        if up == p:
            break
        p = up
    return p


def _name_max(folder: str) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def _require_free_space(directory: str, target: str, what: str, advice: str) -> None:
    """Refuse to start writing ``target`` when the disk of ``directory`` has less than MIN_FREE_BYTES."""
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return
    if free < MIN_FREE_BYTES:
        raise OutputError(f"{what} '{_q(target)}': only {_fmt_bytes(free)} free on its disk, causal-hcc needs "
                          f"at least {_fmt_bytes(MIN_FREE_BYTES)}; {advice}")


def _fmt_bytes(n: float) -> str:
    return f"{n / 2**20:.1f} MB" if n < 2**30 else f"{n / 2**30:.1f} GB"


def preflight(target: str, *, kind: Kind = "folder", force: bool = False,
              inputs: Iterable[str | os.PathLike[str] | None] = (), create_parents: bool = True,
              what: str | None = None) -> None:
    """Everything knowable before fitting: raise :class:`OutputError` if ``target`` cannot be written.

    Checks, in order: not an input (is/contains/inside); every name within
    the file system's limit; the nearest existing ancestor is a folder (not a
    file), writable, with at least :data:`MIN_FREE_BYTES` free; ``target``
    absent, or (``force``, folders only) a causal_hcc output folder.
    """
    what = what or f"output {kind}"
    target = os.fspath(target)
    if not target or not target.strip():
        raise OutputError(f"{what}: empty path")
    if "\x00" in target:
        raise OutputError(f"{what} '{_q(target.replace(chr(0), '?'))}': the path holds a NUL character")
    check_not_input(target, inputs, what)
    absolute = os.path.abspath(target)
    anc = _nearest_existing(absolute)
    if anc != absolute and not os.path.isdir(anc):
        raise OutputError(f"{what} '{_q(target)}': '{_q(anc)}' is a file, not a folder")
    limit = _name_max(anc if os.path.isdir(anc) else os.path.dirname(anc))
    parts = [os.path.basename(absolute)] if anc == absolute else os.path.relpath(absolute, anc).split(os.sep)
    for part in parts:
        n = len(part.encode("utf-8", "surrogateescape"))
        if n > limit:
            raise OutputError(f"{what} '{_q(target)}': the name '{_q(part)}' is {n} bytes long; this file "
                              f"system allows {limit}: choose a shorter --output (or study name)")
    if len(absolute.encode("utf-8", "surrogateescape")) > 4000:
        raise OutputError(f"{what} '{_q(target)}': the path is too long; choose a shorter --output")
    parent = os.path.dirname(absolute)
    if not os.path.isdir(parent) and not create_parents:
        raise OutputError(f"{what} '{_q(target)}': the folder '{_q(parent)}' does not exist; create it first")
    writable_dir = anc if anc != absolute else parent
    if not os.access(writable_dir, os.W_OK | os.X_OK):
        raise OutputError(f"{what} '{_q(target)}': cannot write in '{_q(writable_dir)}' (permission denied); "
                          "choose a folder you can write to")
    _require_free_space(writable_dir, target, what, "free some space or choose another --output")
    if os.path.lexists(absolute):
        if kind == "file":
            raise OutputError(f"{what} '{_q(target)}' already exists; causal-hcc never replaces a file: "
                              "remove it or choose another name")
        if not os.path.isdir(absolute):
            raise OutputError(f"{what} '{_q(target)}' is an existing file; causal-hcc never replaces a file: "
                              "choose another --output")
        if not force:
            raise OutputError(f"output folder '{_q(target)}' already exists; use --force to replace it")
        _check_replaceable(absolute, what)


def check_output_dir(folder: str, force: bool, inputs: Iterable[str | os.PathLike[str] | None] = ()) -> None:
    """Refuse an output folder that exists (without ``force``) or that ``force`` may not replace."""
    preflight(folder, kind="folder", force=force, inputs=inputs)


# --------------------------------------------------------------------------- stale temporaries
def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    return True


def clean_stale(folder: str) -> list[str]:
    """Remove our temporaries left in ``folder`` by killed runs; return what was removed.

    Only entries named ``.<name>.causal_hcc-(tmp|old)-<pid>-<hex>`` whose pid
    is dead on this host; folders must also carry our marker (or be empty),
    and lock files are removed only while locked by us. Temporaries of
    versions before markers (``.<name>.tmp-XXXXXXXX``) are removed when older
    than :data:`LEGACY_TMP_AGE_S` and empty or holding only run outputs.
    """
    removed: list[str] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    host = socket.gethostname()
    for n in names:
        m = _TMP_RE.match(n)
        if not m or int(m["pid"]) == os.getpid() or _pid_alive(int(m["pid"])):
            continue
        p = os.path.join(folder, n)
        try:
            if os.path.islink(p):
                continue
            if os.path.isdir(p):
                stamp = read_marker(p)
                if stamp is None and os.listdir(p):
                    continue
                if stamp is not None and stamp.get("host", host) != host:
                    continue
                shutil.rmtree(p)
            else:
                os.unlink(p)
            removed.append(p)
        except OSError:
            continue
    for n in names:  # before markers: no pid to ask, so only old ones holding nothing but run outputs
        p = os.path.join(folder, n)
        try:
            if (_LEGACY_TMP_RE.match(n) and os.path.isdir(p) and not os.path.islink(p)
                    and time.time() - os.stat(p).st_mtime > LEGACY_TMP_AGE_S
                    and (not os.listdir(p) or _legacy_output(p))):
                shutil.rmtree(p)
                removed.append(p)
        except OSError:
            continue
    for n in names:
        if _LOCK_RE.match(n):
            _remove_stale_lock(os.path.join(folder, n))
    return removed


# --------------------------------------------------------------------------- locks
class _Lock:
    def __init__(self, path: str, fd: int):
        self.path, self.fd, self.count = path, fd, 1


_HELD: dict[str, _Lock] = {}
#: temporary folders/files being written by this process (removed by :func:`emergency_cleanup`)
_ACTIVE_TEMPS: set[str] = set()


def emergency_cleanup() -> None:
    """Remove this process's temporaries and lock files now.

    For the signal watchdog, which ends the process with ``os._exit`` when a
    regular unwind takes too long (e.g. a Dask cluster that is slow to stop):
    the ``finally`` blocks will not run, so what they would remove is removed
    here. Never touches anything but our own temporaries and locks.
    """
    for tmp in list(_ACTIVE_TEMPS):
        if os.path.isdir(tmp) and not os.path.islink(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    for lk in list(_HELD.values()):
        with contextlib.suppress(OSError):
            os.unlink(lk.path)


def _remove_stale_lock(path: str) -> None:
    if fcntl is None or os.path.realpath(path) in {os.path.realpath(lk.path) for lk in _HELD.values()}:
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        st = os.fstat(fd)
        cur = os.stat(path, follow_symlinks=False)
        if (st.st_dev, st.st_ino) == (cur.st_dev, cur.st_ino):
            os.unlink(path)
    except OSError:
        pass
    finally:
        os.close(fd)


def _acquire(target: str, what: str) -> _Lock | None:
    key = os.path.abspath(target)
    if key in _HELD:
        _HELD[key].count += 1
        return _HELD[key]
    if fcntl is None:  # pragma: no cover
        return None
    path = os.path.join(os.path.dirname(key), _lock_name(os.path.basename(key)))
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as err:
            raise os_error(err, target, what) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
            except OSError:
                holder = "?"
            os.close(fd)
            raise OutputError(f"{what} '{_q(target)}' is being written by another causal-hcc run (pid {holder}); "
                              "wait for it to finish or choose another --output") from None
        except OSError as err:
            os.close(fd)
            raise os_error(err, target, what) from None
        try:  # the file may have been unlinked by its previous holder between open and flock
            st, cur = os.fstat(fd), os.stat(path, follow_symlinks=False)
            same = (st.st_dev, st.st_ino) == (cur.st_dev, cur.st_ino)
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        lk = _Lock(path, fd)
        _HELD[key] = lk
        return lk


def _release(target: str) -> None:
    key = os.path.abspath(target)
    lk = _HELD.get(key)
    if lk is None:
        return
    lk.count -= 1
    if lk.count > 0:
        return
    del _HELD[key]
    with contextlib.suppress(OSError):
        os.unlink(lk.path)
    os.close(lk.fd)


@contextlib.contextmanager
def reserve(target: str, *, kind: Kind = "folder", force: bool = False,
            inputs: Iterable[str | os.PathLike[str] | None] = (), create_parents: bool = True,
            what: str | None = None) -> Iterator[str]:
    """Check ``target`` (:func:`preflight`) and hold its lock for the ``with`` block.

    Call it before fitting so a run that cannot write stops at once. Nested
    reservations of the same target in one process share the lock. Parent
    folders created for the lock are removed again if the block fails and
    they are still empty.
    """
    what = what or f"output {kind}"
    inputs = list(inputs)
    target = os.fspath(target)
    preflight(target, kind=kind, force=force, inputs=inputs, create_parents=create_parents, what=what)
    absolute = os.path.abspath(target)
    created: list[str] = []
    if os.path.abspath(absolute) not in _HELD:
        p = os.path.dirname(absolute)
        while not os.path.isdir(p):
            created.append(p)
            p = os.path.dirname(p)
        try:
            for d in reversed(created):
                os.mkdir(d)
        except OSError as err:
            _rmdirs(created)
            raise os_error(err, target, what) from None
    ok = False
    try:
        _acquire(absolute, what)
        try:
            clean_stale(os.path.dirname(absolute))
            # the lock is ours now: check again (another run may have finished meanwhile)
            preflight(target, kind=kind, force=force, inputs=inputs, create_parents=create_parents, what=what)
            yield absolute
            ok = True
        finally:
            _release(absolute)
    finally:
        if not ok:
            _rmdirs(created)


def _rmdirs(created: list[str]) -> None:
    for d in created:  # deepest first
        with contextlib.suppress(OSError):
            os.rmdir(d)


# --------------------------------------------------------------------------- renames
_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2
_AT_FDCWD = -100
_renameat2 = None
if sys.platform.startswith("linux"):
    try:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        _renameat2 = getattr(_libc, "renameat2", None)
        if _renameat2 is not None:
            _renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            _renameat2.restype = ctypes.c_int
    except OSError:  # pragma: no cover
        _renameat2 = None


def _rename2(src: str, dst: str, flag: int) -> bool:
    """renameat2 with ``flag``; False where the system lacks it (caller falls back)."""
    if _renameat2 is None:
        return False
    rc = _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flag)
    if rc == 0:
        return True
    e = ctypes.get_errno()
    if e in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP if hasattr(errno, "ENOTSUP") else errno.EINVAL):
        return False
    raise OSError(e, os.strerror(e), dst)


def _move_noreplace(src: str, dst: str) -> None:
    """Rename ``src`` to ``dst``; fail with EEXIST if ``dst`` appeared meanwhile."""
    if _rename2(src, dst, _RENAME_NOREPLACE):
        return
    if os.path.isdir(src):
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "File exists", dst)
        os.rename(src, dst)
    else:
        try:
            os.link(src, dst)
        except FileExistsError:
            raise
        except OSError:  # no hard links here (FAT, some network file systems): check, then rename
            if os.path.lexists(dst):
                raise FileExistsError(errno.EEXIST, "File exists", dst) from None
            os.rename(src, dst)
            return
        os.unlink(src)


def _swap_in(src: str, dst: str) -> str | None:
    """Put folder ``src`` at ``dst``; return where the previous ``dst`` now is (to delete)."""
    if not os.path.lexists(dst):
        _move_noreplace(src, dst)
        return None
    if _rename2(src, dst, _RENAME_EXCHANGE):
        return src
    old = os.path.join(os.path.dirname(dst), _temp_name(os.path.basename(dst), "old"))
    os.rename(dst, old)
    try:
        os.rename(src, dst)
    except OSError:
        os.rename(old, dst)
        raise
    return old


# --------------------------------------------------------------------------- writers
@contextlib.contextmanager
def _os_errors(path: str, what: str) -> Iterator[None]:
    """Turn an OSError raised by the caller's writing into one OutputError line naming ``path``."""
    try:
        yield
    except OutputError:
        raise
    except OSError as err:
        raise os_error(err, path, what) from None


@contextlib.contextmanager
def atomic_folder(folder: str, *, force: bool = False, inputs: Iterable[str | os.PathLike[str] | None] = (),
                  command: str = "run") -> Iterator[str]:
    """Yield a temporary folder beside ``folder``; put it in place on success.

    The temporary folder carries :data:`MARKER` from the start. On any
    exception (including KeyboardInterrupt/SystemExit) it is removed and
    ``folder`` is left as it was. An existing ``folder`` is replaced only
    with ``force`` and only if causal_hcc wrote it (see module docstring).
    OS errors become :class:`OutputError`.
    """
    what = "output folder"
    folder = os.fspath(folder)
    with reserve(folder, kind="folder", force=force, inputs=inputs, what=what) as absolute:
        parent = os.path.dirname(absolute)
        try:
            tmp = os.path.join(parent, _temp_name(os.path.basename(absolute)))
            os.mkdir(tmp)
            _ACTIVE_TEMPS.add(tmp)
        except OSError as err:
            raise os_error(err, folder, what) from None
        try:
            try:
                _write_marker(tmp, command)
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(tmp, 0o777 & ~umask)
            except OSError as err:
                raise os_error(err, folder, what) from None
            with _os_errors(folder, what):
                yield tmp
            try:
                _write_marker(tmp, command, files=_listing(tmp))
                if os.path.lexists(absolute):
                    if not force:
                        raise OutputError(f"output folder '{_q(folder)}' already exists; use --force to replace it")
                    _check_replaceable(absolute, what)
                    old = _swap_in(tmp, absolute)
                else:
                    old = None
                    _move_noreplace(tmp, absolute)
            except FileExistsError:
                raise OutputError(f"output folder '{_q(folder)}' already exists; use --force to replace it") from None
            except OutputError:
                raise
            except OSError as err:
                raise os_error(err, folder, what) from None
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if os.path.lexists(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
            _ACTIVE_TEMPS.discard(tmp)


@contextlib.contextmanager
def atomic_file(path: str, *, inputs: Iterable[str | os.PathLike[str] | None] = (),
                what: str = "output file") -> Iterator[str]:
    """Yield a temporary path beside ``path``; link it into place on success.

    ``path`` must not exist (a file is never replaced) and its folder must
    exist. On any exception the temporary file is removed.
    """
    path = os.fspath(path)
    with reserve(path, kind="file", inputs=inputs, create_parents=False, what=what) as absolute:
        tmp = os.path.join(os.path.dirname(absolute), _temp_name(os.path.basename(absolute)))
        _ACTIVE_TEMPS.add(tmp)
        try:
            with _os_errors(path, what):
                yield tmp
            try:
                _move_noreplace(tmp, absolute)
            except FileExistsError:
                raise OutputError(f"{what} '{_q(path)}' already exists; causal-hcc never replaces a file: "
                                  "remove it or choose another name") from None
            except OSError as err:
                raise os_error(err, path, what) from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            _ACTIVE_TEMPS.discard(tmp)


@contextlib.contextmanager
def update_folder(folder: str, *, command: str = "report") -> Iterator[str]:
    """Rewrite some files of an existing output ``folder`` (``causal-hcc report DIR``).

    Yields a temporary folder *inside* ``folder``; on success each entry
    written there replaces its namesake in ``folder`` by rename (a file is
    never left truncated; a sub-folder such as ``figures/`` is swapped whole),
    and the marker's file list is updated. ``folder`` must be a causal_hcc
    output (marker, or a ``results.json`` for folders written before markers).
    """
    what = "report folder"
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise OutputError(f"{what} '{_q(folder)}' is not a folder")
    stamp = read_marker(folder)
    if stamp is None and not os.path.isfile(os.path.join(folder, "results.json")):
        raise OutputError(f"{what} '{_q(folder)}' is not a causal-hcc output folder")
    absolute = os.path.abspath(folder)
    if fcntl is not None and not os.access(os.path.dirname(absolute), os.W_OK | os.X_OK):
        raise OutputError(f"{what} '{_q(folder)}': cannot write its lock file in '{_q(os.path.dirname(absolute))}' "
                          "(permission denied)")
    if not os.access(absolute, os.W_OK | os.X_OK):
        raise OutputError(f"{what} '{_q(folder)}': permission denied; choose a folder you can write to")
    _require_free_space(absolute, folder, what, "free some space first")
    _acquire(absolute, what)
    try:
        clean_stale(absolute)
        try:
            tmp = os.path.join(absolute, _temp_name("report"))
            os.mkdir(tmp)
            _write_marker(tmp, command)
        except OSError as err:
            raise os_error(err, folder, what) from None
        try:
            with _os_errors(folder, what):
                yield tmp
            protected = {"results.json", MARKER}
            try:
                for n in sorted(os.listdir(tmp)):
                    if n in protected:
                        continue
                    src, dst = os.path.join(tmp, n), os.path.join(absolute, n)
                    if os.path.isdir(src) and not os.path.islink(src):
                        _write_marker(src, command)  # so a swapped-out old copy is recognisably ours
                        if os.path.lexists(dst) and (os.path.islink(dst) or not os.path.isdir(dst)):
                            raise OutputError(f"{what} '{_q(folder)}': '{n}' is not a folder; not replaced")
                        old = _swap_in(src, dst)
                        if old is not None:
                            shutil.rmtree(old, ignore_errors=True)
                        with contextlib.suppress(OSError):
                            os.unlink(os.path.join(dst, MARKER))
                    else:
                        if os.path.isdir(dst) and not os.path.islink(dst):
                            raise OutputError(f"{what} '{_q(folder)}': '{n}' is a folder; not replaced")
                        os.replace(src, dst)
                stamp = read_marker(absolute)
                if stamp is not None and isinstance(stamp.get("files"), list):
                    _write_marker(absolute, stamp.get("command", command),
                                  files=[f for f in _listing(absolute) if not _TMP_RE.match(f.split("/")[0])])
            except OutputError:
                raise
            except OSError as err:
                raise os_error(err, folder, what) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        _release(absolute)

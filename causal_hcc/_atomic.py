"""Output safety: every file or folder causal_hcc writes goes through here.

The rules, enforced in this module only:

1. **Inputs are never touched.** A target that *is* an input (data file, spec,
   published tables), that *contains* one, or that lies *inside* one is
   refused, with or without ``--force`` (paths compared after resolving
   symbolic links, and by inode where the path exists).
2. **No overwrite; the marker protects only what we wrote.** An existing
   target is refused unless ``force``; and ``force`` replaces only a *folder
   that causal_hcc wrote*: it carries the marker file :data:`MARKER`, a JSON
   stamp listing every file written with its size and SHA-256 (format
   :data:`MARKER_FORMAT`); it is not a symbolic link; it holds nothing but
   those files; and each of them still has its recorded hash. A folder without
   a marker, with a marker that is malformed or forged (no file list, a list
   that is not one of path/size/hash entries, a format from before hashes), a
   file that is not listed, or a listed file that was edited is refused with
   one line, and nothing is removed. After the new folder is in place, the old
   one is emptied of exactly its listed, unchanged files (anything that
   appeared meanwhile is kept, with a warning).
3. **Atomic.** Everything is written into a temporary sibling
   ``.<name>.causal_hcc-tmp-<pid>-<hex>`` (a folder stamped from its first
   moment with a marker naming that ``<hex>``) and renamed into place at the
   end -- without replacing (``renameat2(RENAME_NOREPLACE)`` or ``link``), or,
   with ``force``, swapped in (``RENAME_EXCHANGE``). A single file
   (``twin --output``) is written inside such a temporary folder and linked
   into place. On any error or signal the temporary is removed; one left by a
   killed run (its pid dead on this host, our name pattern *and* a marker
   naming the same ``<hex>``) is removed by the next run writing beside it.
   Nothing else with a look-alike name is ever removed.
4. **One writer.** A lock file ``.<name>.causal_hcc-lock`` beside the target
   (``flock``) is held from the pre-flight check to the final rename; a second
   run aimed at the same target exits 2 at once, naming the pid holding it.
   The lock file holds ``causal_hcc-lock <pid> <host>``; a file of that name
   with other content is a user's file: it is never truncated or removed (the
   run is refused).
5. **Stop early.** :func:`reserve` checks everything knowable before fitting:
   not an input, parent not a file, parent writable (a read-only file system
   or folder is named as such), name length, free disk.
6. **`report DIR` rewrites only its own files.** :func:`update_folder` works
   only in a folder with a valid marker; a file it writes may replace only a
   listed, unchanged file of ours; files the user added (``figures/mine.png``)
   are kept, and an edited report file makes it refuse.

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
import stat as _stat
import sys
import warnings
from typing import Iterable, Iterator, Literal

from causal_hcc.errors import OutputError, short

try:  # POSIX advisory locks; elsewhere runs are not serialised
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: the stamp file in every folder causal_hcc writes
MARKER = ".causal_hcc-output"
#: version of the marker's content: 2 = every file listed with its size and SHA-256
MARKER_FORMAT = 2
#: a marker larger than this is not ours (a folder of a run lists a few dozen files)
MAX_MARKER_BYTES = 4_000_000
#: refuse to start with less free space than this where the output goes
MIN_FREE_BYTES = 32 * 2**20
_TOOL = "causal_hcc"
_TMP_RE = re.compile(r"^\.(?P<stem>.+)\.causal_hcc-(?P<kind>tmp|old)-(?P<pid>\d+)-(?P<rand>[0-9a-f]{8})$")
_LOCK_RE = re.compile(r"^\.(?P<stem>.+)\.causal_hcc-lock$")
#: what a lock file of ours holds (earlier versions wrote the pid alone)
_LOCK_CONTENT_RE = re.compile(rb"^(?:causal_hcc-lock (?P<pid>\d+) (?P<host>\S+)|(?P<oldpid>\d+))\n?$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
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


def _read_only_fs(path: str) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & getattr(os, "ST_RDONLY", 1))
    except (OSError, AttributeError):
        return False


def os_error(err: OSError, path: str, what: str = "output") -> OutputError:
    """One line for an OS error met while writing ``path``, with what to do."""
    code = err.errno
    if code in _SPACE:
        return OutputError(f"{what} '{_q(path)}': no space left on the disk (nothing was written); "
                           "free some space or choose another --output")
    if code == errno.EROFS or (code in (errno.EACCES, errno.EPERM) and _read_only_fs(_nearest_existing(path))):
        return OutputError(f"{what} '{_q(path)}': the file system is read-only; choose another --output")
    if code in (errno.EACCES, errno.EPERM):
        return OutputError(f"{what} '{_q(path)}': permission denied (read-only for you; nothing was written); "
                           "choose a folder you can write to")
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
    """The JSON stamp of a folder causal_hcc wrote (``tool`` is ours), or None; not validated further."""
    p = os.path.join(folder, MARKER)
    try:
        st = os.lstat(p)
        if not _stat.S_ISREG(st.st_mode) or st.st_size > MAX_MARKER_BYTES:
            return None
        with open(p, "rb") as fh:
            d = json.loads(fh.read(MAX_MARKER_BYTES + 1).decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return d if isinstance(d, dict) and d.get("tool") == _TOOL else None


def file_sha256(path: str) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _inventory(folder: str) -> list[dict]:
    """Every regular file below ``folder`` (the marker excepted) as ``{path, size, sha256}``."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        rel = os.path.relpath(root, folder)
        for n in sorted(files):
            r = n if rel == "." else os.path.join(rel, n)
            if r == MARKER:
                continue
            p = os.path.join(root, n)
            st = os.lstat(p)
            if not _stat.S_ISREG(st.st_mode):
                continue
            out.append({"path": r.replace(os.sep, "/"), "size": int(st.st_size), "sha256": file_sha256(p)})
    return out


def _write_marker(folder: str, command: str, files: list[dict] | None = None, temporary: str | None = None) -> None:
    """Write the stamp: ``files`` (path/size/sha256 entries) for a finished folder, ``temporary`` for a temp."""
    from causal_hcc import __version__

    stamp: dict = {"tool": _TOOL, "marker_format": MARKER_FORMAT, "version": __version__, "command": command,
                   "pid": os.getpid(), "host": socket.gethostname(),
                   "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    if temporary is not None:
        stamp["temporary"] = temporary
    if files is not None:
        stamp["files"] = files
    tmp = os.path.join(folder, MARKER + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(stamp, fh, indent=1)
    os.replace(tmp, os.path.join(folder, MARKER))


def _parse_files(stamp: dict | None) -> dict[str, tuple[int, str]] | str:
    """The marker's file list as ``{path: (size, sha256)}``, or why it cannot be trusted (a short reason)."""
    if stamp is None:
        return "no marker"
    files = stamp.get("files")
    if stamp.get("marker_format") != MARKER_FORMAT:
        if isinstance(files, list) and all(isinstance(f, str) for f in files):
            return "written by an earlier causal-hcc version, without file hashes"
        return "unknown marker format"
    if not isinstance(files, list):
        return "no list of the files written"
    out: dict[str, tuple[int, str]] = {}
    for f in files:
        if not isinstance(f, dict) or set(f) != {"path", "size", "sha256"}:
            return "a file entry is not {path, size, sha256}"
        path, size, sha = f["path"], f["size"], f["sha256"]
        if (not isinstance(path, str) or not path or "\x00" in path or path.startswith("/") or "\\" in path
                or any(part in ("", ".", "..") for part in path.split("/")) or path == MARKER):
            return f"a file entry has an invalid path {short(repr(path), 60)}"
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            return f"the size of '{short(path, 60)}' is not a byte count"
        if not isinstance(sha, str) or not _SHA_RE.match(sha):
            return f"the hash of '{short(path, 60)}' is not a SHA-256"
        if path in out:
            return f"'{short(path, 60)}' is listed twice"
        out[path] = (size, sha)
    return out


def _unchanged(path: str, size: int, sha: str) -> bool:
    """Whether ``path`` is a regular file (not a link) with exactly this size and hash."""
    try:
        st = os.lstat(path)
        return _stat.S_ISREG(st.st_mode) and st.st_size == size and file_sha256(path) == sha
    except OSError:
        return False


def _foreign_entries(folder: str, files: dict[str, tuple[int, str]]) -> tuple[list[str], list[str]]:
    """(entries causal_hcc did not write, listed files that were changed) below ``folder``.

    Folders are ours when everything in them is (an empty folder is harmless);
    symbolic links, sockets and the like are never ours.
    """
    extra, changed = [], []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        rel = os.path.relpath(root, folder)
        for d in list(dirs):
            if os.path.islink(os.path.join(root, d)):
                extra.append((d if rel == "." else os.path.join(rel, d)).replace(os.sep, "/"))
                dirs.remove(d)
        for n in sorted(names):
            r = (n if rel == "." else os.path.join(rel, n)).replace(os.sep, "/")
            if r == MARKER:
                continue
            if r not in files:
                extra.append(r)
            elif not _unchanged(os.path.join(root, n), *files[r]):
                changed.append(r)
    return extra, changed


def _check_replaceable(folder: str, what: str) -> dict[str, tuple[int, str]]:
    """``force``: only a real folder whose marker lists, with unchanged hashes, everything it holds.

    Returns the marker's file list (what may be removed later).
    """
    if os.path.islink(folder):
        raise OutputError(f"{what} '{_q(folder)}' is a symbolic link; --force replaces only a folder "
                          "causal-hcc wrote: remove the link or choose another --output")
    if not os.path.isdir(folder):
        raise OutputError(f"{what} '{_q(folder)}' is a file; causal-hcc never replaces a file: "
                          "choose another --output")
    stamp = read_marker(folder)
    if stamp is None:
        raise OutputError(f"{what} '{_q(folder)}' was not written by causal-hcc (no {MARKER} marker); "
                          "--force replaces only causal-hcc output folders: remove it yourself or choose another "
                          "--output")
    files = _parse_files(stamp)
    if isinstance(files, str):
        raise OutputError(f"{what} '{_q(folder)}': its {MARKER} marker cannot be trusted ({files}); --force "
                          "replaces only a folder whose marker lists every file with its hash: remove it yourself "
                          "or choose another --output")
    extra, changed = _foreign_entries(folder, files)
    if extra:
        raise OutputError(f"{what} '{_q(folder)}' holds '{_q(extra[0])}' that causal-hcc did not write; "
                          "--force replaces only an unchanged causal-hcc output folder: move it first")
    if changed:
        raise OutputError(f"{what} '{_q(folder)}': '{_q(changed[0])}' was changed after causal-hcc wrote it; "
                          "--force never replaces an edited file: move it first or choose another --output")
    return files


def _remove_ours(folder: str, files: dict[str, tuple[int, str]]) -> list[str]:
    """Remove from ``folder`` its listed files whose hash still matches, the marker and the emptied folders.

    Returns what is left (anything that was not ours); ``folder`` itself is
    removed when nothing is.
    """
    for rel, (size, sha) in files.items():
        p = os.path.join(folder, *rel.split("/"))
        if _unchanged(p, size, sha):
            with contextlib.suppress(OSError):
                os.unlink(p)
    m = os.path.join(folder, MARKER)
    with contextlib.suppress(OSError):
        if _stat.S_ISREG(os.lstat(m).st_mode):
            os.unlink(m)
    for root, dirs, _ in os.walk(folder, topdown=False):
        for d in dirs:
            p = os.path.join(root, d)
            if not os.path.islink(p):
                with contextlib.suppress(OSError):
                    os.rmdir(p)  # only when empty
    with contextlib.suppress(OSError):
        os.rmdir(folder)
    if not os.path.lexists(folder):
        return []
    left = []
    for root, dirs, names in os.walk(folder):
        rel = os.path.relpath(root, folder)
        left += [(n if rel == "." else os.path.join(rel, n)) for n in names]
    return left or ["(empty folders)"]


def _remove_temporary(tmp: str) -> None:
    """Remove a temporary folder this process made (its content is all ours)."""
    if os.path.isdir(tmp) and not os.path.islink(tmp):
        shutil.rmtree(tmp, ignore_errors=True)


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


def _require_writable(directory: str, target: str, what: str) -> None:
    """Refuse a folder we cannot write in, naming a read-only file system or folder as such."""
    if _read_only_fs(directory):
        raise OutputError(f"{what} '{_q(target)}': cannot write in '{_q(directory)}': the file system is "
                          "read-only; choose another --output")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputError(f"{what} '{_q(target)}': cannot write in '{_q(directory)}' (the folder is read-only "
                          "for you: permission denied); choose a folder you can write to")


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
    _require_writable(writable_dir, target, what)
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

    Only folders named ``.<name>.causal_hcc-(tmp|old)-<pid>-<hex>`` whose pid
    is dead on this host, and only what is provably ours in them: a ``tmp``
    folder must carry our marker naming the same ``<hex>`` (or its pid, for
    versions before the name was recorded) or be empty; an ``old`` folder (a
    replaced output) loses only its listed files whose hash still matches.
    Files with look-alike names, and lock files that are not ours, are never
    touched; a stale lock file of ours (not held by anyone) is removed.
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
            if os.path.islink(p) or not os.path.isdir(p):
                continue  # a file with our pattern is a user's: we write temporaries as folders only
            if not os.listdir(p):
                os.rmdir(p)  # killed between mkdir and the marker: empty, nothing to lose
                removed.append(p)
                continue
            stamp = read_marker(p)
            if stamp is None or stamp.get("host", host) != host:
                continue
            if m["kind"] == "tmp" and (stamp.get("temporary") == m["rand"] or stamp.get("pid") == int(m["pid"])):
                shutil.rmtree(p)  # a temporary of that run: everything in it was written by it
                removed.append(p)
                continue
            files = _parse_files(stamp)  # a replaced output (swapped to this name): only its unchanged files
            if isinstance(files, dict) and not _remove_ours(p, files):
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
#: temporary folders being written by this process (removed by :func:`emergency_cleanup`)
_ACTIVE_TEMPS: set[str] = set()


def _lock_content() -> bytes:
    return f"causal_hcc-lock {os.getpid()} {socket.gethostname()}\n".encode()


def _lock_holder(content: bytes) -> str:
    m = _LOCK_CONTENT_RE.match(content)
    if not m:
        return "?"
    return (m["pid"] or m["oldpid"]).decode()


def emergency_cleanup() -> None:
    """Remove this process's temporaries and lock files now.

    For the signal watchdog, which ends the process with ``os._exit`` when a
    regular unwind takes too long (e.g. a Dask cluster that is slow to stop):
    the ``finally`` blocks will not run, so what they would remove is removed
    here. Never touches anything but our own temporaries and locks.
    """
    for tmp in list(_ACTIVE_TEMPS):
        _remove_temporary(tmp)
    for lk in list(_HELD.values()):
        _unlink_own_lock(lk)


def _unlink_own_lock(lk: "_Lock") -> None:
    """Remove the lock file we hold, if the path is still that file."""
    with contextlib.suppress(OSError):
        st, cur = os.fstat(lk.fd), os.stat(lk.path, follow_symlinks=False)
        if (st.st_dev, st.st_ino) == (cur.st_dev, cur.st_ino):
            os.unlink(lk.path)


def _read_small(fd: int, limit: int = 256) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, limit + 1)


def _remove_stale_lock(path: str) -> None:
    """Remove a lock file of ours that nobody holds (its content says it is ours)."""
    if fcntl is None or os.path.realpath(path) in {os.path.realpath(lk.path) for lk in _HELD.values()}:
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return
    try:
        st = os.fstat(fd)
        if not _stat.S_ISREG(st.st_mode) or not _LOCK_CONTENT_RE.match(_read_small(fd)):
            return  # not our lock file: a user's file with a look-alike name is left alone
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
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
    foreign = OutputError(f"{what} '{_q(target)}': '{_q(path)}' is in the way: causal-hcc uses that name for its "
                          "lock file, and this one is not a causal-hcc lock; move it or choose another --output")
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except FileExistsError:
            try:
                fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK)
            except FileNotFoundError:
                continue  # removed by its holder meanwhile
            except OSError as err:
                if err.errno == errno.ELOOP:  # a symbolic link: not ours
                    raise foreign from None
                raise os_error(err, target, what) from None
            try:
                ok = _stat.S_ISREG(os.fstat(fd).st_mode)
                content = _read_small(fd) if ok else b""
            except OSError:
                ok, content = False, b""
            # empty: a lock another run has just created (it writes its content once it holds it)
            if not ok or (content and not _LOCK_CONTENT_RE.match(content)):
                os.close(fd)
                raise foreign from None
        except OSError as err:
            raise os_error(err, target, what) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = _lock_holder(_read_small(fd))
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
        try:
            content = _read_small(fd)
            if content and not _LOCK_CONTENT_RE.match(content):  # replaced by a user's file meanwhile
                os.close(fd)
                raise foreign
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, _lock_content())
        except OutputError:
            raise
        except OSError as err:
            os.close(fd)
            raise os_error(err, target, what) from None
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
    _unlink_own_lock(lk)
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
def _temp_folder(parent: str, name: str, command: str, target: str, what: str) -> Iterator[str]:
    """A fresh temporary folder ``parent/.<name>.causal_hcc-tmp-<pid>-<hex>`` stamped with ``<hex>``; removed
    on exit unless it was renamed away."""
    try:
        tmp = os.path.join(parent, _temp_name(name))
        os.mkdir(tmp)
    except OSError as err:
        raise os_error(err, target, what) from None
    _ACTIVE_TEMPS.add(tmp)
    try:
        try:
            _write_marker(tmp, command, temporary=tmp.rsplit("-", 1)[1])
        except OSError as err:
            raise os_error(err, target, what) from None
        yield tmp
    finally:
        if tmp in _ACTIVE_TEMPS:  # (not once renamed into place: then the name may hold the replaced folder)
            _remove_temporary(tmp)
            _ACTIVE_TEMPS.discard(tmp)


@contextlib.contextmanager
def atomic_folder(folder: str, *, force: bool = False, inputs: Iterable[str | os.PathLike[str] | None] = (),
                  command: str = "run") -> Iterator[str]:
    """Yield a temporary folder beside ``folder``; put it in place on success.

    The temporary folder carries :data:`MARKER` from the start. On any
    exception (including KeyboardInterrupt/SystemExit) it is removed and
    ``folder`` is left as it was. An existing ``folder`` is replaced only
    with ``force`` and only if causal_hcc wrote it and nothing in it changed
    (see module docstring); the old folder then loses exactly its listed,
    unchanged files. OS errors become :class:`OutputError`.
    """
    what = "output folder"
    folder = os.fspath(folder)
    with reserve(folder, kind="folder", force=force, inputs=inputs, what=what) as absolute:
        parent = os.path.dirname(absolute)
        with _temp_folder(parent, os.path.basename(absolute), command, folder, what) as tmp:
            try:
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(tmp, 0o777 & ~umask)
            except OSError as err:
                raise os_error(err, folder, what) from None
            with _os_errors(folder, what):
                yield tmp
            try:
                _write_marker(tmp, command, files=_inventory(tmp))
                old_files = None
                if os.path.lexists(absolute):
                    if not force:
                        raise OutputError(f"output folder '{_q(folder)}' already exists; use --force to replace it")
                    old_files = _check_replaceable(absolute, what)
                    old = _swap_in(tmp, absolute)
                else:
                    old = None
                    _move_noreplace(tmp, absolute)
                _ACTIVE_TEMPS.discard(tmp)  # in place: no longer ours to remove
            except FileExistsError:
                raise OutputError(f"output folder '{_q(folder)}' already exists; use --force to replace it") from None
            except OutputError:
                raise
            except OSError as err:
                raise os_error(err, folder, what) from None
            if old is not None:
                left = _remove_ours(old, old_files or {})
                if left:
                    warnings.warn(f"output folder '{_q(folder)}' was replaced, but '{_q(left[0])}' appeared in the "
                                  f"old one meanwhile: it is kept in '{_q(old)}'", stacklevel=3)


@contextlib.contextmanager
def atomic_file(path: str, *, inputs: Iterable[str | os.PathLike[str] | None] = (),
                what: str = "output file") -> Iterator[str]:
    """Yield a temporary path (inside a marked temporary folder beside ``path``); link it into place on success.

    ``path`` must not exist (a file is never replaced) and its folder must
    exist. On any exception the temporary folder is removed.
    """
    path = os.fspath(path)
    with reserve(path, kind="file", inputs=inputs, create_parents=False, what=what) as absolute:
        with _temp_folder(os.path.dirname(absolute), os.path.basename(absolute), "twin", path, what) as tdir:
            tmp = os.path.join(tdir, os.path.basename(absolute))
            with _os_errors(path, what):
                yield tmp
            try:
                _move_noreplace(tmp, absolute)
            except FileExistsError:
                raise OutputError(f"{what} '{_q(path)}' already exists; causal-hcc never replaces a file: "
                                  "remove it or choose another name") from None
            except OSError as err:
                raise os_error(err, path, what) from None


#: files `report DIR` never replaces (the run's own results)
_REPORT_PROTECTED = frozenset({"results.json", "curves.parquet", "estimates.csv", "truth.json", "audit.csv", MARKER})


def _trusted_files(folder: str, what: str) -> dict[str, tuple[int, str]]:
    """The file list of ``folder``'s marker, or one line saying why ``report`` will not write there."""
    files = _parse_files(read_marker(folder))
    if isinstance(files, str):
        why = "it has no causal-hcc marker" if files == "no marker" else f"its {MARKER} marker cannot be trusted " \
                                                                         f"({files})"
        raise OutputError(f"{what} '{_q(folder)}': {why}; 'causal-hcc report' writes only into a folder that "
                          "causal-hcc wrote: give --output NEW to write the report into a new folder")
    return files


@contextlib.contextmanager
def update_folder(folder: str, *, command: str = "report") -> Iterator[str]:
    """Rewrite the report files of an existing output ``folder`` (``causal-hcc report DIR``).

    ``folder`` must carry a valid marker (:data:`MARKER` with hashes). Yields
    a temporary folder *inside* ``folder``; on success each file written there
    replaces its namesake by rename (never left truncated) -- but only a file
    the marker lists with an unchanged hash, or none: a file of the user's
    with the same name, or one of ours that the user edited, makes it refuse
    before anything is replaced. Files the user added are never removed;
    listed figures of ours that are not written again are. The marker's list
    then names exactly our files.
    """
    what = "report folder"
    folder = os.fspath(folder)
    if os.path.islink(folder) or not os.path.isdir(folder):
        raise OutputError(f"{what} '{_q(folder)}' is not a folder")
    _trusted_files(folder, what)
    absolute = os.path.abspath(folder)
    if fcntl is not None:
        _require_writable(os.path.dirname(absolute), folder, what)
    _require_writable(absolute, folder, what)
    _require_free_space(absolute, folder, what, "free some space first")
    _acquire(absolute, what)
    try:
        clean_stale(absolute)
        with _temp_folder(absolute, "report", command, folder, what) as tmp:
            with _os_errors(folder, what):
                yield tmp
            try:
                _install_report(absolute, tmp, command, what)
            except OutputError:
                raise
            except OSError as err:
                raise os_error(err, folder, what) from None
    finally:
        _release(absolute)


def _install_report(absolute: str, tmp: str, command: str, what: str) -> None:
    """Move the files written in ``tmp`` over ours in ``absolute`` (checks first, then renames)."""
    stamp = read_marker(absolute) or {}
    files = _trusted_files(absolute, what)  # again, under the lock
    new = [f for f in _inventory(tmp) if f["path"] not in _REPORT_PROTECTED]
    new_paths = {f["path"] for f in new}
    for f in new:  # every check before the first rename: a refusal writes nothing
        rel = f["path"]
        parts = rel.split("/")
        for i in range(1, len(parts)):
            d = os.path.join(absolute, *parts[:i])
            if os.path.lexists(d) and (os.path.islink(d) or not os.path.isdir(d)):
                raise OutputError(f"{what} '{_q(absolute)}': '{_q('/'.join(parts[:i]))}' is not a folder; "
                                  "nothing was replaced")
        dst = os.path.join(absolute, *parts)
        if os.path.lexists(dst):
            if rel not in files:
                raise OutputError(f"{what} '{_q(absolute)}': '{_q(rel)}' was not written by causal-hcc; "
                                  "'report' never replaces a file it did not write: move it first")
            if not _unchanged(dst, *files[rel]):
                raise OutputError(f"{what} '{_q(absolute)}': '{_q(rel)}' was changed after causal-hcc wrote it; "
                                  "'report' never replaces an edited file: move it first")
    for f in new:
        parts = f["path"].split("/")
        os.makedirs(os.path.join(absolute, *parts[:-1]), exist_ok=True)
        os.replace(os.path.join(tmp, *parts), os.path.join(absolute, *parts))
    kept = {}
    for rel, (size, sha) in files.items():
        if rel in new_paths:
            continue
        p = os.path.join(absolute, *rel.split("/"))
        if rel.startswith("figures/") and _unchanged(p, size, sha):
            os.unlink(p)  # a figure of ours that this report no longer draws
        elif os.path.lexists(p):
            kept[rel] = (size, sha)
    entries = [{"path": r, "size": sz, "sha256": h} for r, (sz, h) in kept.items()] + new
    _write_marker(absolute, str(stamp.get("command", command)), files=sorted(entries, key=lambda e: e["path"]))

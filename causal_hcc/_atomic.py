"""Write an output folder atomically: all of it, or nothing."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import Iterator

from causal_hcc.errors import OutputError


def check_output_dir(folder: str, force: bool) -> None:
    """Refuse to replace an existing folder unless ``force``."""
    if os.path.exists(folder) and not force:
        raise OutputError(f"output folder '{folder}' already exists; use --force to replace it")


@contextlib.contextmanager
def atomic_folder(folder: str, *, force: bool = False) -> Iterator[str]:
    """Yield a temporary folder beside ``folder``; rename it into place on success.

    On any exception the temporary folder is removed and ``folder`` is left
    as it was, so a failed run never leaves a half-written output. An
    existing ``folder`` is replaced only with ``force``.
    """
    check_output_dir(folder, force)
    parent = os.path.dirname(os.path.abspath(folder)) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(folder)}.tmp-", dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp creates 0700; the final folder follows the umask
    try:
        yield tmp
        if os.path.exists(folder):
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(folder)}.old-", dir=parent)
            os.rename(folder, os.path.join(old, "x"))
            os.rename(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

"""Helpers of the hardening suite: a tiny user cohort and a checker for clean refusals.

Every refusal must be: the expected exit code, exactly one line on stderr
(no traceback), no output or temporary left behind, inputs byte-identical.
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from user_data import USER_SPEC, make_user_frame  # noqa: E402

from causal_hcc.cli import app  # noqa: E402

FAST_SPEC = USER_SPEC.replace("  - paper\n  - naive\n  - multivariable\n", "  - naive\n")


def cli(*args: str):
    """The CLI in-process (stdout and stderr kept apart)."""
    return CliRunner().invoke(app, [str(a) for a in args])


def tree_hash(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (names relative), folders as 'dir'."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for d in dirs:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = "dir"
        for f in files:
            p = os.path.join(dirpath, f)
            if os.path.islink(p):
                out[os.path.relpath(p, root)] = "link"
            elif not os.path.isfile(p):  # a FIFO or socket: never opened (a FIFO would block)
                out[os.path.relpath(p, root)] = "special"
            else:
                out[os.path.relpath(p, root)] = hashlib.sha256(Path(p).read_bytes()).hexdigest()
    return out


class Case:
    """A tmp folder with cohort.csv and spec.yaml; ``check`` asserts a clean refusal."""

    def __init__(self, root: Path):
        self.root = root
        self.data = root / "cohort.csv"
        make_user_frame().to_csv(self.data, index=False)
        self.spec = root / "spec.yaml"
        self.spec.write_text(FAST_SPEC.format(path=self.data))
        self.out = root / "out"

    def snapshot(self) -> dict[str, str]:
        return tree_hash(self.root)

    def refused(self, r, line: str | None = None, *, code: int = 2, before: dict[str, str] | None = None,
                startswith: str | None = None) -> str:
        err = r.stderr
        assert r.exit_code == code, (r.exit_code, r.stdout, err)
        assert err.endswith("\n") and err.count("\n") == 1, repr(err)
        assert "Traceback" not in err and "internal error" not in err
        if line is not None:
            assert err == line + "\n"
        if startswith is not None:
            assert err.startswith(startswith), err
        if before is not None:
            assert self.snapshot() == before  # nothing written, nothing removed, inputs unchanged
        return err.rstrip("\n")

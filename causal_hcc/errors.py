"""Exceptions raised by causal_hcc.

Every input problem raises a subclass of :class:`CausalHCCError` whose message
is one line naming what is wrong and where (column, row, key). The CLI prints
that line and exits with status 2; it never shows a traceback unless
``--debug`` is given.
"""
from __future__ import annotations

import reprlib
from typing import Any, Sequence

#: the longest message an error carries (a quoted value never floods the terminal)
MAX_MESSAGE = 2000


def short(value: object, limit: int = 80) -> str:
    """``str(value)`` on one line, cut to ``limit`` characters with a note of the full length.

    Use it for every user-supplied value quoted in a message: a 1 MB cell or
    an expanded YAML alias must not become a 1 MB error line.
    """
    s = value if isinstance(value, str) else str(value)
    if len(s) > limit:
        s = f"{s[:limit]}... ({len(s):,} characters)"
    return " ".join(s.splitlines())

def closest(name: str, choices: Sequence[str]) -> str:
    """' (did you mean X?)' when a close match exists, else ''."""
    import difflib

    m = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{m[0]}'?)" if m else ""


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 4
_REPR.maxlevel = 2
_REPR.maxlong = 40


def shown(value: Any) -> str:
    """``repr`` of a value for a message (spec values: lists, mappings), bounded (60 characters per string, 4 items, 2 levels, 120 in all).

    Built without ever forming the full ``repr`` (a spec value can be a
    YAML alias bomb or a 1 MB string).
    """
    text = _REPR.repr(value)
    return text if len(text) <= 120 else text[:120] + "\u2026"


class CausalHCCError(Exception):
    """Base class: a user-facing problem, reported as one line (at most :data:`MAX_MESSAGE` characters)."""

    exit_code = 2

    def __init__(self, message: str):
        # Keep messages to one line: the CLI contract is "one clear line".
        text = str(message)
        if len(text) > MAX_MESSAGE:
            text = text[:MAX_MESSAGE] + f"... (message cut at {MAX_MESSAGE:,} of {len(text):,} characters)"
        super().__init__(" ".join(text.splitlines()))


class DataError(CausalHCCError, ValueError):
    """The data file or DataFrame violates a role's requirements."""


class SpecError(CausalHCCError, ValueError):
    """The analysis spec (YAML) is invalid: unknown key, strategy or option."""


class EstimationError(CausalHCCError, RuntimeError):
    """A model could not be estimated (no events, separation, non-convergence...)."""


class OutputError(CausalHCCError, OSError):
    """The output folder cannot be written (exists without --force, ...)."""

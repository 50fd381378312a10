"""Exceptions raised by causal_hcc.

Every input problem raises a subclass of :class:`CausalHCCError` whose message
is one line naming what is wrong and where (column, row, key). The CLI prints
that line and exits with status 2; it never shows a traceback unless
``--debug`` is given.
"""
from __future__ import annotations


class CausalHCCError(Exception):
    """Base class: a user-facing problem, reported as one line."""

    exit_code = 2

    def __init__(self, message: str):
        # Keep messages to one line: the CLI contract is "one clear line".
        super().__init__(" ".join(str(message).split("\n")))


class DataError(CausalHCCError, ValueError):
    """The data file or DataFrame violates a role's requirements."""


class SpecError(CausalHCCError, ValueError):
    """The analysis spec (YAML) is invalid: unknown key, strategy or option."""


class EstimationError(CausalHCCError, RuntimeError):
    """A model could not be estimated (no events, separation, non-convergence...)."""


class OutputError(CausalHCCError, OSError):
    """The output folder cannot be written (exists without --force, ...)."""

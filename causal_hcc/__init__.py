"""causal_hcc: one treatment effect from an observational survival study,
re-estimated under every design and adjustment, side by side, against a
digital twin's known truth."""
from __future__ import annotations

__version__ = "0.1.0"

from causal_hcc.errors import CausalHCCError, DataError, EstimationError, SpecError  # noqa: E402

__all__ = ["__version__", "CausalHCCError", "DataError", "EstimationError", "SpecError"]

if __import__("os").environ.get("CAUSAL_HCC_PARENT_PID"):  # a worker of a CLI run: die with the run
    from causal_hcc._process import watch_parent_from_env

    watch_parent_from_env()

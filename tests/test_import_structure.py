"""adjust/propensity, batched and inference no longer import each other (they did, in a circle):
the replicate context, seeds, layout and summary live in causal_hcc._replicate, which imports none of them."""
from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module, absent", [
    ("causal_hcc.adjust.propensity", ("causal_hcc.inference", "causal_hcc.batched")),
    ("causal_hcc.batched", ("causal_hcc.inference", "causal_hcc.adjust.propensity")),
    ("causal_hcc._replicate", ("causal_hcc.inference", "causal_hcc.batched", "causal_hcc.adjust.propensity")),
])
def test_no_import_circle(module, absent):
    code = f"import sys, {module}; print(','.join(m for m in {absent!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing {module} imported {out}"


def test_inference_reexports_replicate_names():
    from causal_hcc import _replicate, inference

    for name in ("in_replicate", "infinite_fails", "failing_on_infinite", "replicate_seeds", "replicate_indices",
                 "replicate_cohort", "clone_strategy", "summarise_replicates", "single_threaded_blas",
                 "REPLICATE_ERRORS", "_IN_REPLICATE", "_Layout", "_Job", "_keys", "_failure_reason"):
        assert getattr(inference, name) is getattr(_replicate, name)

"""Write the gbsg matched sets that tests/reference/adjust_gbsg.R analyses in R.

Run from the repository root: ``.venv/bin/python tests/adjust/make_psm_fixture.py``
then ``Rscript tests/reference/adjust_gbsg.R``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from causal_hcc.adjust.propensity import fit_propensity
from causal_hcc.adjust.psm import nearest_neighbour_match
from causal_hcc.base import DesignData

FX = "tests/reference/fixtures"
CONF = ["age", "meno", "size", "grade", "nodes", "pgr", "er"]
SPECS = {"nn1": dict(ratio=1, caliper=0.2, replace=False), "nn2r": dict(ratio=2, caliper=0.2, replace=True)}


def gbsg_design(path: str = f"{FX}/adjust_gbsg.csv") -> DesignData:
    d = pd.read_csv(path)
    n = len(d)
    idx = np.arange(n)
    return DesignData(design="baseline", outcome="rfs", start=np.zeros(n), stop=d["rfstime"].to_numpy(float),
                      event=d["status"].to_numpy(np.int8), treatment=d["hormon"].to_numpy(np.int8),
                      X=d[CONF].to_numpy(float), confounders=list(CONF), patient=idx, unit=idx, weight=np.ones(n))


def matched_frame(name: str) -> pd.DataFrame:
    d = pd.read_csv(f"{FX}/adjust_gbsg.csv")
    data = gbsg_design()
    ps = fit_propensity(data)
    m = nearest_neighbour_match(ps.unit_score, ps.unit_treatment, **SPECS[name])
    keep = m.weight > 0
    out = d.loc[keep, ["pid", "rfstime", "status", "hormon"]].copy()
    out["match_weight"] = m.weight[keep]
    out["subclass"] = m.subclass[keep]
    return out


if __name__ == "__main__":
    for name in SPECS:
        matched_frame(name).to_csv(f"{FX}/adjust_psm_{name}.csv", index=False)

"""diagnostics["ph_test"] of the strategies equals R cox.zph; the warning fires on the treatment term only."""
from __future__ import annotations

import json

import numpy as np
import pytest

from causal_hcc.adjust.multivariable import Multivariable
from causal_hcc.adjust.none import NoAdjustment
from causal_hcc.base import DesignData, Targets
from causal_hcc.outcome.effects import zph_terms
from tests.core._fixtures import FIXTURES, dataset

REF = json.loads((FIXTURES / "core_zph.json").read_text())


def veteran_data(treatment: str, confounders: list[str]) -> DesignData:
    df = dataset("veteran").assign(karno60=lambda d: (d["karno"] >= 60).astype(int))
    n = len(df)
    return DesignData(design="baseline", outcome="os", start=np.zeros(n), stop=df["time"].to_numpy(float),
                      event=df["status"].to_numpy(float), treatment=df[treatment].to_numpy(np.int8),
                      X=df[confounders].to_numpy(float), confounders=confounders, patient=np.arange(n),
                      unit=np.arange(n), weight=np.ones(n))


def _check(ph: dict, ref: dict, names: list[str]):
    t = ref["table"]
    assert [r["term"] for r in ph["terms"]] == names
    np.testing.assert_allclose([r["chisq"] for r in ph["terms"]], t["chisq"][:-1], rtol=1e-6)
    np.testing.assert_allclose([r["p"] for r in ph["terms"]], t["p"][:-1], rtol=1e-6)
    assert ph["global"]["chisq"] == pytest.approx(t["chisq"][-1], rel=1e-6)
    assert ph["global"]["df"] == t["df"][-1]
    assert ph["transform"] == "km"
    np.testing.assert_allclose(ph["treatment_smooth"]["beta"], ref["smooth"]["beta"], rtol=1e-6, atol=1e-9)


def test_none_adjustment_equals_r_and_does_not_warn():
    out = NoAdjustment().fit(veteran_data("trt2", []), Targets(survival_at=(100.0,))).output_
    _check(out.diagnostics["ph_test"], REF["veteran_trt"], ["treatment"])
    assert not [w for w in out.warnings if "proportional hazards" in w]


def test_multivariable_equals_r_and_warns_with_the_p_value():
    out = Multivariable().fit(veteran_data("karno60", ["trt2"]), Targets()).output_
    _check(out.diagnostics["ph_test"], REF["veteran_karno60"], ["treatment", "trt2"])
    p = REF["veteran_karno60"]["table"]["p"][0]
    assert (f"Cox model: proportional hazards doubtful for treatment (cox.zph p = {p:.3g}, chisq 16.04, "
            f"km transform): the hazard ratio averages an effect that changes over time; read the RMST and "
            f"survival differences") in out.warnings


def test_dummies_of_one_variable_are_one_term():
    assert zph_terms(["treatment", "grade=2", "grade=3", "age"]) == {"treatment": [0], "grade": [1, 2], "age": [3]}


def test_bootstrap_replicates_skip_the_test():
    from causal_hcc.inference import _IN_REPLICATE

    tok = _IN_REPLICATE.set(True)
    try:
        out = NoAdjustment().fit(veteran_data("trt2", []), Targets()).output_
    finally:
        _IN_REPLICATE.reset(tok)
    assert "ph_test" not in out.diagnostics

"""Tests of the digital twin: reproducibility, validation, truth, calibration."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causal_hcc.errors import SpecError
from causal_hcc.io import ROUND_TRIP
from causal_hcc.twin import (
    TWIN_COLUMNS, TwinParams, calibration, cox_binary_hr, km_median, simulate_twin, truth,
)

FIXTURES = Path(__file__).resolve().parents[1] / "reference" / "fixtures"

#: sha256 of simulate_twin(TwinParams()).to_csv(index=False): the byte-identity contract.
#: Changing the data-generating process must change this hash on purpose.
DEFAULT_CSV_SHA256 = "a0e974739bb708d20f79ad59a508c43dc0d55201813e0c55910265916c44f987"


def _sha(df: pd.DataFrame) -> str:
    return hashlib.sha256(df.to_csv(index=False).encode()).hexdigest()


def test_default_cohort_is_byte_identical() -> None:
    assert _sha(simulate_twin(TwinParams())) == DEFAULT_CSV_SHA256


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, b = simulate_twin(TwinParams(seed=7)), simulate_twin(TwinParams(seed=7))
    pd.testing.assert_frame_equal(a, b)
    assert _sha(a) != _sha(simulate_twin(TwinParams(seed=8)))


def test_columns_and_unmeasured_only_on_request() -> None:
    df = simulate_twin()
    assert tuple(df.columns) == TWIN_COLUMNS
    assert len(df) == 150
    df_u = simulate_twin(TwinParams(include_unmeasured=True))
    assert tuple(df_u.columns) == TWIN_COLUMNS + ("u_fitness",)
    pd.testing.assert_frame_equal(df_u.drop(columns="u_fitness"), df)


def test_outcome_parameters_do_not_change_covariates() -> None:
    a = simulate_twin(TwinParams(seed=3))
    b = simulate_twin(TwinParams(seed=3, true_hr=0.5, surgery_delay_median=4.0))
    covs = [c for c in TWIN_COLUMNS if c not in ("os_months", "os_event", "pfs_months", "pfs_event",
                                                 "progression_months", "surgery", "months_to_surgery")]
    pd.testing.assert_frame_equal(a[covs], b[covs])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cohort_is_internally_consistent(seed: int) -> None:
    df = simulate_twin(TwinParams(seed=seed, n=500))
    op = df["surgery"] == 1
    assert df.loc[op, "months_to_surgery"].notna().all() and df.loc[~op, "months_to_surgery"].isna().all()
    # operated while alive, progression-free and under follow-up
    assert (df.loc[op, "months_to_surgery"] <= df.loc[op, "pfs_months"]).all()
    assert (df["pfs_months"] <= df["os_months"]).all()
    prog = df["progression_months"].notna()
    assert (df.loc[prog, "pfs_event"] == 1).all()
    assert np.allclose(df.loc[prog, "progression_months"], df.loc[prog, "pfs_months"])
    assert (df["os_months"] <= 84.0).all() and df["era"].between(2015, 2022).all()
    assert df["centre"].between(1, 15).all()


def test_from_spec_unknown_key_lists_valid_keys() -> None:
    with pytest.raises(SpecError) as exc:
        TwinParams.from_spec({"true_hr": 0.7, "tru_hr": 0.7})
    assert str(exc.value) == ("data.twin: unknown key 'tru_hr' (did you mean 'true_hr'?); valid keys: "
                              + ", ".join(TwinParams.valid_keys()))


@pytest.mark.parametrize("spec, message", [
    ({"n": -1}, "data.twin.n: Input should be greater than or equal to 10 (got -1)"),
    ({"true_hr": 0}, "data.twin.true_hr: Input should be greater than 0 (got 0)"),
    ({"prevalence": {"male": 1.5}}, "data.twin.prevalence: prevalence of 'male' must be in [0, 1] (got 1.5)"),
    ({"death_log_hr": {"bogus": 1.0}}, "data.twin.death_log_hr: unknown covariate 'bogus'; valid: male, hbv, "
     "afp_ge_400, lymph_node_met, lung_met, bone_met, adrenal_met, abdominal_met, bclc_d, portal_vein_invasion, "
     "hepatic_vein_invasion, first_line_effective, tace_haic, multiple_primary, oligometastases, metastatic_sd, "
     "age_per_10y, tumour_diameter_per_cm"),
])
def test_from_spec_bad_values(spec: dict, message: str) -> None:
    with pytest.raises(SpecError) as exc:
        TwinParams.from_spec(spec)
    assert str(exc.value) == message


def test_from_spec_merges_mappings_and_issue_example() -> None:
    p = TwinParams.from_spec({"true_hr": 0.7, "surgery_delay_median": 3, "unmeasured_confounding": 1.0,
                              "seed": 7, "n": 150, "prevalence": {"male": 0.5}})
    assert p.prevalence["male"] == 0.5 and p.prevalence["hbv"] == TwinParams().prevalence["hbv"]
    assert p.true_hr == 0.7 and p.seed == 7


def test_params_are_frozen() -> None:
    with pytest.raises(Exception):
        TwinParams().n = 3  # type: ignore[misc]


def test_truth_is_null_under_true_hr_one() -> None:
    t = truth(TwinParams())
    assert t["hr"] == 1.0 and t["candidates"]["hr"] == 1.0
    assert t["survival_difference"] == {"12": 0.0, "24": 0.0}
    assert t["rmst_difference"] == {"24": 0.0}
    assert t["survival"]["operate_when_eligible"] == t["survival"]["never_operate"]


def test_truth_under_benefit_is_diluted_marginal_benefit() -> None:
    t = truth(TwinParams(true_hr=0.7, true_hr_progression=0.7))
    # candidates: marginal HR near, but diluted from, the structural 0.7
    assert 0.70 < t["candidates"]["hr"] < 0.80
    # whole population: non-candidates (about 80 %) dilute it further
    assert t["candidates"]["hr"] < t["hr"] < 1.0
    assert t["rmst_difference"]["24"] > 0 and t["survival_difference"]["12"] > 0
    assert 0.15 < t["share_candidates"] < 0.25 and t["share_operated"] < t["share_candidates"]


def test_truth_is_cached_and_returns_copies() -> None:
    a = truth(TwinParams(true_hr=0.5))
    a["hr"] = -1
    assert truth(TwinParams(true_hr=0.5, seed=99, n=300))["hr"] != -1


def _r_reference() -> dict:
    """R's coxph/survfit on the fixture data (tests/reference/twin_helpers.py, then twin_helpers.R)."""
    return json.loads((FIXTURES / "twin_helpers.json").read_text())


def test_cox_binary_hr_matches_r_coxph() -> None:
    d = pd.read_csv(FIXTURES / "twin_cox_binary.csv", **ROUND_TRIP)
    hr, se = cox_binary_hr(d["t"].to_numpy(), d["e"].to_numpy(), d["x"].to_numpy())
    ref = _r_reference()["cox_binary"]
    assert hr == pytest.approx(ref["hr"], rel=1e-9)
    assert se == pytest.approx(ref["se"], rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_km_median_matches_r_survfit(seed: int) -> None:
    d = pd.read_csv(FIXTURES / "twin_km_median.csv", **ROUND_TRIP)
    d = d[d["sample"] == seed]
    assert km_median(d["t"].to_numpy(), d["e"].to_numpy()) == pytest.approx(
        _r_reference()["km_median"][str(seed)], rel=1e-12)


def test_km_median_r_convention_at_exactly_half() -> None:
    # 4 deaths, no censoring: S = 0.5 on [2, 3): R's survfit reports (2 + 3) / 2
    assert km_median(np.array([1.0, 2.0, 3.0, 4.0]), np.ones(4)) == 2.5
    assert np.isnan(km_median(np.array([1.0, 2.0]), np.array([0, 0])))


def test_calibration_20_seeds_meets_targets() -> None:
    cal = calibration(20)
    assert list(cal.columns) == ["quantity", "target", "twin_median", "twin_p10", "twin_p90",
                                 "tolerance", "mcse", "passed", "source"]
    failed = cal.loc[~cal["passed"], ["quantity", "target", "twin_median"]]
    assert failed.empty, failed.to_string()


@pytest.mark.slow
def test_calibration_200_seeds_meets_targets() -> None:
    cal = calibration(200)
    failed = cal.loc[~cal["passed"], ["quantity", "target", "twin_median"]]
    assert failed.empty, failed.to_string()


def test_calibration_rejects_bad_n_seeds() -> None:
    with pytest.raises(SpecError) as exc:
        calibration(1)
    assert str(exc.value) == "calibration: n_seeds must be an integer >= 2 (got 1)"

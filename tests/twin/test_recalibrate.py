"""The twin re-fitted for a non-null effect (issue 20 item 5): the paper's medians and Table 1 hold for any true_hr."""
from __future__ import annotations


import numpy as np
import pytest

from causal_hcc.twin import TwinParams, calibration, simulate_twin
from causal_hcc.twin import recalibrate as R


def test_null_twin_is_not_touched():
    p = TwinParams()
    assert R.resolve(p) is p and R.recalibration_note(p) is None
    # the default cohort is the one of before (tests/twin/test_twin.py pins its hash)
    q = TwinParams(true_hr=1.0, seed=5)
    assert R.resolve(q) is q


def test_a_spec_that_sets_a_lever_gets_its_twin_as_written():
    p = TwinParams(true_hr=0.7, unmeasured_confounding=0.0)          # configs/twin_effect.yaml
    q = R.resolve(p)
    assert q.unmeasured_confounding == 0.0 and q.u_surgery_log_or == p.u_surgery_log_or
    assert q.death_rate_progressed == p.death_rate_progressed and not q.recalibrate
    assert "the spec sets unmeasured_confounding" in R.recalibration_note(p)
    off = TwinParams(true_hr=0.7, recalibrate=False)
    assert R.resolve(off) is off and "recalibrate: false" in R.recalibration_note(off)


def test_resolved_parameters_are_used_by_simulate_and_are_idempotent():
    p = TwinParams(true_hr=0.7, seed=3)
    q = R.resolve(p)
    assert not q.recalibrate and R.resolve(q) is q
    assert set(R.LEVERS) <= set(q.model_dump())
    a = simulate_twin(p)
    b = simulate_twin(q)
    assert a.equals(b)
    # covariates are never re-solved: same patients as the null twin of that seed
    null = simulate_twin(TwinParams(seed=3))
    covs = ["age", "male", "oligometastases", "bone_met", "centre", "era"]
    assert a[covs].equals(null[covs])


@pytest.mark.parametrize("hr", [0.4, 0.7, 1.2])
def test_recalibrated_twin_keeps_the_null_medians(hr):
    """On the calibration population the four medians of the re-solved twin are those of the null twin."""
    ref = R.observed_medians(TwinParams())
    got = R.observed_medians(R.resolve(TwinParams(true_hr=hr)))
    assert np.all(np.abs(got - ref) < 0.35), (hr, got, ref)
    # without re-solving, the operated group's median OS moves by months
    raw = R.observed_medians(TwinParams(true_hr=hr, recalibrate=False))
    assert abs(raw[0] - ref[0]) > 0.5


def test_stored_solutions_match_their_parameters():
    assert R.SOLVED, "the default twin's solutions are stored"
    assert R._SOLVED_BASE_KEY == R._base_key(TwinParams(true_hr=0.7))
    for hr in (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.1, 1.2):
        assert hr in R.SOLVED


@pytest.mark.slow
@pytest.mark.parametrize("hr", [0.4, 0.7, 1.2])
def test_stored_solutions_are_current(hr):
    """A fresh solve gives the stored solution (re-run after changing the twin's defaults)."""
    fresh = R.solve(TwinParams(true_hr=hr))
    assert fresh == pytest.approx(R.SOLVED[hr], rel=1e-3, abs=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("hr", [0.4, 0.7, 1.0, 1.2])
def test_calibration_1000_seeds_passes_every_target(hr):
    """``causal-hcc twin --calibration --true-hr HR --seeds 1000``: every target within its stated tolerance."""
    cal = calibration(1000, TwinParams(true_hr=hr))
    failed = cal.loc[~cal["passed"], ["quantity", "target", "twin_median", "tolerance", "mcse"]]
    assert failed.empty, failed.to_string()


@pytest.mark.slow
def test_cli_calibration_at_true_hr_07(tmp_path):
    from typer.testing import CliRunner

    from causal_hcc.cli import app

    out = CliRunner().invoke(app, ["twin", "--calibration", "--true-hr", "0.7", "--seeds", "1000"])
    assert out.exit_code == 0, out.output
    lines = [ln for ln in out.output.splitlines() if ln.strip().startswith(("operated", "median_", "pct_"))]
    assert len(lines) == 42 and all(" True " in ln for ln in lines), out.output

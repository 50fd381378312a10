"""Disclosure control: bounded curves on a data-independent grid, no count of 1..min_cell-1 patients
anywhere in a run's output folder, and no patient row recoverable from it."""
from __future__ import annotations

import base64
import json
import math
import os
import re

import numpy as np
import pandas as pd
import pytest

from causal_hcc.core.km import kaplan_meier
from causal_hcc.disclosure import (GRID_POINTS, grid_curves, grid_times, suppress, suppress_text)
from causal_hcc.results import CURVE_COLUMNS, AnalysisResult, EffectEstimate, StrategyRecord, SurvivalCurves


def _km_curves(n: int, seed: int = 0, method: str = "km") -> tuple[SurvivalCurves, dict]:
    rng = np.random.default_rng(seed)
    parts, raw = [], {}
    for g in ("untreated", "treated"):
        t = np.round(rng.exponential(20, n), 4) + 1e-4
        e = (rng.uniform(size=n) < 0.7).astype(int)
        f = kaplan_meier(t, e)
        raw[g] = (t, e, f)
        parts.append(pd.DataFrame({"time": f.time, "group": g, "surv": f.surv, "se": f.se_surv,
                                   "ci_lower": f.lower, "ci_upper": f.upper, "n_at_risk": f.n_risk}))
    return SurvivalCurves(pd.concat(parts, ignore_index=True), method=method), raw


# ---------------------------------------------------------------------------
# the grid
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("tmax", [0.7, 13.2, 51.58, 1234.5])
def test_grid_is_round_and_bounded(tmax):
    grid, ticks = grid_times(tmax, extra=(12.0, 24.0, 36.5))
    base = [g for g in grid if g not in (12.0, 24.0, 36.5)]
    assert len(base) <= GRID_POINTS
    assert ticks[0] == 0 and ticks[-1] >= tmax
    assert set(np.round(ticks, 9)) <= set(np.round(grid, 9))  # every risk-table time is a grid time
    step = np.diff(np.unique(np.r_[np.round(base, 9), ticks]))
    assert np.allclose(step, step[0], rtol=1e-6)  # equally spaced: nothing about patient times


def test_grid_values_are_the_step_function():
    curves, raw = _km_curves(3000)
    g = grid_curves(curves, extra_times=(12.0, 24.0), min_cell=0)
    tab = g.table
    for arm, (t, e, f) in raw.items():
        part = tab[tab["group"] == arm]
        assert len(part) <= GRID_POINTS + 2
        assert {12.0, 24.0} <= set(part["time"])
        ok = part["surv"].notna().to_numpy()
        gt = part["time"].to_numpy()[ok]
        i = np.searchsorted(f.time, gt, side="right") - 1
        want = np.where(i < 0, 1.0, f.surv[np.clip(i, 0, None)])
        np.testing.assert_allclose(part["surv"].to_numpy()[ok], want, rtol=0, atol=0)
        assert np.isnan(part["surv"].to_numpy()[part["time"].to_numpy() > f.time[-1]]).all()
    # the requested times carry exactly the survival the estimates use
    t, e, f = raw["treated"]
    s12 = f.surv[np.searchsorted(f.time, 12.0, side="right") - 1]
    assert tab[(tab["group"] == "treated") & (tab["time"] == 12.0)]["surv"].item() == s12


def test_grid_curve_stops_below_min_cell_and_risk_table_rules():
    curves, raw = _km_curves(40, seed=3)
    g = grid_curves(curves, min_cell=5)
    for arm, (t, e, f) in raw.items():
        part = g.table[g.table["group"] == arm]
        shown = part.dropna(subset=["surv"])
        at_risk = np.array([(t >= x).sum() for x in shown["time"]])
        assert (at_risk >= 5).all()  # the curve is cut where fewer than 5 remain
        ticks = part[part["time"].isin(g.risk_times)]
        nr = ticks["n_at_risk"].dropna().to_numpy()
        assert not ((nr > 0) & (nr < 5)).any()
        d = np.abs(np.diff(nr))
        assert not ((d > 0) & (d < 5)).any()  # no small count by subtraction either
        txt = ticks["n_at_risk_text"].tolist()
        assert all(x in ("<5", "*", "0") or int(x) >= 5 for x in txt)


def test_grid_leaves_a_gridded_curve_alone_and_weighted_counts_are_counts():
    curves, _ = _km_curves(60, seed=4, method="iptw-km")
    tab = curves.table.assign(n_at_risk=curves.table["n_at_risk"] * 0.93)
    g = grid_curves(SurvivalCurves(tab, method="iptw-km"), min_cell=5)
    assert grid_curves(g, min_cell=5) is g
    texts = g.table["n_at_risk_text"][g.table["n_at_risk_text"] != ""]
    assert all(x == "<5" or int(x) % 5 == 0 for x in texts)  # weighted numbers are rounded like counts
    nr = g.table["n_at_risk"].dropna()
    assert not ((nr > 0) & (nr < 5)).any() and (nr % 5 == 0).all()
    # unrounded (min_cell 0): weighted numbers keep a decimal
    g0 = grid_curves(SurvivalCurves(tab, method="iptw-km"), min_cell=0)
    assert any("." in x for x in g0.table["n_at_risk_text"] if x)


# ---------------------------------------------------------------------------
# counts
# ---------------------------------------------------------------------------
def test_suppress_counts_histograms_flows_and_nesting():
    d = {"flow": [["patients in cohort", 150], ["treated (ever)", 3]], "events": {"os": 3, "pfs": 42},
         "weights": {"bins": [0.0, 1.0, 2.0, 3.0], "counts": [140, 7, 3], "max": 2.5},
         "cox": {"n_iter": 3}, "bootstrap": {"replicates": 4, "failed": 2},
         "trials": {"treated": [3, 8], "start": [0.5, 1.0]}, "matching": {"matched_treated": 2, "ratio": 1},
         "events_treated": 7, "events_untreated": 18, "n_parameters": 2, "events_per_variable": 12.5,
         "events_per_variable_smaller_arm": 3.5}
    out = suppress(d, 5)
    assert out["flow"] == [["patients in cohort", 150], ["treated (ever)", "<5"]]
    # flow steps are rounded, never hidden for being close to another: their differences are multiples of 5
    assert suppress({"flow": [["a", 150], ["b", 3], ["c", 147], ["d", 143]]}, 5)["flow"] == \
        [["a", 150], ["b", "<5"], ["c", 145], ["d", 145]]
    assert out["events"] == {"os": "<5", "pfs": 40}
    assert out["weights"]["counts"] == [140, 5, "<5"] and out["weights"]["max"] == 2.5
    assert out["cox"] == {"n_iter": 3} and out["bootstrap"] == {"replicates": 4, "failed": 2}
    assert out["trials"] == {"treated": ["<5", 10], "start": [0.5, 1.0]}
    assert suppress({"eligible": [149, 142, 138, 136]}, 5) == {"eligible": [150, 140, 140, 135]}
    assert out["matching"] == {"matched_treated": "<5", "ratio": 1}
    # events per variable from the rounded events (an exact EPV times k is the exact count)
    assert (out["events_treated"], out["events_untreated"], out["n_parameters"]) == (5, 20, 2)
    assert out["events_per_variable"] == 12.5 and out["events_per_variable_smaller_arm"] == 2.5
    assert suppress(d, 0) is d
    assert d["events"]["os"] == 3  # the input is not modified
    # large counts stay visible: 183 at risk is shown as 185, never hidden
    assert suppress({"n_at_risk": [183, 181, 52]}, 5) == {"n_at_risk": [185, 180, 50]}


@pytest.mark.parametrize("v, m, shown", [(0, 5, 0), (1, 5, "<5"), (4, 5, "<5"), (5, 5, 5), (7, 5, 5), (8, 5, 10),
                                         (183, 5, 185), (182, 5, 180), (12.5, 5, 15), (4.9, 5, "<5"), (3, 0, 3),
                                         (3, 1, 3), (183, 10, 180), (185, 10, 190), ("x", 5, "x"), (None, 5, None)])
def test_round_count(v, m, shown):
    from causal_hcc.disclosure import round_count

    assert round_count(v, m) == shown


@pytest.mark.parametrize("text, expected", [
    ("complete-case analysis: 2 rows with missing confounders dropped",
     "complete-case analysis: <5 rows with missing confounders dropped"),
    ("landmark at 1: 4 treated by 1 vs 138 not", "landmark at 1: <5 treated by 1 vs 138 not"),
    ("adjustment 'iptw': 3 of 150 propensity scores", "adjustment 'iptw': <5 of 150 propensity scores"),
    ("1 treated patients had the event before the landmark", "<5 treated patients had the event before the landmark"),
    ("SE: SD of 3 whole-pipeline bootstrap replicates (seed 1)",
     "SE: SD of 3 whole-pipeline bootstrap replicates (seed 1)"),
    ("22 near 0/1", "20 near 0/1"),
    ("17 rows with missing confounders dropped", "15 rows with missing confounders dropped"),
    ("adjustment 'iptw': 13 of 148 propensity scores", "adjustment 'iptw': 15 of 150 propensity scores"),
    ("few events per variable (2.3 < 10) in the Cox model (7 events in the treated arm, 2.3 per parameter)",
     "few events per variable (<10) in the Cox model (5 events in the treated arm, <10 per parameter)"),
])
def test_suppress_text(text, expected):
    assert suppress_text(text, 5) == expected


def test_estimate_counts_are_empty_cells_and_untreated_by_subtraction():
    est = [EffectEstimate("hr", 0.8, n=150, n_treated=3, events=42),
           EffectEstimate("hr", 0.8, n=150, n_treated=147, events=2),
           EffectEstimate("hr", 0.8, n=148, n_treated=26, events=77)]
    res = AnalysisResult("s", {}, [StrategyRecord("a", "baseline", "none", "os", est)], min_cell=5)
    df = res.estimates_frame()
    assert df["n_treated"].isna().tolist() == [True, True, False] and df["events"].isna().tolist() == [False, True,
                                                                                                        False]
    assert df["n"].tolist() == [150, 150, 150] and df["events"].tolist()[::2] == [40, 75]
    assert df["n_treated"].tolist()[2] == 25
    assert res.estimates[0].n_treated == 3  # in memory the exact counts stay


# ---------------------------------------------------------------------------
# size
# ---------------------------------------------------------------------------
def test_results_json_is_small_at_a_million_rows(tmp_path):
    rng = np.random.default_rng(1)
    n = 500_000
    parts = []
    for g in ("untreated", "treated"):
        t = np.sort(rng.exponential(20, n))
        s = np.exp(-t / 20)
        parts.append(pd.DataFrame({"time": t, "group": g, "surv": s, "se": 0.001 * s, "ci_lower": s - 0.002,
                                   "ci_upper": s + 0.002, "n_at_risk": np.arange(n, 0, -1, dtype=float)}))
    cur = SurvivalCurves(pd.concat(parts, ignore_index=True))
    recs = [StrategyRecord(f"s{i}", "baseline", "none", "os", [EffectEstimate("hr", 0.9)], cur) for i in range(4)]
    res = AnalysisResult("big", {"estimands": {"survival_at": [12.0, 24.0], "rmst_tau": 24.0}}, recs, min_cell=5)
    text = json.dumps(res.to_dict(), allow_nan=False)
    assert len(text) < 100_000  # and < 5 MB at any n: no table in the JSON
    (tmp_path / "results.json").write_text(text)
    res.write_curves(str(tmp_path))
    assert os.path.getsize(tmp_path / "curves.parquet") < 200_000
    back = AnalysisResult.load(str(tmp_path))
    for r0, r1 in zip(res.disclosed().records, back.records):
        pd.testing.assert_frame_equal(r0.curves.table.reset_index(drop=True), r1.curves.table, check_dtype=False)
        assert r1.curves.risk_times == r0.curves.risk_times
    assert back.is_disclosed and back.min_cell == 5


# ---------------------------------------------------------------------------
# min_cell default
# ---------------------------------------------------------------------------
def test_min_cell_default_depends_on_the_data_source():
    from causal_hcc.config import parse_spec

    base = {"study": "s", "roles": {"id": "id", "time": "t", "event": "e", "treatment": "a"}, "strategies": ["naive"]}
    assert parse_spec({**base, "data": {"path": "twin"}}).min_cell == 0
    assert parse_spec({**base, "data": {"path": "x.csv"}}).min_cell == 5
    assert parse_spec({**base, "data": {"path": "x.csv"}, "report": {"min_cell": 0}}).min_cell == 0
    assert parse_spec({**base, "data": {"path": "twin"}, "report": {"min_cell": 3}}).min_cell == 3


# ---------------------------------------------------------------------------
# the whole output folder at n = 150 on the twin
# ---------------------------------------------------------------------------
#: keys whose small integers are not counts of patients
NOT_COUNTS = {"n_iter", "df", "seed", "replicates", "failed", "shared_with", "ratio", "min_cell", "landmark",
              "grace", "true_hr", "suppressed", "record", "curve_grid_points", "alpha", "n_jobs", "m",
              "followup_beta_a", "followup_beta_b", "surgery_delay_shape", "true_hr_progression", "hr",
              "evalue_ci", "evalue", "time", "rmst_tau", "survival_at", "monte_carlo", "estimate", "ci_lower",
              "ci_upper", "top5", "max", "min", "bins", "edges", "variance_ratio_before", "variance_ratio_after",
              "surv", "operate_when_eligible", "never_operate", "hr_structural", "window", "grid", "start", "coef",
              "smd_before", "smd_after", "caliper_sd", "caliper_logit", "marker_format", "size", "n_parameters",
              "n_clusters"}
TEXT_COUNT = re.compile(r"(?<![\w.<])([1-4])[ ]+(?:[a-z]+[ ]+)?(?:patients?|rows?|treated|untreated|events?|excluded|"
                        r"eligible|matched|of\s+\d+)\b")

SPEC = """
study: disclosure
data: {{path: twin, twin: {{seed: 2030}}}}
roles: {{id: id, time: os_months, event: os_event, treatment: surgery, treatment_time: months_to_surgery}}
outcomes: {{pfs: {{time: pfs_months, event: pfs_event}}}}
confounders: [portal_vein_invasion, first_line_effective, oligometastases, bone_met, lung_met]
strategies:
  - paper
  - naive
  - {{name: psm, caliper: 0.2}}
  - {{name: iptw, estimand: ATE}}
  - {{name: landmark, landmark: [1, 3]}}
  - {{design: landmark, adjustment: iptw, landmark: 3, estimand: ATO}}
  - time_varying
  - sequential_trials
  - {{name: clone_censor, grace: 6}}
on_error: record
estimands: {{survival_at: [12, 24], rmst_tau: 24}}
bootstrap: {{replicates: 0}}
sensitivity: {{evalues: true}}
report: {{min_cell: 5, formats: [html, md]}}
output: {out}
"""


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    from causal_hcc.config import load_spec
    from causal_hcc.pipeline import run_analysis, write_outputs

    tmp = tmp_path_factory.mktemp("disc")
    if os.environ.get("DISCLOSURE_KEEP"):  # debugging: keep the folder where it can be read
        tmp = type(tmp)(os.environ["DISCLOSURE_KEEP"])
        tmp.mkdir(parents=True, exist_ok=True)
    out = tmp / "out"
    (tmp / "spec.yaml").write_text(SPEC.format(out=out))
    spec = load_spec(tmp / "spec.yaml")
    result = run_analysis(spec)
    write_outputs(result, str(out), formats=("html", "md"))
    from causal_hcc.twin import TwinParams, simulate_twin

    df = simulate_twin(TwinParams.from_spec({"seed": 2030}))
    return out, df, result


def _walk_small_ints(obj, path=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk_small_ints(v, f"{path}/{k}")
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk_small_ints(v, path + "[]")
    elif isinstance(obj, int) and not isinstance(obj, bool) and 1 <= obj <= 4:
        yield path
    elif isinstance(obj, str) and TEXT_COUNT.search(obj):
        yield f"{path}: {obj!r}"


def _key(path: str) -> str:
    return re.sub(r"\[\]$", "", path.rsplit("/", 1)[-1]).split(":")[0].replace("[]", "")


def test_every_file_holds_no_count_of_1_to_4(run_folder):
    out, _, _ = run_folder
    files = sorted(os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs)
    assert {"results.json", "estimates.csv", "curves.parquet", "truth.json", "report.html", "report.md"} <= set(files)
    seen = set()
    for name in files:
        p = os.path.join(out, name)
        seen.add(name)
        if name.endswith(".json") or name == ".causal_hcc-output":  # the folder's marker is a JSON stamp
            bad = [x for x in _walk_small_ints(json.load(open(p))) if _key(x) not in NOT_COUNTS
                   and "/spec/" not in x and not x.startswith("/truth") and "/provenance/" not in x]
            assert not bad, (name, bad[:10])
        elif name.endswith(".csv"):
            df = pd.read_csv(p)
            for c in ("n", "n_treated", "events"):
                v = pd.to_numeric(df[c], errors="coerce")
                assert not v.between(1, 4).any(), (name, c)
        elif name.endswith(".parquet"):
            df = pd.read_parquet(p)
            nr = df["n_at_risk"].dropna()
            assert not ((nr > 0) & (nr < 5)).any()
            assert not df["n_at_risk_text"].isin(["1", "2", "3", "4"]).any()
            for _, g in df.dropna(subset=["n_at_risk"]).groupby(["record", "group"]):
                d = np.abs(np.diff(g.sort_values("time")["n_at_risk"].to_numpy()))
                assert not ((d > 0) & (d < 5)).any(), name
        elif name.endswith((".md", ".html")):
            text = open(p, encoding="utf-8").read()
            text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)
            hits = [m.group(0) for m in TEXT_COUNT.finditer(re.sub(r"<[^>]+>", " | ", text))]  # not across cells
            assert not hits, (name, hits[:10])
            # numbers at risk in the absolute-risk table are printed in brackets
            assert not re.search(r"%\) \[[1-4](\.\d+)?\]", text), name  # "34.9% (5.60 to 55.1%) [71.0]"
            sec = re.search(r"^## (?:\d+\. )?The cohort\n", text, re.M)
            if name.endswith(".md"):
                assert sec, "the report's cohort section moved: update this test"
                # Table 1 cells and flow steps: no bare 1-4 in a count cell or after a step
                cohort = text[sec.end():].split("\n## ")[0]
                assert not re.search(r"\|\s*[1-4](\s*\(|\s*\|)", cohort), cohort
                assert not re.search(r"(?<![\w.<])[1-4] (→|$)", cohort, re.M), cohort
        elif name.endswith(".png"):
            assert open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n"  # drawn from the disclosed result (below)
        else:
            raise AssertionError(f"unexpected file {name}: extend this test")
    assert any(f.startswith("figures/") for f in seen)


def test_figures_are_drawn_from_suppressed_numbers(run_folder):
    """The PNGs are drawn by build_context from AnalysisResult.disclosed(): check the texts it draws."""
    from causal_hcc.report import figures as F
    from causal_hcc.report.figures import new_figure

    _, _, result = run_folder
    disc = result.disclosed()
    for rec in disc.records:
        if rec.curves is None:
            continue
        fig = new_figure(5, 4)
        ax = F.plot_curves(disc, ax=fig.add_subplot(111), record=rec)
        texts = [t.get_text() for t in ax.texts]
        assert not [t for t in texts if re.fullmatch(r"[1-4](\.\d+)?", t)], (rec.strategy, texts)
        for k in ("propensity", "weights"):
            if isinstance(rec.diagnostics.get(k), dict):
                d = rec.diagnostics[k]
                vals = [v for key in ("treated", "untreated", "counts") for v in d.get(key, [])]
                assert not [v for v in vals if isinstance(v, int) and 1 <= v <= 4]


def test_no_patient_row_can_be_rebuilt(run_folder):
    """An attacker with every output file tries to rebuild (arm, time, event) per patient.

    Curve jumps give the grid interval of the events, numbers at risk are only
    shown at the risk-table times (suppressed where small), and no exact
    patient time is stored in the curves: no patient's exact time, hence no
    row, is recovered.
    """
    out, df, result = run_folder
    curves = pd.read_parquet(out / "curves.parquet")
    times = set(np.round(df["os_months"], 9)) | set(np.round(df["pfs_months"], 9))
    # 1. every curve time is a grid time (round, equally spaced) or a requested time, not a patient's
    for _, g in curves.groupby(["record", "group"]):
        t = np.sort(g["time"].unique())
        base = t[~np.isin(t, [12.0, 24.0])]
        assert len(base) <= GRID_POINTS
        assert np.allclose(np.diff(base), np.diff(base)[0], rtol=1e-6)
    assert not (set(np.round(curves["time"], 9)) - {12.0, 24.0}) & times
    # 2. Guyot-style reconstruction: one event per drop of the curve, at the drop's grid time
    rebuilt = []
    for (rec, grp), g in curves.groupby(["record", "group"]):
        g = g.sort_values("time")
        s = g["surv"].to_numpy()
        drops = np.flatnonzero(np.diff(s) < -1e-12) + 1
        rebuilt += [(grp, float(g["time"].iloc[i]), 1) for i in drops]
    truth_rows = {("treated" if a else "untreated", round(float(t), 9), int(e))
                  for a, t, e in zip(df["surgery"], df["os_months"], df["os_event"])}
    assert rebuilt  # the attack found curve drops to work with
    hits = [r for r in rebuilt if (r[0], round(r[1], 9), r[2]) in truth_rows]
    assert not hits
    # 3. no exact patient time in the JSON outside the conventional summary statistics
    #    (medians and their CIs, which every survival paper publishes)
    res = json.load(open(out / "results.json"))

    def floats(obj, path=""):
        if isinstance(obj, dict):
            for k, v in obj.items():
                yield from floats(v, f"{path}/{k}")
        elif isinstance(obj, list):
            for v in obj:
                yield from floats(v, path)
        elif isinstance(obj, float):
            yield path, obj

    leaked = [(p, v) for p, v in floats({"records": res["records"], "cohort": res["cohort"]})
              if round(v, 9) in times and v not in (12.0, 24.0) and "/medians/" not in p
              and "/estimates" not in p and "/table1/" not in p]
    assert not leaked, leaked[:10]


# ---------------------------------------------------------------------------
# issue 22 item 7: an attacker with curve steps, SE increments and cross-row differences, at n = 150
# ---------------------------------------------------------------------------
ATTACK_SPEC = """
study: attack
data: {{path: {data}}}
roles: {{id: id, time: os_months, event: os_event, treatment: surgery, treatment_time: months_to_surgery}}
confounders: [portal_vein_invasion, first_line_effective, oligometastases]
strategies:
  - naive
  - {{name: iptw, estimand: ATE}}
  - {{name: landmark, landmark: [1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 5.5, 6]}}
estimands: {{survival_at: [{times}], rmst_tau: 24}}
bootstrap: {{replicates: 0}}
report: {{formats: [md]}}
"""


def attack(out) -> dict:
    """What an attacker reads from the output folder alone.

    1. Curve steps and SE increments: for each step of a Kaplan-Meier curve,
       q = 1 - S_k / S_k-1 and v = (se_k / S_k)^2 - (se_k-1 / S_k-1)^2 (the
       Greenwood increment d / (n (n - d))) give n = q / (v (1 - q)) and
       d = q n: the deaths in the grid interval and the number at risk.
    2. Cross-row differences of the counts in estimates.csv between
       consecutive landmarks (who left the risk set in between).
    3. The numbers at risk under the curves.
    """
    curves = pd.read_parquet(os.path.join(out, "curves.parquet"))
    res = json.load(open(os.path.join(out, "results.json")))
    steps = []
    for (rec, grp), g in curves.groupby(["record", "group"]):
        r = res["records"][int(rec)]
        if r["curves"]["method"] != "km":
            continue
        g = g.dropna(subset=["surv", "se"]).sort_values("time")
        t, s, se = (g[c].to_numpy(float) for c in ("time", "surv", "se"))
        for k in range(1, len(t)):
            if s[k] < s[k - 1] - 1e-12 and s[k] > 0:
                q = 1 - s[k] / s[k - 1]
                v = (se[k] / s[k]) ** 2 - (se[k - 1] / s[k - 1]) ** 2
                if v > 1e-15:
                    n = q / (v * (1 - q))
                    steps.append({"record": int(rec), "strategy": r["strategy"], "group": grp, "t0": t[k - 1],
                                  "t1": t[k], "d": q * n, "n": n, "origin": r["curves"]["time_origin"]})
    est = pd.read_csv(os.path.join(out, "estimates.csv"))
    lm = est[est["design"] == "landmark"].copy()
    lm["L"] = lm["strategy"].str.extract(r"landmark\(([\d.]+)\)")[0].astype(float)
    diffs = []
    for _, g in lm[lm["measure"] == "hr"].sort_values("L").groupby("outcome"):
        for c in ("n", "n_treated", "events"):
            x = pd.to_numeric(g[c], errors="coerce").to_numpy(float)
            diffs += [abs(a - b) for a, b in zip(x[:-1], x[1:]) if np.isfinite(a) and np.isfinite(b)]
    texts = curves["n_at_risk_text"][curves["n_at_risk_text"] != ""].tolist()
    return {"steps": steps, "diffs": diffs, "texts": texts}


def _multiple(x: float, base: int) -> bool:
    return abs(x / base - round(x / base)) < 1e-6


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    from causal_hcc.twin import TwinParams, simulate_twin

    tmp = tmp_path_factory.mktemp("attack")
    df = simulate_twin(TwinParams.from_spec({"seed": 2030}))
    assert len(df) == 150
    df.to_csv(tmp / "cohort.csv", index=False)  # a user's file: the default min_cell (5) applies
    times = ", ".join(str(t) for t in range(1, 21))  # 20 survival_at times (the most allowed)
    (tmp / "spec.yaml").write_text(ATTACK_SPEC.format(data=tmp / "cohort.csv", times=times))
    from causal_hcc.cli import app
    from typer.testing import CliRunner

    r = CliRunner().invoke(app, ["run", str(tmp / "spec.yaml"), "--output", str(tmp / "out"), "-q"])
    assert r.exit_code == 0, r.stderr
    return tmp / "out", df


def _true_window(df, arm: str, t0: float, t1: float, origin: float) -> tuple[int, int]:
    """(deaths in (t0, t1], number at risk just after t0) of an arm of the naive KM, from the data."""
    a = df["surgery"].to_numpy() == (1 if arm == "treated" else 0)
    t = df["os_months"].to_numpy(float)[a] - origin
    e = df["os_event"].to_numpy()[a]
    return int(((t > t0) & (t <= t1) & (e == 1)).sum()), int((t > t0).sum())


def test_step_se_and_cross_row_attacker(attacked):
    """Issue 22 item 7: the attacker recovers nothing finer than the rounding base (5) at n = 150.

    Before the rounding (curves at exact grid values, exact Greenwood SE, exact counts), the same attacker
    read the deaths of most grid intervals with their exact number at risk, and consecutive landmark rows
    differed by 1-4 patients (docs/disclosure.md gives the numbers).
    """
    out, df = attacked
    a = attack(out)
    assert len(a["steps"]) > 20  # the curves have steps to attack
    # 1. every death count and number at risk read from a step is a multiple of 5
    assert all(_multiple(s["d"], 5) for s in a["steps"]), [round(s["d"], 3) for s in a["steps"]][:20]
    assert all(_multiple(s["n"], 5) for s in a["steps"]), [round(s["n"], 3) for s in a["steps"]][:20]
    # ... so nothing finer than 5 is learnt: no step of the naive KM gives the true deaths and number at risk
    # of its interval unless both happen to be multiples of 5 themselves
    naive = [s for s in a["steps"] if s["strategy"] == "naive"]
    assert naive
    exact = [s for s in naive if (_true_window(df, s["group"], s["t0"], s["t1"], s["origin"])
                                  == (round(s["d"]), round(s["n"])))
             and not all(_multiple(v, 5) for v in _true_window(df, s["group"], s["t0"], s["t1"], s["origin"]))]
    assert not exact, exact[:5]
    # 2. cross-row differences of the landmark sweep are multiples of 5 (the exact ones differ by 1-4 often)
    assert a["diffs"] and all(_multiple(d, 5) for d in a["diffs"])
    # 3. numbers at risk: multiples of 5 or "<5"; nothing hidden for being close to another number
    assert all(x == "<5" or int(x) % 5 == 0 for x in a["texts"]), a["texts"][:20]


def test_no_count_of_50_or_more_is_hidden(attacked):
    out, df = attacked
    curves = pd.read_parquet(out / "curves.parquet")
    res = json.load(open(out / "results.json"))
    text = json.dumps(res)
    assert ': "suppressed"' not in text and "*" not in set(curves["n_at_risk_text"])  # (no value hidden for
    # being close to another count: rounding replaced that rule)
    naive = res["records"].index(next(r for r in res["records"] if r["strategy"] == "naive"))
    for grp, g in curves[(curves["record"] == naive) & (curves["n_at_risk_text"] != "")].groupby("group"):
        arm = df["surgery"].to_numpy() == (1 if grp == "treated" else 0)
        for t, txt in zip(g["time"], g["n_at_risk_text"]):
            true = int((df["os_months"].to_numpy(float)[arm] >= t).sum())
            if true >= 5:
                assert txt != "<5" and abs(int(txt) - true) <= 2, (grp, t, txt, true)
            else:
                assert txt in ("<5", "0")
    est = pd.read_csv(out / "estimates.csv")
    for c in ("n", "n_treated", "events"):  # every count of 5 or more is shown (rounded), none left empty
        v = pd.to_numeric(est[c], errors="coerce")
        assert v.notna().all() or c == "n_treated"


def test_survival_rows_at_user_times_follow_the_rule_across_rows(attacked):
    """20 survival_at times: a row is shown only if every arm had 0 or >= 5 deaths since the previous shown
    row (of the naive KM, checked against the data); withheld rows are empty and say why."""
    out, df = attacked
    est = pd.read_csv(out / "estimates.csv")
    res = json.load(open(out / "results.json"))
    rows = est[(est["strategy"] == "naive") & (est["measure"] == "survival_difference")].sort_values("time")
    assert len(rows) == 20
    shown = rows[rows["estimate"].notna()]["time"].tolist()
    assert 0 < len(shown) < 20  # some are withheld at n = 150, not all
    prev = 0.0
    for t in shown:
        for arm in ("treated", "untreated"):
            d, _ = _true_window(df, arm, prev, t, 0.0)
            assert d == 0 or d >= 5, (prev, t, arm, d)
        prev = t
    notes = next(r for r in res["records"] if r["strategy"] == "naive")["notes"]
    assert any("withheld" in n for n in notes)


def test_cumulative_incidence_curves_from_rounded_counts():
    """Competing risks (SurvivalCurves.kind == "cumulative_incidence"): each step of a published CIF is
    S(g-) d / n with d and n multiples of 5 (rounded cause-specific events, rounded risk set); no pointwise SE
    is published under rounding; with min_cell 0 the values are the Aalen-Johansen step function's."""
    from causal_hcc.core.cmprsk import aalen_johansen

    rng = np.random.default_rng(7)
    parts, raw = [], {}
    for arm in ("untreated", "treated"):
        n = 150
        t = np.round(rng.exponential(20, n), 3) + 1e-3
        status = rng.choice([0, 1, 2], n, p=[0.3, 0.5, 0.2])
        f = aalen_johansen(t, status, causes=(1, 2))
        raw[arm] = (t, status)
        for k, c in enumerate((1, 2)):
            parts.append(pd.DataFrame({"time": np.r_[0.0, f.time], "group": f"{arm}: cause {c}",
                                       "surv": np.r_[0.0, f.cif[:, k]], "se": np.r_[0.0, f.std_err[:, k]],
                                       "ci_lower": np.nan, "ci_upper": np.nan,
                                       "n_at_risk": np.r_[float(n), f.n_risk]}))
    cur = SurvivalCurves(pd.concat(parts, ignore_index=True), method="aalen-johansen", kind="cumulative_incidence")
    g0 = grid_curves(cur, min_cell=0).table
    g5 = grid_curves(cur, min_cell=5).table
    assert g5["se"].isna().all()
    for arm, (t, status) in raw.items():
        F = {c: g5[g5["group"] == f"{arm}: cause {c}"].sort_values("time") for c in (1, 2)}
        grid = F[1]["time"].to_numpy()
        f1, f2 = F[1]["surv"].to_numpy(), F[2]["surv"].to_numpy()
        ok = np.isfinite(f1) & np.isfinite(f2)
        S_prev = np.r_[1.0, (1 - f1 - f2)[:-1]]
        prev = np.r_[-np.inf, grid[:-1]]
        Y = np.array([(t > p).sum() for p in prev], float)
        Yr = 5 * np.floor(Y / 5 + 0.5)
        for f in (f1, f2):
            d = np.diff(np.r_[0.0, f]) / S_prev * Yr
            d = d[ok & (S_prev > 0)]
            assert np.allclose(d / 5, np.round(d / 5), atol=1e-6), d[:10]
        # unrounded: the Aalen-Johansen step function read at the grid times
        f0 = g0[g0["group"] == f"{arm}: cause 1"].sort_values("time")
        full = cur.table[cur.table["group"] == f"{arm}: cause 1"]
        k = np.searchsorted(full["time"].to_numpy(), f0["time"].to_numpy(), side="right") - 1
        want = full["surv"].to_numpy()[k]
        got = f0["surv"].to_numpy()
        m = np.isfinite(got)
        np.testing.assert_allclose(got[m], want[m], rtol=0, atol=0)

"""logrank against R survival::survdiff."""
from __future__ import annotations

import numpy as np
import pytest

from causal_hcc.core import coxph, logrank
from causal_hcc.errors import DataError
from tests.core._fixtures import dataset, reference

REF = reference("logrank")


@pytest.mark.parametrize("name", sorted(REF))
def test_matches_survdiff(name):
    ref = REF[name]
    sp = ref["spec"]
    d = dataset(sp["data"])
    res = logrank(d[sp["time"]], d[sp["event"]], d[sp["group"]],
                  strata=d[sp["strata"]] if "strata" in sp else None)
    assert res.chi2 == pytest.approx(ref["chisq"], rel=1e-10)
    assert res.df == ref["df"]
    assert res.p == pytest.approx(ref["p"], rel=1e-8)
    k = np.asarray(ref["var"]).shape[0]
    # with strata R returns groups x strata matrices (flattened column-major by as.numeric): sum over strata
    np.testing.assert_allclose(res.observed, np.reshape(ref["observed"], (-1, k)).sum(0), rtol=1e-12)
    np.testing.assert_allclose(res.expected, np.reshape(ref["expected"], (-1, k)).sum(0), rtol=1e-10)
    np.testing.assert_allclose(res.var, np.reshape(ref["var"], (k, k)), rtol=1e-10, atol=1e-12)


def test_entry_without_ties_equals_breslow_score_test():
    # without tied event times the log-rank statistic is the Cox score test (any ties method)
    d = dataset("heart")
    first = d.groupby("id").head(1)
    t = first.stop.to_numpy() + np.arange(len(first)) * 1e-4  # break ties
    e = first.event.to_numpy()
    ent = -np.ones(len(first))
    x = first.surgery.to_numpy()
    res = logrank(t, e, x, entry=ent)
    fit = coxph(t, e, x, entry=ent, ties="breslow")
    assert res.chi2 == pytest.approx(fit.score_test, rel=1e-10)


def test_single_group_raises():
    with pytest.raises(DataError, match=r"^logrank: group has a single level \(np.int64\(1\)\); need at least two$|^logrank: group has a single level \(1\); need at least two$"):
        logrank([1.0, 2.0], [1, 1], [1, 1])

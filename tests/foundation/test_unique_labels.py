"""Strategy variants get distinct default labels; labels given in the spec are kept (duplicates among them fail)."""
from __future__ import annotations

import pytest

from causal_hcc.config import parse_spec
from causal_hcc.errors import SpecError

BASE = {"study": "x", "data": {"path": "twin"},
        "roles": {"id": "id", "time": "os_months", "event": "os_event", "treatment": "surgery"}}


def labels(strategies):
    return [s.label for s in parse_spec({**BASE, "strategies": strategies}).resolved_strategies()]


@pytest.mark.parametrize("strategies, expected", [
    ([{"name": "psm", "caliper": 0.2}, {"name": "psm", "caliper": 0.2, "exact": ["bone_met"]}],
     ["psm(1:1, caliper 0.2)", "psm(1:1, caliper 0.2)[exact=bone_met]"]),
    ([{"name": "multivariable"}, {"name": "multivariable", "variance": "bootstrap"}],
     ["multivariable[variance=default]", "multivariable[variance=bootstrap]"]),
    (["naive", "naive"], ["naive", "naive#2"]),
    ([{"name": "naive", "label": "iptw(ATE)"}, {"name": "iptw", "estimand": "ATE"}], ["iptw(ATE)", "iptw(ATE)#2"]),
    ([{"name": "iptw", "estimand": "ATE"}, {"name": "iptw", "estimand": "ATT"}], ["iptw(ATE)", "iptw(ATT)"]),
])
def test_variants_get_distinct_labels(strategies, expected):
    assert labels(strategies) == expected


def test_duplicate_given_labels_fail():
    with pytest.raises(SpecError, match=r"^strategies: duplicate strategy label\(s\) a; give each a distinct 'label'$"):
        labels([{"name": "naive", "label": "a"}, {"name": "iptw", "label": "a"}])

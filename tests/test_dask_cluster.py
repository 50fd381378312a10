"""Dask on a real (multi-process) cluster: a scheduler and two workers started as separate
processes on 127.0.0.1, the way `dask scheduler` / `dask worker` run on other machines."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = {
    "study": "dask-test", "data": {"path": "twin", "twin": {"seed": 2030}},
    "roles": {"id": "id", "time": "os_months", "event": "os_event", "treatment": "surgery",
              "treatment_time": "months_to_surgery"},
    "confounders": ["portal_vein_invasion", "oligometastases"],
    "strategies": ["naive", {"name": "iptw", "estimand": "ATE"}],
    "estimands": {"survival_at": [12], "rmst_tau": 24},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    addr = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--no-dashboard"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for _ in range(2):
            procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", addr,
                                           "--nthreads", "1", "--nworkers", "1", "--host", "127.0.0.1",
                                           "--no-dashboard", "--no-nanny"], env=env, cwd=ROOT,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from dask.distributed import Client

        deadline = time.monotonic() + 120
        while True:  # the scheduler needs a moment to listen
            try:
                with Client(addr, timeout="5s") as c:
                    c.wait_for_workers(2, timeout=max(1.0, deadline - time.monotonic()))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield addr
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:  # pragma: no cover - only if a process hangs
                p.kill()
                p.wait(timeout=10)


def test_simulate_on_separate_scheduler_and_workers_matches_serial(cluster):
    from causal_hcc.config import parse_spec
    from causal_hcc.simstudy import simulate_study

    spec = parse_spec(dict(SPEC))
    serial = simulate_study(spec, replicates=4, seed=3, n_jobs=1)
    dask = simulate_study(spec, replicates=4, seed=3, scheduler=cluster)
    assert dask.meta["backend"] == f"dask ({cluster})"
    assert dask.table.equals(serial.table)
    assert dask.replicates.equals(serial.replicates)


def test_bootstrap_on_separate_scheduler_and_workers_matches_serial(cluster):
    from causal_hcc.config import parse_spec
    from causal_hcc.inference import bootstrap_many
    from causal_hcc.pipeline import build_cohort, load_data

    spec = parse_spec(dict(SPEC))
    df, _, src = load_data(spec)
    cohort = build_cohort(spec, df, src["source"])
    # naive: baseline IPTW would be computed locally by the batched path, not on the cluster
    strat = spec.resolved_strategies()[0].build(default_confounders=spec.confounders)
    points = {(strat.label, "os"): strat.fit(cohort, "os", spec.targets)}
    kw = dict(replicates=6, seed=5, only_needed=False)
    a = bootstrap_many([strat], cohort, ["os"], spec.targets, points, n_jobs=1, **kw)
    b = bootstrap_many([strat], cohort, ["os"], spec.targets, points, scheduler=cluster, **kw)
    ea, eb = a[(strat.label, "os")].estimates, b[(strat.label, "os")].estimates
    assert [(e.measure, e.time) for e in ea] == [(e.measure, e.time) for e in eb]
    np.testing.assert_array_equal([e.se for e in ea], [e.se for e in eb])
    np.testing.assert_array_equal([e.ci_lower for e in ea], [e.ci_lower for e in eb])


def test_unreachable_scheduler_is_one_clear_line():
    from causal_hcc.config import parse_spec
    from causal_hcc.errors import SpecError
    from causal_hcc.simstudy import simulate_study

    port = _free_port()
    with pytest.raises(SpecError, match=rf"^simulate: cannot reach the Dask scheduler at 'tcp://127.0.0.1:{port}'"):
        simulate_study(parse_spec(dict(SPEC)), replicates=2, seed=1, scheduler=f"tcp://127.0.0.1:{port}")

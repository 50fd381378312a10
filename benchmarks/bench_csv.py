"""(j) Reading a large CSV under the installed pandas: causal_hcc's reader and its candidates.

Writes a 1,000,000-row x 6-column file (ids, a 17-digit float time, 0/1 event and treatment, two
17-digit float confounders; 64 MB) and times, best of ``--repeat`` in this process:

* ``read_table`` (what causal_hcc uses: under pandas 3 the C parser alone; under pandas 2 the
  pyarrow path for the numeric columns, see causal_hcc/io.py);
* the pyarrow path itself (``_read_csv_pyarrow``);
* pandas' C parser with ``float_precision="round_trip"`` (pandas 2) / its default (pandas 3, which
  is correctly rounded);
* ``engine="pyarrow"`` for comparison.

Every candidate that causal_hcc may use is checked to give bit-identical floats. Results go to
benchmarks/results/csv_read_pandas<major>.json. Run once per pandas version (e.g. with the
locked .venv and with a pandas 2 venv).
"""
from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import numpy as np
import pandas as pd

from _common import machine  # noqa: E402  (benchmarks/_common.py)
from causal_hcc import io

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--path", default="/tmp/causal_hcc_bench_csv.csv")
    args = ap.parse_args()
    if not os.path.exists(args.path):
        rng = np.random.default_rng(0)
        n = args.rows
        pd.DataFrame({"id": np.arange(n), "t": rng.exponential(10, n), "e": rng.integers(0, 2, n),
                      "a": rng.integers(0, 2, n), "x": rng.normal(size=n), "y": rng.normal(size=n)}
                     ).to_csv(args.path, index=False)
    head = io._header(io.Path(args.path), ",")

    def best(f):
        t = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            r = f()
            t.append(time.perf_counter() - t0)
        return min(t), r

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas 3 deprecates float_precision
        res = {"read_table": best(lambda: io.read_table(args.path)),
               "pyarrow_path": best(lambda: io._read_csv_pyarrow(io.Path(args.path), ",", ".", head)),
               "c_parser_round_trip": best(lambda: pd.read_csv(args.path, float_precision="round_trip")),
               "c_parser_default": best(lambda: pd.read_csv(args.path)),
               "engine_pyarrow": best(lambda: pd.read_csv(args.path, engine="pyarrow"))}
    ref = res["c_parser_round_trip"][1]
    out = {"pandas": pd.__version__, "rows": len(ref), "bytes": os.path.getsize(args.path), "machine": machine(),
           "load": os.getloadavg()[0], "seconds": {k: round(v[0], 3) for k, v in res.items()},
           "bit_identical_to_round_trip": {
               k: bool(v[1] is not None and all(np.array_equal(v[1][c].to_numpy(), ref[c].to_numpy()) for c in ref))
               for k, v in res.items()}}
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", f"csv_read_pandas{pd.__version__.split('.')[0]}.json"), "w") as fh:
        json.dump(out, fh, indent=1)
    print(f"| pandas {out['pandas']} (load {out['load']:.1f}) | " + " | ".join(
        f"{k} {v:.2f} s{'' if out['bit_identical_to_round_trip'][k] else ' (differs)'}"
        for k, v in out["seconds"].items()) + " |")


if __name__ == "__main__":
    main()

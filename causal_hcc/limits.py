"""Documented limits on everything a user sets that makes the program loop, read or allocate.

A spec under 1 MB must not be able to ask for hours of work or gigabytes of
memory by accident (50,000 ``survival_at`` times, ``m: 1000000`` imputations,
10,000 strategies, a CSV with 100,000 columns). Every limit below is checked
before any fitting, and a value over it is refused with one line that names
the limit. The numbers are far above what any analysis of one cohort needs;
``docs/disclosure.md`` ("Limits") lists them for users.
"""
from __future__ import annotations

#: columns read from a data file (a cohort has tens; a 100,000-column file is a mistake or an attack)
MAX_COLUMNS = 10_000
#: bytes of a csv/tsv header line (the first line is read alone to check the column names)
MAX_HEADER_BYTES = 4 * 2**20
#: ``estimands.survival_at`` times (each adds a row per strategy and a point to every curve grid)
MAX_SURVIVAL_AT = 20
#: strategies after expanding presets and landmark sweeps
MAX_STRATEGIES = 100
#: landmark times in one sweep (``landmark: [..]``)
MAX_LANDMARKS = 20
#: extra outcomes (``outcomes:``)
MAX_OUTCOMES = 20
#: ``missing.m``: imputed data sets
MAX_IMPUTATIONS = 500
#: ``missing.iterations``: chained-equation cycles per imputed data set
MAX_MICE_ITERATIONS = 1_000
#: ``missing.donors``: predictive-mean-matching donors
MAX_MICE_DONORS = 100
#: ``bootstrap.replicates`` and ``simulate --bootstrap-replicates``
MAX_BOOTSTRAP = 100_000
#: ``report.monte_carlo``
MAX_MONTE_CARLO = 10_000
#: ``simulate --replicates``
MAX_SIMULATIONS = 100_000
#: ``twin --seeds`` (calibration)
MAX_CALIBRATION_SEEDS = 100_000
#: trials of one ``sequential_trials`` strategy (``window / grid``)
MAX_TRIALS = 1_000
#: intervals of the pooled logistic censoring model (``max time / censoring_grid``)
MAX_CENSORING_INTERVALS = 10_000
#: entries of ``codes:`` (all columns together)
MAX_CODES = 10_000
#: ``estimands.alpha``: 1 - alpha is the confidence level; below this the normal quantile is meaningless
MIN_ALPHA = 1e-6
#: ... and above this a "confidence interval" would be narrower than the estimate's own +/- 0 SE
MAX_ALPHA = 0.5
#: seeds are 0 .. 2**63 - 1 (numpy's SeedSequence takes non-negative integers)
MAX_SEED = 2**63 - 1


def over(what: str, value: int, limit: int, unit: str = "") -> str:
    """The one line for a value over its limit: ``"<what>: 50,000 <unit> given; at most 20 (limit ...)"``."""
    u = f" {unit}" if unit else ""
    return f"{what}: {value:,}{u} given; at most {limit:,} (a documented limit, see docs/disclosure.md)"

"""Adjustments: how the arms are made comparable, and the effect model.

Every module in this package is imported by the registry; each registers its
adjustment with :func:`causal_hcc.strategies.register_adjustment`.
"""

"""Designs: where follow-up starts and who counts as treated.

Every module in this package is imported by the registry; each registers its
design with :func:`causal_hcc.strategies.register_design`.
"""

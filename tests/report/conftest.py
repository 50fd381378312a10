"""Fixtures for the report tests (helpers live in report_support.py)."""
from report_support import synthetic_result  # noqa: F401

"""Fixtures for the adjustment tests (helpers live in adjust_support.py so that
test modules import them by a unique module name)."""
from adjust_support import gbsg, gbsg_frame, gbsg_untied_frame, ref, targets  # noqa: F401

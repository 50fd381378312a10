"""Fixtures of the hardening suite (helpers in harden_support.py: conftest names clash across folders)."""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from harden_support import Case  # noqa: E402


@pytest.fixture
def case(tmp_path) -> Case:
    return Case(tmp_path)

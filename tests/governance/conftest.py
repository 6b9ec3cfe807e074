"""Fixtures of the core library's tests."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture
def one_thread():
    """Model calls single-threaded: OpenMP threads crawl on a shared, busy machine."""
    with threadpool_limits(1):
        yield

"""Fixtures for fault tests.

The service fixtures live in tests/fixtures/services.py (a pytest plugin). Importing them here
keeps this directory runnable on its own; once tests/conftest.py registers the plugin this
import is redundant but harmless.
"""

from __future__ import annotations

import pytest

from tests.fixtures.services import own_postgres, own_redis, postgres_factory, redis_factory

__all__ = ["own_postgres", "own_redis", "postgres_factory", "redis_factory"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"

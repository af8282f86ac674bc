"""Fixtures of the database-level tests."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import TEST_DATABASES, database_args_for


@pytest.fixture(params=TEST_DATABASES)
def db_url(request) -> Iterator[str]:
    """The URL of a fresh, empty database of each kind (an SQLite file, a PostgreSQL database)."""
    with tempfile.TemporaryDirectory() as tmp, \
            database_args_for(request.param, Path(tmp)) as args:
        yield (args[args.index("--database-url") + 1] if "--database-url" in args
               else f"sqlite:///{tmp}/ortspuls.sqlite3")

"""Bridge processes started together on one fresh PostgreSQL database.

A scale-out starts several web processes at once, and each migrates the
database before serving. Without a lock, the second one to create the
tables failed on a duplicate type (UniqueViolation on pg_type).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from bridge.store.migrate import current, head
from tests.clitools import ROOT
from tests.pg import create_pg_database, drop_pg_database

UPGRADE = "import sys; from bridge.store.migrate import upgrade; upgrade(sys.argv[1])"
PROCESSES = 3


@pytest.mark.postgres
def test_processes_migrating_a_fresh_database_together_all_succeed():
    url = create_pg_database()
    try:
        children = [
            subprocess.Popen(
                [sys.executable, "-c", UPGRADE, url],
                cwd=ROOT,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(PROCESSES)
        ]
        errors = [child.communicate(timeout=90)[1] for child in children]

        codes = [child.returncode for child in children]
        assert codes == [0] * PROCESSES, "\n".join(errors)
        assert current(url) == head()
    finally:
        drop_pg_database(url)

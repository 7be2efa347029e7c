"""Catalogs that fail on purpose, loaded the way any custom catalog is: `py-catalog-impl`.

They sit at the catalog boundary, below all of our code, so the commit path under test runs
unchanged: pyiceberg's own retries, our retry loop, the IO manager.
"""

import os
import time
from pathlib import Path

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import CommitFailedException, CommitStateUnknownException

FLAKY = "tests.reliability.faults.FlakyCommitCatalog"
HANGING = "tests.reliability.faults.HangingCommitCatalog"
LOST_RESPONSE = "tests.reliability.faults.LostResponseCatalog"
HANGING_ON_TABLE = "tests.reliability.faults.HangingTableCommitCatalog"


class FlakyCommitCatalog(SqlCatalog):
    """Rejects its first `fault.commit-failures` table commits exactly as a lost compare-and-swap does."""

    def __init__(self, name: str, **properties: str):
        super().__init__(name, **properties)
        self.failures_left = int(properties.get("fault.commit-failures", "0"))
        self.injected = 0
        self.commits = 0

    def commit_table(self, table, requirements, updates):
        if self.failures_left > 0:
            self.failures_left -= 1
            self.injected += 1
            raise CommitFailedException(
                f"injected failure {self.injected}: table has been updated by another process"
            )
        response = super().commit_table(table, requirements, updates)
        self.commits += 1
        return response


class LostResponseCatalog(SqlCatalog):
    """Applies every table commit, then fails as a timeout after the catalog answered would."""

    def commit_table(self, table, requirements, updates):
        super().commit_table(table, requirements, updates)
        raise CommitStateUnknownException("injected: the commit's response was lost")


class HangingCommitCatalog(SqlCatalog):
    """Reaches the catalog commit with every data file and manifest written, says so, and stops there.

    The test then kills the process with SIGKILL: the moment a crash does the most harm.
    """

    def commit_table(self, table, requirements, updates):
        Path(self.properties["fault.ready-file"]).write_text(str(os.getpid()))
        time.sleep(600)
        raise AssertionError("the test should have killed this process")


class HangingTableCommitCatalog(HangingCommitCatalog):
    """Commits every table but `fault.table` normally; hangs (to be killed) at that table's commit.

    Between the two commits of a pair: raw's rejects committed, raw itself not.
    """

    def commit_table(self, table, requirements, updates):
        if ".".join(table.name()[-2:]) != self.properties["fault.table"]:
            return SqlCatalog.commit_table(self, table, requirements, updates)
        return super().commit_table(table, requirements, updates)

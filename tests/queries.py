"""Statement budgets for pages (issue 20: pages < 300 ms on the demo data, ``bench/pages.py``).

``statements(testcase)`` captures what a block runs, leaving out the savepoints a test's own
transaction adds (their number differs between SQLite and PostgreSQL); budgets are upper bounds,
so a change that adds a query per row or per page fails here before it shows in the bench.
"""

from contextlib import contextmanager

from django.db import connection
from django.test.utils import CaptureQueriesContext

TRANSACTION_CONTROL = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT", "BEGIN")


class Captured(list):
    def tables(self, name: str) -> list[str]:
        return [sql for sql in self if f'"{name}"' in sql]


@contextmanager
def statements():
    captured = Captured()
    with CaptureQueriesContext(connection) as context:
        yield captured
    captured.extend(
        query["sql"]
        for query in context.captured_queries
        if not query["sql"].lstrip().upper().startswith(TRANSACTION_CONTROL)
    )


def assert_at_most(testcase, captured: list[str], budget: int, page: str) -> None:
    testcase.assertLessEqual(
        len(captured),
        budget,
        f"{page}: {len(captured)} statements, budget {budget}:\n" + "\n".join(captured),
    )

"""Autovacuum's work, done by a bench when the server has it switched off.

This box's PostgreSQL runs with ``autovacuum = off``. A server in production keeps it on
(PostgreSQL's default): by default it analyzes a table once a tenth of it has changed, and
vacuums it once a fifth is dead or a fifth was inserted since its last vacuum, looking at each
database once a minute. Without that, a bench that grows tables from nothing to 300,000 rows is
planned by a server that believes they are empty. ``AutovacuumStandIn`` applies those rules,
with the server's own settings, to the bench's own database, from a thread of the bench, and
only when the server's autovacuum is off.
"""

from __future__ import annotations

import threading
import time

NAPTIME = 60.0  # autovacuum_naptime

# The server's own autovacuum settings (still set while autovacuum is off): a table is vacuumed
# once enough of it is dead, or (PostgreSQL 13+) once enough rows were inserted since its last
# vacuum, which sets the rows' hint bits and the visibility map a bulk load leaves unset; it is
# analyzed once enough of it changed.
DUE = """
SELECT s.relname,
       s.n_dead_tup > current_setting('autovacuum_vacuum_threshold')::float
           + current_setting('autovacuum_vacuum_scale_factor')::float * greatest(c.reltuples, 0)
       OR s.n_ins_since_vacuum > current_setting('autovacuum_vacuum_insert_threshold')::float
           + current_setting('autovacuum_vacuum_insert_scale_factor')::float
             * greatest(c.reltuples, 0),
       s.n_mod_since_analyze > current_setting('autovacuum_analyze_threshold')::float
           + current_setting('autovacuum_analyze_scale_factor')::float * greatest(c.reltuples, 0)
FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
"""

# Autovacuum's workers pace themselves (cost-based delay, 2 ms per 200 units by default) so as
# not to take the server from its traffic; a plain VACUUM does not. The stand-in's rounds while
# a bench measures are paced the same way.
PACED = """
SELECT set_config('vacuum_cost_delay', CASE current_setting('autovacuum_vacuum_cost_delay')
           WHEN '-1' THEN current_setting('vacuum_cost_delay')
           ELSE current_setting('autovacuum_vacuum_cost_delay') END, false),
       set_config('vacuum_cost_limit', CASE current_setting('autovacuum_vacuum_cost_limit')
           WHEN '-1' THEN current_setting('vacuum_cost_limit')
           ELSE current_setting('autovacuum_vacuum_cost_limit') END, false)
"""


class AutovacuumStandIn:
    """Start with ``start(url)``; returns None when the server's own autovacuum is on."""

    def __init__(self, url: str):
        self.url = url
        self.stopped = threading.Event()
        self.runs: list[str] = []
        self.thread = threading.Thread(target=self.run, name="autovacuum-stand-in", daemon=True)

    @classmethod
    def start(cls, url: str) -> AutovacuumStandIn | None:
        if _server_autovacuum_on(url):
            return None
        stand_in = cls(url)
        stand_in.thread.start()
        return stand_in

    @classmethod
    def catch_up(cls, url: str) -> list[str]:
        """One round now, after a bench has seeded its database (autovacuum would get to it
        within a minute, before any real traffic): what it did ([] when autovacuum is on)."""
        if _server_autovacuum_on(url):
            return []
        stand_in = cls(url)
        stand_in.round()
        return stand_in.runs

    def run(self) -> None:
        while not self.stopped.wait(NAPTIME):
            self.round(paced=True)

    def round(self, paced: bool = False) -> None:
        """One look at every table; ``paced`` as autovacuum's workers are (``catch_up`` runs
        before a bench measures, and need not be)."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            if paced:
                conn.execute(PACED)
            for table, vacuum, analyze in conn.execute(DUE).fetchall():
                if vacuum or analyze:
                    verb = "VACUUM ANALYZE" if vacuum else "ANALYZE"
                    started = time.perf_counter()
                    conn.execute(f'{verb} "{table}"')
                    self.runs.append(f"{verb} {table} {time.perf_counter() - started:.2f}s")

    def stop(self) -> None:
        self.stopped.set()


def _server_autovacuum_on(url: str) -> bool:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute("SHOW autovacuum").fetchone()[0] == "on"

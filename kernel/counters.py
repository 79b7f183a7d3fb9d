"""Monotonic counters for ``/metrics`` (Prometheus ``*_total``), kept in the cache: shared by
every process with Redis, per process in embedded mode (where all the work runs anyway).

One cache increment per event; a scrape reads them all with one ``get_many``. Prometheus turns
them into rates (``rate(porfin_sends_total[1m])``), which survives restarts of our processes.
"""

import logging

from django.core.cache import cache

logger = logging.getLogger(__name__)

PREFIX = "porfin:count:"


def _key(name: str, label) -> str:
    return f"{PREFIX}{name}:{label}"


def incr(name: str, label, amount: int = 1) -> None:
    key = _key(name, label)
    try:
        cache.incr(key, amount)
    except ValueError:  # first event: create it (another process may have just done so)
        if not cache.add(key, amount, timeout=None):
            cache.incr(key, amount)
    except Exception:  # a metric must never break the work it counts
        logger.warning("Counter %s not counted", key, exc_info=True)


def read(name: str, labels) -> dict:
    """``{label: count}`` for the labels that have counted anything."""
    keys = {_key(name, label): label for label in labels}
    return {keys[key]: value for key, value in cache.get_many(list(keys)).items()}

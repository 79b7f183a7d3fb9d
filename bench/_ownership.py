"""What a bench may clear: only what it owns (issue 21).

- A PostgreSQL database is dropped or emptied only if its name says it is a bench's
  (``porfin_bench…`` or ``…_bench``): pointing a bench at a real database stops it instead.
- A Redis database is cleared only if it is empty or was claimed by the same bench before (a
  marker key holds the bench's name); one holding anybody else's keys stops the bench.
"""

from urllib.parse import urlsplit

REDIS_OWNER_KEY = "porfin:bench:owner"


def require_bench_database(name_or_url: str) -> str:
    """The database name, if a bench may drop or empty it; otherwise stop with the reason."""
    name = urlsplit(name_or_url).path.lstrip("/") if "://" in name_or_url else name_or_url
    if not (name.startswith("porfin_bench") or name.endswith("_bench")):
        raise SystemExit(
            f"Refusing to drop or empty database {name!r}: benches only clear their own "
            "(named porfin_bench… or …_bench)."
        )
    return name


def claim_redis(url: str, owner: str) -> None:
    """Clear the Redis database at ``url`` for the bench ``owner``: only when it is empty or
    already ``owner``'s (its marker key), so nobody else's data is ever flushed."""
    import redis

    client = redis.Redis.from_url(url)
    marker = client.get(REDIS_OWNER_KEY)
    if client.dbsize() and (marker or b"").decode() != owner:
        raise SystemExit(
            f"Refusing to clear Redis {url}: it holds keys this bench ({owner}) did not create. "
            "Point the bench at an empty Redis database of its own."
        )
    client.flushdb()
    client.set(REDIS_OWNER_KEY, owner)

"""Send pacing shared by every process: "at most ``rate`` sends a second from this number".

A token bucket of depth one kept as a schedule of slots: each ``take()`` reserves the next slot
and sleeps until it; slots are spaced from the schedule, not from when a sleeping thread wakes,
and at most one missed slot is caught up, so a sliding second never sees more than ``rate + 2``.

With ``REDIS_URL`` the schedule lives in Redis (one Lua call per send, on Redis's own clock), so
two bulk workers on one number share its cap instead of each sending at the full rate. Embedded
mode keeps it in the process, where all the work runs anyway.
"""

import threading
import time

from django.conf import settings

KEY_PREFIX = "porfin:pace:"
# Returns the microseconds to wait for the reserved slot (negative: go now).
_RESERVE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local slot = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now - interval)
redis.call('SET', KEYS[1], tostring(slot + interval), 'PX', 600000)
return slot - now
"""


class LocalBucket:
    def __init__(self, rate: float):
        self.rate = max(rate, 0.01)
        self.next_slot = time.monotonic()
        self.lock = threading.Lock()

    def set_rate(self, rate: float) -> None:
        with self.lock:
            self.rate = max(rate, 0.01)

    def take(self) -> None:
        with self.lock:
            interval = 1.0 / self.rate
            slot = max(self.next_slot, time.monotonic() - interval)
            self.next_slot = slot + interval
        delay = slot - time.monotonic()
        if delay > 0:
            time.sleep(delay)


class SharedBucket:
    def __init__(self, key: str, rate: float):
        self.key = KEY_PREFIX + key
        self.rate = max(rate, 0.01)

    def set_rate(self, rate: float) -> None:
        self.rate = max(rate, 0.01)

    def take(self) -> None:
        wait_us = _reserve()(keys=[self.key], args=[int(1_000_000 / self.rate)])
        if wait_us > 0:
            time.sleep(wait_us / 1_000_000)


_script = None
_lock = threading.Lock()
_buckets: dict[str, LocalBucket | SharedBucket] = {}


def _reserve():
    global _script
    with _lock:
        if _script is None:
            import redis

            _script = redis.Redis.from_url(settings.REDIS_URL).register_script(_RESERVE)
        return _script


def bucket_for(key: str, rate: float) -> LocalBucket | SharedBucket:
    """The pace of ``key`` (e.g. ``number:12``) at ``rate`` per second, shared by every process
    when Redis is configured."""
    with _lock:
        bucket = _buckets.get(key)
        if bucket is None:
            kind = SharedBucket(key, rate) if settings.REDIS_URL else LocalBucket(rate)
            bucket = _buckets[key] = kind
        elif abs(bucket.rate - rate) > 1e-6:
            bucket.set_rate(rate)
        return bucket

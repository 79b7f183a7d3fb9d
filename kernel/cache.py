"""One Redis connection pool per process for Django's cache, and counters in one round trip.

Django keeps a cache object per thread and per ASGI request context (``asgiref.local``), and its
Redis backend builds a connection pool per object: under ASGI every request opened a new Redis
connection (a third of an API request's time). ``SharedRedisCache`` hands every cache object of
the process the same client, so connections are pooled and reused.
"""

import hashlib
import os
import secrets
import threading
import time
from functools import cached_property

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.core.signals import setting_changed
from django.dispatch import receiver
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

_clients: dict = {}
_lock = threading.Lock()


class SharedRedisCache(RedisCache):
    """Django's Redis cache with one client (and connection pool) per process and location."""

    @cached_property
    def _cache(self):
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = self._class(self._servers, **self._options)
        return client


def redis_client():
    """The process's pooled ``redis.Redis`` behind the default cache, or None without Redis."""
    return _default_cache()[1]


def _default_cache() -> tuple:
    """The default cache backend and its pooled ``redis.Redis`` (None without Redis), looked up
    once per process (again when a test changes ``CACHES``): one client object, thread-safe,
    as Django's ``get_client`` builds a new one on each call; and ``caches["default"]`` goes
    through a context-local lookup that cost an API read a thirtieth of its CPU."""
    if not _default:
        backend = caches["default"]
        client = None
        if isinstance(backend, RedisCache):
            shared = backend._cache
            client = getattr(shared, "_porfin_client", None)
            if client is None:
                client = shared._porfin_client = shared.get_client(write=True)
        _default.append((backend, client))
    return _default[0]


_default: list[tuple] = []


@receiver(setting_changed, dispatch_uid="porfin-default-cache")
def _on_caches_changed(setting, **kwargs):
    if setting == "CACHES":
        _default.clear()


def count_hit(key: str, period: int, *, also_get: str = "") -> tuple[int, float, float, object]:
    """Count one hit for ``key`` in a sliding window of ``period`` seconds, in one round trip to
    Redis (INCR and EXPIRE of the current fixed window pipelined with a GET of the previous one,
    and of ``also_get`` when given). Returns (hits in the current window, hits in the previous
    one, the fraction of the current window elapsed, the value of ``also_get``). The sliding
    estimate is ``previous * (1 - elapsed) + current``: no burst of twice the rate at a window's
    edge. Without Redis, the local cache does the same in a few calls."""
    now = time.time()
    window = int(now // period)
    current, previous = f"{key}:{window}", f"{key}:{window - 1}"
    elapsed = now / period - window
    backend, client = _default_cache()
    if client is not None:
        keys = [current, previous, *([backend.make_and_validate_key(also_get)] if also_get else [])]
        hits, before, extra = script_run(client, _COUNT_HIT_LUA, keys, [2 * period + 1])
        return int(hits), int(before or 0), elapsed, extra
    if cache.add(current, 1, timeout=2 * period + 1):
        hits = 1
    else:
        try:
            hits = cache.incr(current)
        except ValueError:  # expired between add and incr
            cache.set(current, 1, timeout=2 * period + 1)
            hits = 1
    extra = cache.get(also_get) if also_get else None
    return hits, int(cache.get(previous) or 0), elapsed, extra


# INCR (with its EXPIRE) of the current window, GET of the previous one and of an extra key: one
# command for Redis to parse and answer instead of a pipeline of four (a throttle is on every
# API request).
_COUNT_HIT_LUA = """
local hits = redis.call('INCR', KEYS[1])
if hits == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local extra = false
if KEYS[3] then extra = redis.call('GET', KEYS[3]) end
return {hits, redis.call('GET', KEYS[2]) or false, extra}
"""


class _ThreadConnections(threading.local):
    """Per thread: its own connection to each Redis server it runs hot commands on."""

    def __init__(self):
        self.connections: dict = {}
        self.pid = os.getpid()


_own = _ThreadConnections()
_script_shas: dict[str, str] = {}


def own_command(client, *args):
    """One command on this thread's own connection to ``client``'s server, not through the
    client: redis-py's command path (connection pool, retry and metrics hooks) costs as much
    CPU as the round trip itself, and a throttle runs one on every API request. A broken
    connection is reopened and the command sent once more, as the client's retry would;
    a second failure raises. Errors Redis answers (a wrong type, a missing script) raise."""
    return own_pipeline(client, [args])[0]


def own_pipeline(client, commands: list) -> list:
    """``own_command`` of several commands in one round trip; their replies, in order (an
    error Redis answers raises once every reply has been read)."""
    if _own.pid != os.getpid():  # a forked child never shares its parent's sockets
        _own.connections, _own.pid = {}, os.getpid()
    pool = client.connection_pool
    held = _own.connections.get(id(pool))
    if held is None or held[0] is not pool:
        # The pool is kept with its connection: its id is never another pool's meanwhile.
        held = _own.connections[id(pool)] = (pool, pool.connection_class(**pool.connection_kwargs))
    connection = held[1]
    packed = connection.pack_commands(commands)
    for attempt in (1, 2):
        try:
            connection.send_packed_command(packed, check_health=False)
            replies = [_reply(connection) for _command in commands]
        except (RedisConnectionError, RedisTimeoutError, OSError):
            connection.disconnect()
            if attempt == 2:
                raise
        else:
            for reply in replies:
                if isinstance(reply, ResponseError):
                    raise reply
            return replies


def _reply(connection):
    try:
        return connection.read_response()
    except ResponseError as error:  # read the others' replies first: the connection goes on
        return error


def script_run(client, script: str, keys: list, args: list):
    """``EVALSHA`` of ``script`` by ``own_command`` (``EVAL`` once when Redis does not have it
    yet, as after a restart, which also loads it)."""
    sha = _script_shas.get(script)
    if sha is None:
        sha = _script_shas[script] = hashlib.sha1(script.encode()).hexdigest()  # noqa: S324
    try:
        return own_command(client, "EVALSHA", sha, len(keys), *keys, *args)
    except NoScriptError:
        return own_command(client, "EVAL", script, len(keys), *keys, *args)


def version_bump(key: str) -> str:
    """Give a shared version a new value (random, so that a flushed or restarted Redis can never
    hand back a value a process already saw) and return it: one SET, seen by every process on
    Redis; without Redis, the process's local cache."""
    version = secrets.token_hex(8)
    cache.set(key, version, timeout=None)
    return version


def version_get(key: str) -> str:
    """The value ``version_bump`` set ("" before the first bump or after a flush): one GET."""
    return cache.get(key) or ""

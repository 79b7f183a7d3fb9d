"""Where one integrator API request spends its time (issue 21): no server, no load generator.

    .venv/bin/python bench/api_profile.py [--db porfin_bench_api] [--redis redis://…/12]
        [--requests 300] [--top 40] [--profile [--cpu] [--callees REGEX]]

Runs against the database ``bench/api_load.py`` seeded (run it once first, e.g. with
``--duration 1``; its keys file ``var/<db>.keys`` must exist) and drives the production ASGI
application (``config.asgi``, the bench's settings) in this process, one request at a time:
``GET /api/v1/chats/?limit=50`` and ``POST /api/v1/chats/<id>/messages/`` (with an
Idempotency-Key), as ``bench/api_mix.lua`` sends them. For each kind it prints the statements
per request, the process CPU time and wall time per request (p50) and the server time
(``Server-Timing``) and what PostgreSQL and Redis spent per request (their processes' CPU,
from /proc: keep the machine otherwise quiet); with ``--profile``, then cProfile of every
thread that serves them (the event loop and Django's request threads), by cumulative and by
own time.
"""

import argparse
import asyncio
import collections
import contextlib
import cProfile
import os
import pstats
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import api_load  # noqa: E402


class ThreadProfiles:
    """cProfile in every thread: the event loop's and each thread Django starts for a request
    (``threading.setprofile`` hands every new thread a profiler of its own)."""

    def __init__(self, cpu: bool = False):
        self.profiles: list[cProfile.Profile] = []
        self.on = False
        # Each thread's own CPU time (--cpu): waits on PostgreSQL and Redis count nothing.
        self.timer = time.thread_time if cpu else time.perf_counter

    def _start_in_thread(self, *args):
        sys.setprofile(None)
        if self.on:
            profile = cProfile.Profile(self.timer)
            self.profiles.append(profile)
            profile.enable()

    def start(self):
        self.on = True
        self.profiles.clear()
        threading.setprofile(self._start_in_thread)
        self._start_in_thread()
        # Threads that already run (a handler's reused pool): profile each call of its work.
        import config.asgi

        handler = getattr(config.asgi, "ApiKeyDjangoHandler", None)
        if handler is not None and not hasattr(handler, "_unprofiled"):
            handler._unprofiled = handler._respond
            profiles = self

            def respond(self, *args):
                profile = cProfile.Profile(profiles.timer)
                profiles.profiles.append(profile)
                profile.enable()
                try:
                    return handler._unprofiled(self, *args)
                finally:
                    profile.disable()

            handler._respond = respond

    def stop(self):
        self.on = False
        threading.setprofile(None)
        import config.asgi

        handler = getattr(config.asgi, "ApiKeyDjangoHandler", None)
        if handler is not None and hasattr(handler, "_unprofiled"):
            handler._respond = handler._unprofiled
            del handler._unprofiled
        for profile in self.profiles:
            profile.disable()  # only the main thread's is still running

    def print(self, top: int, callees: str = ""):
        stats = pstats.Stats(self.profiles[0])
        for profile in self.profiles[1:]:
            with contextlib.suppress(TypeError):  # a thread that never ran anything
                stats.add(profile)
        stats.sort_stats("cumulative").print_stats(top)
        stats.sort_stats("tottime").print_stats(25)
        if callees:
            stats.sort_stats("cumulative").print_callees(callees)


def servers_cpu() -> dict[str, float]:
    """CPU seconds used so far by this machine's PostgreSQL and Redis server processes (all
    of them, from /proc): run with nothing else busy, their rise is what the requests cost
    them."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {"PostgreSQL": 0.0, "Redis": 0.0}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        group = "PostgreSQL" if name.startswith("postgres") else "Redis" if "redis" in name else ""
        if group:
            fields = stat[stat.rindex(")") + 2 :].split()
            used[group] += (int(fields[11]) + int(fields[12])) / tick
    return used


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=api_load.DB_NAME)
    parser.add_argument("--redis", default=api_load.REDIS)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--kinds", default="get,post")
    parser.add_argument("--profile", action="store_true", help="then cProfile every thread")
    parser.add_argument(
        "--cpu", action="store_true", help="profile CPU time (thread_time), not wall time"
    )
    parser.add_argument(
        "--callees",
        default="",
        help="with --profile, also what the functions matching this regex call (e.g. idempotent)",
    )
    args = parser.parse_args()
    api_load.DB_NAME, api_load.REDIS = args.db, args.redis
    keys_file = ROOT / "var" / f"{args.db}.keys"
    lines = keys_file.read_text().split("\n")
    keys = [x[4:] for x in lines if x.startswith("key ")]
    chats = [x[5:] for x in lines if x.startswith("chat ")]
    os.environ.update(api_load.environment())

    from django.db.backends import utils

    statements = [0]
    original = utils.CursorWrapper._execute

    def counting(self, *a, **k):
        statements[0] += 1
        return original(self, *a, **k)

    utils.CursorWrapper._execute = counting
    original_many = utils.CursorWrapper._executemany

    def counting_many(self, *a, **k):
        statements[0] += 1
        return original_many(self, *a, **k)

    utils.CursorWrapper._executemany = counting_many

    from config.asgi import application

    body = b'{"type": "text", "text": {"body": "Sua consulta esta confirmada."}}'

    def request(kind: str, n: int):
        key = keys[n % 50].encode()  # memoised keys, each within its send budget (100/min)
        headers = [(b"host", b"127.0.0.1"), (b"authorization", b"Bearer " + key)]
        if kind == "get":
            return "GET", "/api/v1/chats/", b"limit=50", headers, b""
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"idempotency-key", uuid.uuid4().hex.encode()),
        ]
        return "POST", f"/api/v1/chats/{chats[n % len(chats)]}/messages/", b"", headers, body

    async def call(method, path, query, headers, payload):
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query,
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", api_load.PORT),
        }
        sent = False
        answer = {}

        async def receive():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": payload, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message):
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["headers"] = {k.lower(): v for k, v in message["headers"]}

        await application(scope, receive, send)
        return answer

    async def measure(kind: str, count: int, offset: int):
        cpu, wall, server = [], [], []
        statuses = collections.Counter()
        statements[0] = 0
        servers_before = servers_cpu()
        for n in range(count):
            c0, w0 = time.process_time(), time.perf_counter()
            answer = await call(*request(kind, n + offset))
            cpu.append((time.process_time() - c0) * 1000)
            wall.append((time.perf_counter() - w0) * 1000)
            statuses[answer["status"]] += 1
            timing = answer["headers"].get(b"server-timing", b"")
            if b"dur=" in timing:
                server.append(float(timing.split(b"dur=")[1]))
        p50 = api_load.percentile
        print(
            f"{kind.upper():<5}{count} requests {dict(statuses)}: "
            f"{statements[0] / count:.2f} statements each; CPU p50 {p50(cpu, 50):.2f} ms "
            f"(mean {sum(cpu) / count:.2f}); wall p50 {p50(wall, 50):.2f} ms; "
            f"Server-Timing p50 {p50(server, 50):.2f} ms; "
            + ", ".join(
                f"{name} {(after - servers_before[name]) / count * 1000:.2f} ms"
                for name, after in servers_cpu().items()
            )
            + " per request"
        )

    async def run():
        kinds = args.kinds.split(",")
        for kind in kinds:
            await measure(kind, 30, 0)  # warm up: imports, pools, memos
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        for kind in kinds:
            await measure(kind, args.requests, 100)
        if args.profile:
            for kind in kinds:
                profiles = ThreadProfiles(cpu=args.cpu)
                profiles.start()
                await measure(kind, args.requests, 100 + args.requests)
                profiles.stop()
                profiles.print(args.top, args.callees)

    try:
        asyncio.run(run())
    finally:
        api_load.drop_queued_tasks()  # its sends' delivery tasks: no worker runs them


if __name__ == "__main__":
    main()

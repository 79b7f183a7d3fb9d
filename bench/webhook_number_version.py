"""The webhook's number lookup on a cache hit, with the cross-process version check: CPU time per
delivery and shared-cache reads per delivery, at a steady 5,000+ lookups/s for a few seconds.

Run it in this checkout and in one without the version check (e.g. a worktree of an older
commit) to compare; it needs no database (the number is placed in the process cache):

    REDIS_URL=redis://127.0.0.1:6379/N .venv/bin/python bench/webhook_number_version.py
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from integrations import services  # noqa: E402
from integrations.models import WhatsAppNumber  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rate", type=int, default=5000, help="lookups per second")
    args = parser.parse_args()

    reads = 0
    checking = hasattr(services, "_webhook_numbers_check")
    if checking:
        from kernel import cache as kernel_cache

        real_get = kernel_cache.version_get

        def counted(key):
            nonlocal reads
            reads += 1
            return real_get(key)

        kernel_cache.version_get = counted
    number = WhatsAppNumber(pk=1, organization_id=1, webhook_key="bench", app_secret="s")
    services.webhook_number_cached("none")  # the first version check (empties the cache)
    lookups = 0
    busy_cpu = 0.0
    started = time.monotonic()
    batch = max(1, args.rate // 80)  # a batch, then 10 ms asleep
    while time.monotonic() - started < args.seconds:
        services._webhook_numbers["bench"] = (time.monotonic(), number)  # keep it fresh
        cpu = time.process_time()
        for _ in range(batch):
            assert services.webhook_number_cached("bench") is not None
        busy_cpu += time.process_time() - cpu
        lookups += batch
        time.sleep(0.01)
    elapsed = time.monotonic() - started
    print(f"backend: {django.conf.settings.CACHES['default']['BACKEND']}")
    print(f"version check: {'yes' if checking else 'no (reference)'}")
    print(f"lookups: {lookups} in {elapsed:.1f} s ({lookups / elapsed:,.0f}/s)")
    print(f"CPU per lookup: {busy_cpu / lookups * 1e6:.2f} µs")
    print(
        f"shared-cache reads: {reads} ({reads / lookups:.5f} per lookup, {reads / elapsed:.1f}/s)"
    )


if __name__ == "__main__":
    main()

"""The standalone sandbox for bench/campaign_dispatch.py: ``manage.py whatsapp_sandbox`` with a
conversation log large enough to hold every send of the run (the sandbox keeps only the last
2,000 per number by default), so duplicates and losses can be counted from what it accepted."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

if __name__ == "__main__":
    import django

    django.setup()
    from django.core.management import call_command

    from integrations.whatsapp.sandbox import state

    state.LOG_SIZE = int(os.environ.get("BENCH_SANDBOX_LOG_SIZE", "1000000"))
    call_command("whatsapp_sandbox", *sys.argv[1:])

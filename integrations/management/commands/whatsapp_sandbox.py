"""``manage.py whatsapp_sandbox``: run the local WhatsApp Cloud API emulator on its own port.

Point the product at it with ``WHATSAPP_GRAPH_BASE_URL=http://127.0.0.1:8765``. Numbers can be
registered at startup from a JSON file (a list of number settings, see ``NumberConfig``) or later
through ``POST /_sandbox/numbers``.
"""

import json
from pathlib import Path

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from integrations.whatsapp.sandbox import ControlError, SandboxApp


class Command(BaseCommand):
    help = "Run the local WhatsApp Cloud API emulator (sandbox)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument(
            "--api-version",
            default=getattr(settings, "WHATSAPP_GRAPH_API_VERSION", "v25.0"),
            help="Newest Graph API version served (default: the product's setting).",
        )
        parser.add_argument(
            "--numbers", type=Path, help="JSON file with a list of numbers to register."
        )
        parser.add_argument(
            "--control-token", default="", help="Require this X-Sandbox-Token on /_sandbox/."
        )
        parser.add_argument(
            "--public-url", default="", help="Base URL for media links, when behind a proxy."
        )
        parser.add_argument("--log-level", default="info")

    def handle(self, *args, **options):
        app = SandboxApp(
            api_version=options["api_version"],
            control_token=options["control_token"],
            public_url=options["public_url"],
        )
        for number in self._load_numbers(options["numbers"]):
            try:
                app.register_number(number, verify=False)
            except ControlError as exc:
                raise CommandError(f"Invalid number in {options['numbers']}: {exc}") from exc
        self.stdout.write(
            f"WhatsApp sandbox on http://{options['host']}:{options['port']} "
            f"(Graph {app.api_version}; control API under /_sandbox/)"
        )
        uvicorn.run(
            app,
            host=options["host"],
            port=options["port"],
            log_level=options["log_level"],
            lifespan="on",
        )

    @staticmethod
    def _load_numbers(path: Path | None) -> list[dict]:
        if path is None:
            return []
        try:
            numbers = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from exc
        if isinstance(numbers, dict):
            numbers = [numbers]
        if not isinstance(numbers, list):
            raise CommandError(f"{path} must hold a list of number settings.")
        return numbers

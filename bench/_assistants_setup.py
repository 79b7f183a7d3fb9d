"""Shared setup for the assistant benchmarks: a fresh database, Django, and the local stubs."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._ownership import require_bench_database  # noqa: E402


def fresh_database(url: str) -> None:
    """Drop and create the benchmark database named by ``url`` (PostgreSQL or SQLite file)."""
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):
        # sqlite:////abs/path → "//abs/path"; sqlite:///rel/path → "/rel/path"
        path = Path(parts.path[1:])
        path = path if path.is_absolute() else ROOT / path
        path.unlink(missing_ok=True)
        return
    import psycopg

    name = require_bench_database(parts.path.lstrip("/"))
    admin = url.replace(f"/{name}", "/postgres", 1)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def setup_django(database_url: str, **env: str) -> None:
    """Django as in production (``DEBUG`` off, so no per-query logging), unless ``DEBUG=1`` is
    set in the environment."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("OPENAI_API_KEY", "")
    os.environ.setdefault("DEBUG", "0")
    # The organizations' AI server is the local OpenAI stub, a loopback address.
    os.environ.setdefault("EGRESS_ALLOW_PRIVATE", "1")
    os.environ.setdefault("EMAIL_URL", "consolemail://")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-" + "x" * 40)
    if "FIELD_ENCRYPTION_KEY" not in os.environ:
        from cryptography.fernet import Fernet

        os.environ["FIELD_ENCRYPTION_KEY"] = Fernet.generate_key().decode()
    os.environ.update(env)
    fresh_database(database_url)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def clinic(slug: str):
    """An organization with a sandbox number and an assistant on it."""
    from accounts.models import Organization
    from assistants import services
    from assistants.models import Assistant
    from integrations.models import WhatsAppNumber

    organization = Organization.objects.create(name=f"Clínica {slug}", slug=slug)
    number = WhatsAppNumber.objects.create(
        organization=organization,
        name="Recepção",
        display_phone_number="+55 11 4000-0000",
        phone_number_id="990000000101",
        waba_id="990000000100",
        access_token="bench-token",
        app_secret="bench-secret",
    )
    assistant = Assistant(
        organization=organization, name="Sofia", instructions="Responda em português."
    )
    services.assistant_save(assistant=assistant, numbers=[number])
    return organization, number, assistant

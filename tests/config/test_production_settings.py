"""Production switches an operator relies on: closed sign-up, e-mail required with DEBUG off,
secrets kept out of logs, the first organization from the command line."""

import logging
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

from django.core.management import call_command
from django.test import TestCase, override_settings

from accounts.models import Membership, Organization, Role, User
from config.logs import ScrubSecrets

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "production-settings-test-secret-key-0123456789-abcdefghijkl",
    "FIELD_ENCRYPTION_KEY": "cHJvZHVjdGlvbi1zZXR0aW5ncy10ZXN0LWtleS0wMTI=",
    "DATABASE_URL": "sqlite:///:memory:",
    "REDIS_URL": "",
}


def boot(**env) -> subprocess.CompletedProcess:
    """Import the production settings in a fresh process, as a web or worker box would."""
    environment = {k: v for k, v in os.environ.items() if k not in ("EMAIL_URL",)}
    environment.update(DJANGO_SETTINGS_MODULE="config.settings", **PRODUCTION, **env)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('booted')"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


class ProductionSettingsTests(TestCase):
    def test_it_refuses_to_start_without_email_when_debug_is_off(self):
        refused = boot()
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("Set EMAIL_URL", refused.stderr)
        started = boot(EMAIL_URL="smtp+tls://user:pass@smtp.example.com:587")
        self.assertEqual(started.returncode, 0, started.stderr)
        self.assertIn("booted", started.stdout)

    @override_settings(ACCOUNT_ALLOW_SIGNUP=False)
    def test_closed_signup_creates_no_account(self):
        response = self.client.post(
            "/accounts/signup/",
            {"email": "new@clinic.test", "password1": "x8!kLm2#pQ", "password2": "x8!kLm2#pQ"},
        )
        self.assertFalse(User.objects.filter(email="new@clinic.test").exists())
        self.assertContains(response, "closed", status_code=200)

    def test_webhook_keys_and_bearer_tokens_never_reach_a_log_line(self):
        stream = StringIO()
        handler = logging.StreamHandler(stream)
        handler.addFilter(ScrubSecrets())
        logger = logging.getLogger("test.scrub")
        logger.addHandler(handler)
        self.addCleanup(logger.removeHandler, handler)
        logger.warning(
            '%s - "%s %s HTTP/1.1" %d',
            "10.0.0.1:5000",
            "POST",
            "/webhooks/whatsapp/Zk3-secret_Key9/",
            200,
        )
        logger.warning("calling with Authorization: Bearer sk-live-abcdef123")
        logger.warning("%(path)s answered", {"path": "/webhooks/evolution/tok-77/"})
        logged = stream.getvalue()
        self.assertNotIn("tok-77", logged)
        self.assertNotIn("Zk3-secret_Key9", logged)
        self.assertNotIn("sk-live-abcdef123", logged)
        self.assertIn("/webhooks/whatsapp/[redacted]/", logged)

    def test_the_first_organization_comes_from_the_command_line(self):
        os.environ["OWNER_PASSWORD"] = "a-long-Owner-passw0rd"
        self.addCleanup(os.environ.pop, "OWNER_PASSWORD")
        out = StringIO()
        call_command("create_organization", "Clínica Nova", "Dona@Nova.test", stdout=out)
        organization = Organization.objects.get(name="Clínica Nova")
        owner = User.objects.get(email="dona@nova.test")
        self.assertTrue(owner.check_password("a-long-Owner-passw0rd"))
        membership = Membership.objects.get(organization=organization, user=owner)
        self.assertEqual(membership.role, Role.ADMIN)
        self.assertIn("dona@nova.test is its admin", out.getvalue())


class SentryTests(TestCase):
    def test_errors_go_to_sentry_when_its_dsn_is_set_without_webhook_keys(self):
        """A local HTTP server stands for Sentry: the SDK posts its envelope there."""
        import gzip
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received: list[bytes] = []

        class Ingest(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                received.append(body)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Ingest)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.shutdown)
        port = server.server_address[1]
        script = (
            "import django, logging; django.setup();"
            "import sentry_sdk;"
            "logging.getLogger('porfin.test').error('delivery to /webhooks/whatsapp/Key-123/ failed');"
            "sentry_sdk.flush(5)"
        )
        environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
        environment.update(
            **PRODUCTION,
            EMAIL_URL="consolemail://",
            SENTRY_DSN=f"http://publickey@127.0.0.1:{port}/42",
        )
        done = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(done.returncode, 0, done.stderr)
        sent = b"".join(received).decode()
        self.assertIn("delivery to /webhooks/whatsapp/[redacted]/ failed", sent)
        self.assertNotIn("Key-123", sent)
        # Without a DSN nothing is initialised.
        environment.pop("SENTRY_DSN")
        off = subprocess.run(
            [sys.executable, "-c", "import django; django.setup(); import sentry_sdk;"
             "print(sentry_sdk.get_client().is_active())"],
            cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        self.assertEqual(off.stdout.strip(), "False", off.stderr)


class DeployCheckTests(TestCase):
    def test_check_deploy_is_clean_with_the_production_environment(self):
        """The environment the README's production section asks for (no server is reached:
        ``check`` only reads the settings)."""
        environment = {k: v for k, v in os.environ.items() if k not in ("EMAIL_URL",)}
        environment.update(
            DJANGO_SETTINGS_MODULE="config.settings",
            DEBUG="0",
            SECRET_KEY="deploy-check-secret-key-with-plenty-of-entropy-0123456789-abcdefghij",
            FIELD_ENCRYPTION_KEY="cHJvZHVjdGlvbi1zZXR0aW5ncy10ZXN0LWtleS0wMTI=",
            EMAIL_URL="smtp+tls://porfin:secret@smtp.example.com:587",
            ALLOWED_HOSTS="porfin.example.com",
            CSRF_TRUSTED_ORIGINS="https://porfin.example.com",
            DATABASE_URL="postgres://porfin@db.internal:5432/porfin",
            REDIS_URL="redis://redis.internal:6379/0",
            MEDIA_STORAGE="s3",
            AWS_STORAGE_BUCKET_NAME="porfin-media",
            METRICS_TOKEN="scrape-token",
        )
        done = subprocess.run(
            [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("System check identified no issues", done.stdout)

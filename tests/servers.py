"""Real server processes for tests: the production web command (``config.serve``, uvicorn)
serving config.asgi on the test database."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_database_url() -> str:
    """The URL of the database pytest-django set up, for other processes to use."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    user = settings.get("USER") or "postgres"
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{settings['NAME']}"


class ServerProcess:
    """``python -m config.serve config.asgi:application`` on a free port (``workers``
    processes), stopped on ``stop()``."""

    def __init__(self, *, env: dict | None = None, port: int | None = None, workers: int = 1):
        self.port = port or free_port()
        self.workers = workers
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings_test",
            "DATABASE_URL": test_database_url(),
            "DEBUG": "1",
            "TASK_RUNNER": "thread",
            "PYTHONUNBUFFERED": "1",
            # The server's own in-process sandbox calls the server's own webhook URL.
            "SANDBOX_ENABLED": "1",
            "SANDBOX_URL": f"http://127.0.0.1:{self.port}/sandbox/graph",
            "SANDBOX_WEBHOOK_BASE_URL": f"http://127.0.0.1:{self.port}",
            **(env or {}),
        }
        self.log_path = ROOT / "var" / f"server-{self.port}.log"
        self.process = None

    def start(self, timeout: float = 30) -> "ServerProcess":
        self.log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "config.serve",
                "config.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                "--log-level",
                "warning",
                "--ws-per-message-deflate",  # as README's production command
                "false",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                requests.get(self.url + "/healthz", timeout=3)
                return self
            except requests.RequestException:  # not listening yet, or still starting up
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-2000:]}")

    @property
    def sandbox_url(self) -> str:
        return self.env["SANDBOX_URL"] or f"{self.url}/sandbox/graph"

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if getattr(self, "log", None):
            self.log.close()

"""Run the sandbox (or any ASGI app) with uvicorn on a background thread.

Used by tests and by anything that needs a real HTTP sandbox in-process::

    with SandboxServer() as server:
        server.app.register_number({...})
        client = CloudAPIClient(base_url=server.url, api_version="v25.0", ...)
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

from .app import SandboxApp


class SandboxServer:
    """A uvicorn server for ``app`` (a new ``SandboxApp`` by default) on ``host:port``.

    ``port=0`` picks a free port; read it back from ``url`` after ``start()``.
    """

    def __init__(
        self,
        app: Any | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
    ) -> None:
        self.app = app if app is not None else SandboxApp()
        self.host = host
        self.port = port
        self._log_level = log_level
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> SandboxServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level=self._log_level,
            access_log=False,
            lifespan="auto",  # a mounted app's fallback may not speak lifespan
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"wa-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the sandbox server did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        close = getattr(self.app, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

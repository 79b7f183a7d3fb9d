"""The production web command: ``python -m config.serve`` takes uvicorn's own options, and with
``--workers`` above 1 each worker listens on a socket of its own (``SO_REUSEPORT``).

Why: on uvicorn's one shared socket, whichever worker wakes first takes a new connection, and a
keep-alive connection stays with that worker for its whole life. A burst of connections (a
proxy's pool, an integrator's client) then splits unevenly, up to 94/6 seen, and the busier
worker's clients wait longer (``bench/api_load.py`` prints the split). With a socket per worker
the kernel deals connections out by a hash of their addresses: 50/50 to 62/38 seen.

uvicorn has no option for it: this command replaces its ``Config.bind_socket`` and runs its
command line (``tests/config/test_serve.py`` fails if an upgrade breaks that).

The cost, on Linux before 5.14 or with ``net.ipv4.tcp_migrate_req`` off: a worker that stops
drops the connections still waiting in its own accept queue, which a shared socket would have
left to the others.

It also sends a response's head and body in one write (``OneSendHttpToolsProtocol``).
"""

import asyncio
import socket
import sys

from uvicorn import config as uvicorn_config
from uvicorn.main import main
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_bind_shared = uvicorn_config.Config.bind_socket


class _SocketPerWorker(socket.socket):
    """The parent's bound socket, which never listens. uvicorn hands it to each worker it
    starts (pickled, as multiprocessing's spawn does); unpickled in the worker, it becomes that
    worker's own socket on the same address, in the same ``SO_REUSEPORT`` group."""

    def __reduce__(self):
        return _bind, (self.family, self.getsockname())


def _bind(family: int, address: tuple, *, into: type[socket.socket] = socket.socket):
    sock = into(family=family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.set_inheritable(True)
    return sock


def _bind_socket(self: uvicorn_config.Config) -> socket.socket:
    if self.workers <= 1 or self.should_reload or self.uds or self.fd is not None:
        return _bind_shared(self)
    family = socket.AF_INET6 if self.host and ":" in self.host else socket.AF_INET
    try:
        sock = _bind(family, (self.host, self.port), into=_SocketPerWorker)
    except OSError as error:
        uvicorn_config.logger.error(error)
        sys.exit(uvicorn_config.STARTUP_FAILURE)
    uvicorn_config.logger.info(
        "Uvicorn running on %s://%s:%d, a socket per worker (Press CTRL+C to quit)",
        "https" if self.is_ssl else "http",
        self.host,
        sock.getsockname()[1],
    )
    return sock


class _HeldWrite:
    """A connection's transport that holds a write until the next one, or until the event
    loop's turn ends, and sends the two as one.

    uvicorn writes a response's head as soon as it has it, then the body: two sends, each a
    system call that on loopback also runs the receiving side. The head and a small body
    (a webhook's 200, an API answer) leave together. A streamed body's chunks still leave one by
    one: a held write goes out at the end of the loop's turn, so nothing waits longer."""

    __slots__ = ("_transport", "_held", "_loop")

    def __init__(self, transport: asyncio.Transport):
        self._transport = transport
        self._held: bytes | None = None
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        if self._held is None:
            self._held = bytes(data)
            self._loop.call_soon(self._flush)
        else:
            held, self._held = self._held, None
            self._transport.write(held + data)

    def _flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def writelines(self, chunks) -> None:
        self.write(b"".join(chunks))

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held or b"")

    def __getattr__(self, name: str):
        return getattr(self._transport, name)


class OneSendHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over ``_HeldWrite``: one send per small response."""

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(_HeldWrite(transport))


if __name__ == "__main__":
    uvicorn_config.Config.bind_socket = _bind_socket
    if not any(arg == "--http" or arg.startswith("--http=") for arg in sys.argv[1:]):
        sys.argv[1:1] = ["--http", "config.serve:OneSendHttpToolsProtocol"]
    main()

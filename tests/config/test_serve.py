"""The production web command (``python -m config.serve``): each uvicorn worker listens on its
own socket, so new connections are dealt out evenly between the workers, also after a worker
has been replaced."""

import asyncio
import http.client
import os
import signal
import time
from pathlib import Path

import pytest

from config import serve
from tests.servers import ServerProcess

LISTEN, ESTABLISHED = "0A", "01"


def sockets_by_worker(server: ServerProcess, state: str) -> dict[str, set[str]]:
    """The TCP sockets on the server's port in ``state`` that each worker process holds, by
    inode (from /proc: /proc/net/tcp, and each worker's file descriptors)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == server.port and fields[3] == state:
            inodes.add(fields[9])
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    held = {}
    for pid in children.read_text().split():
        try:
            targets = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except FileNotFoundError:  # a worker that just ended, or a descriptor just closed
            continue
        held[pid] = {t[8:-1] for t in targets if t.startswith("socket:[")} & inodes
    return {pid: sockets for pid, sockets in held.items() if sockets}


def listening_workers(server: ServerProcess, *, not_pid: str = "") -> dict[str, set[str]]:
    """Wait until two workers listen, on two different sockets (uvicorn's own shared socket
    would be one), neither of them ``not_pid``."""
    deadline = time.monotonic() + 30
    while True:
        listening = sockets_by_worker(server, LISTEN)
        sockets = [inode for held in listening.values() for inode in held]
        if len(listening) == 2 and len(set(sockets)) == 2 and not_pid not in listening:
            return listening
        assert time.monotonic() < deadline, f"listening sockets by worker: {listening}"
        time.sleep(0.1)


def assert_dealt_evenly(server: ServerProcess, count: int = 40) -> None:
    """``count`` keep-alive connections, opened one after another to an idle server, land on
    both workers: by the kernel's hash, 7/33 or worse happens once in 120,000 runs."""
    connections = []
    try:
        for _ in range(count):
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            connection.request("GET", "/healthz/live")
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 200
            connections.append(connection)
        split = sorted(len(held) for held in sockets_by_worker(server, ESTABLISHED).values())
        assert sum(split) == count and len(split) == 2 and split[0] >= 8, split
    finally:
        for connection in connections:
            connection.close()


@pytest.mark.multiprocess
def test_each_worker_listens_on_its_own_socket_and_gets_its_share(transactional_db):
    server = ServerProcess(workers=2).start()
    try:
        first = listening_workers(server)
        assert_dealt_evenly(server)

        # uvicorn's supervisor replaces a worker that dies; the new one listens on a socket of
        # its own too, and gets its share of new connections.
        victim = next(iter(first))
        os.kill(int(victim), signal.SIGKILL)
        listening_workers(server, not_pid=victim)
        assert_dealt_evenly(server)
    finally:
        server.stop()


class Recorded(asyncio.Transport):
    """What a connection's transport was asked to send, write by write."""

    def __init__(self):
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data):
        self.writes.append(bytes(data))

    def is_closing(self):
        return self.closed

    def close(self):
        self.closed = True

    def get_write_buffer_size(self):
        return 0


def test_a_response_head_and_body_leave_in_one_write_and_nothing_is_held_past_the_turn():
    async def scenario():
        transport = Recorded()
        held = serve._HeldWrite(transport)
        held.write(b"HTTP/1.1 200 OK\r\n\r\n")
        held.write(b'{"received": 1}')
        assert transport.writes == [b'HTTP/1.1 200 OK\r\n\r\n{"received": 1}']
        held.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        assert held.get_write_buffer_size() > 0 and len(transport.writes) == 1
        await asyncio.sleep(0)  # a streamed head waits no longer than the loop's turn
        assert transport.writes[-1].endswith(b"chunked\r\n\r\n")
        held.write(b"0\r\n\r\n")
        held.close()  # what is held goes out before the close
        assert (transport.writes[-1], transport.closed) == (b"0\r\n\r\n", True)
        await asyncio.sleep(0)
        assert len(transport.writes) == 3

    asyncio.run(scenario())


@pytest.mark.multiprocess
def test_keep_alive_answers_arrive_whole_over_the_production_command(transactional_db):
    server = ServerProcess().start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        for _ in range(3):  # keep-alive: each answer whole, none stuck behind the next
            connection.request("GET", "/healthz/live")
            answer = connection.getresponse()
            assert (answer.status, answer.read()) == (200, b'{"status":"ok"}')
        connection.close()
    finally:
        server.stop()

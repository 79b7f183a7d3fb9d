"""How many Django requests a web process runs at once (``HTTP_CONCURRENCY``).

Under ASGI every sync request runs on a thread of its own. A hundred concurrent requests would be
a hundred threads time-slicing one GIL, so each would take many times its own cost. Instead
``config.asgi.AdmittingDjangoHandler`` admits a few at a time and the others wait their turn,
before any work. A request that then waits on a remote service (WhatsApp, the model, a
customer's webhook) gives its turn to the next one for as long as it waits
(``waiting_outside``): that wait costs this process nothing, and it may take seconds.
"""

import asyncio
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar

_admission: ContextVar[tuple[asyncio.Semaphore, asyncio.AbstractEventLoop] | None] = ContextVar(
    "admission", default=None
)


class Turns:
    """A process's ``HTTP_CONCURRENCY`` turns, shared by every handler that runs Django
    requests in it (the semaphore is made on the server's loop, at the first request)."""

    def __init__(self, limit: int):
        self.limit = limit
        self._semaphore: asyncio.Semaphore | None = None

    @property
    def semaphore(self) -> asyncio.Semaphore:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.limit)
        return self._semaphore


@asynccontextmanager
async def admitted(semaphore: asyncio.Semaphore, *, acquired: bool = False):
    """Hold one of the process's turns for the request running in this context (``acquired``:
    the caller already took it)."""
    if not acquired:
        await semaphore.acquire()
    try:
        token = _admission.set((semaphore, asyncio.get_running_loop()))
        try:
            yield
        finally:
            _admission.reset(token)
    finally:
        semaphore.release()


@contextmanager
def waiting_outside():
    """Around a call to a remote service: the request's turn goes to another request while it
    waits, and is taken back (waiting in line again) before the request goes on. Outside an
    admitted request (tasks, tests, commands) it does nothing."""
    admission = _admission.get()
    if admission is None or _on_event_loop():
        yield
        return
    semaphore, loop = admission
    token = _admission.set(None)  # nested calls don't give the turn away twice
    loop.call_soon_threadsafe(semaphore.release)
    try:
        yield
    finally:
        _admission.reset(token)
        asyncio.run_coroutine_threadsafe(semaphore.acquire(), loop).result()


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True

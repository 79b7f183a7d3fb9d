"""Background work for the sandbox: a timer queue feeding a thread pool, and webhook delivery.

Webhooks are POSTed from worker threads, never from the ASGI event loop, so the sandbox can be
mounted inside the very server whose webhook view it calls without blocking it.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from ..payloads import encode_webhook
from ..signature import sign

logger = logging.getLogger(__name__)


class Scheduler:
    """Runs callables on a thread pool, now (``submit``) or at a monotonic time (``call_at``)."""

    def __init__(self, workers: int = 16) -> None:
        self._workers = workers
        self._heap: list[tuple[float, int, Callable[[], Any]]] = []
        self._counter = itertools.count()
        self._condition = threading.Condition()
        self._pool: ThreadPoolExecutor | None = None
        self._timer: threading.Thread | None = None
        self._closed = False

    def _ensure_started(self) -> ThreadPoolExecutor:
        # Called with the condition held.
        if self._closed:
            raise RuntimeError("the sandbox scheduler is closed")
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="wa-sandbox")
            self._timer = threading.Thread(
                target=self._run_timer, name="wa-sandbox-timer", daemon=True
            )
            self._timer.start()
        return self._pool

    def submit(self, fn: Callable[[], Any]) -> Future:
        with self._condition:
            pool = self._ensure_started()
        return pool.submit(_logged(fn))

    def call_at(self, when: float, fn: Callable[[], Any]) -> None:
        """Run ``fn`` at ``when`` (``time.monotonic()``); ignored once the scheduler is closed."""
        with self._condition:
            if self._closed:
                return
            self._ensure_started()
            heapq.heappush(self._heap, (when, next(self._counter), fn))
            self._condition.notify()

    def call_later(self, delay: float, fn: Callable[[], Any]) -> None:
        self.call_at(time.monotonic() + max(0.0, delay), fn)

    def clear(self) -> None:
        """Drop every timer not yet due (used by reset)."""
        with self._condition:
            self._heap.clear()

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._heap.clear()
            self._condition.notify()
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _run_timer(self) -> None:
        while True:
            with self._condition:
                while not self._closed and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._condition.wait(timeout)
                if self._closed:
                    return
                _when, _seq, fn = heapq.heappop(self._heap)
                pool = self._pool
            if pool is not None:
                try:
                    pool.submit(_logged(fn))
                except RuntimeError:  # shut down meanwhile
                    return


def _logged(fn: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        try:
            return fn()
        except Exception:
            logger.exception("whatsapp sandbox background task failed")
            raise

    return run


@dataclass(frozen=True)
class Outcome:
    """One webhook attempt's result: ``state`` is "delivered" (200), "retrying" (another attempt
    is scheduled) or "failed" (no attempt left); ``reason`` says why it was not a 200."""

    state: str
    status_code: int | None
    reason: str
    attempts: int


OnResult = Callable[[Outcome], None]


@dataclass(frozen=True)
class Target:
    """Where and how to deliver one webhook: the number's URL and app secret."""

    phone_number_id: str
    url: str
    app_secret: str


class WebhookSender:
    """Signs and POSTs webhook bodies; retries non-200 answers later with backoff, like Meta."""

    def __init__(
        self,
        scheduler: Scheduler,
        *,
        timeout: float,
        retry_delays: Sequence[float],
        log_size: int = 1000,
    ) -> None:
        self.scheduler = scheduler
        self.timeout = timeout
        self.retry_delays = tuple(retry_delays)
        self.log: deque[dict[str, Any]] = deque(maxlen=log_size)
        self._log_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=64, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def deliver(
        self, target: Target, body: dict, *, kind: str, on_result: OnResult | None = None
    ) -> int | None:
        """POST now (in the calling thread); schedule retries on failure. Returns the status.
        ``on_result(outcome)`` hears every attempt's outcome (see ``Outcome``)."""
        payload = encode_webhook(body)
        return self._attempt(
            target,
            payload,
            kind=kind,
            delivery_id=next(self._ids),
            attempt=0,
            on_result=on_result,
        )

    def deliver_async(
        self, target: Target, body: dict, *, kind: str, on_result: OnResult | None = None
    ) -> Future:
        return self.scheduler.submit(
            lambda: self.deliver(target, body, kind=kind, on_result=on_result)
        )

    def verify_url(self, url: str, verify_token: str, challenge: str) -> dict[str, Any]:
        """Meta's subscription check: GET with hub.* parameters; the body must echo the challenge."""
        params = {
            "hub.mode": "subscribe",
            "hub.verify_token": verify_token,
            "hub.challenge": challenge,
        }
        try:
            response = self._session.get(
                url, params=params, timeout=self.timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            return {"ok": False, "status_code": None, "detail": f"{type(exc).__name__}: {exc}"}
        ok = response.status_code == 200 and response.text.strip() == challenge
        detail = "challenge echoed" if ok else "the response did not echo hub.challenge with 200"
        return {"ok": ok, "status_code": response.status_code, "detail": detail}

    def deliveries(self, phone_number_id: str | None = None) -> list[dict[str, Any]]:
        with self._log_lock:
            items = list(self.log)
        if phone_number_id:
            items = [i for i in items if i["phone_number_id"] == phone_number_id]
        return items

    def clear_log(self) -> None:
        with self._log_lock:
            self.log.clear()

    def close(self) -> None:
        self._session.close()

    def _attempt(
        self,
        target: Target,
        payload: bytes,
        *,
        kind: str,
        delivery_id: int,
        attempt: int,
        on_result: OnResult | None = None,
    ) -> int | None:
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(payload, target.app_secret),
            "User-Agent": "facebookexternalua",
        }
        status: int | None = None
        error = ""
        try:
            response = self._session.post(
                target.url,
                data=payload,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
            status = response.status_code
            response.close()
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        with self._log_lock:
            self.log.append(
                {
                    "delivery_id": delivery_id,
                    "phone_number_id": target.phone_number_id,
                    "kind": kind,
                    "url": target.url,
                    "attempt": attempt + 1,
                    "status_code": status,
                    "error": error,
                    "at": time.time(),
                }
            )
        # Meta counts any answer other than 200 as a failure.
        retrying = status != 200 and attempt < len(self.retry_delays)
        if on_result is not None:
            state = "delivered" if status == 200 else ("retrying" if retrying else "failed")
            reason = error or (f"HTTP {status}" if status != 200 else "")
            try:
                on_result(Outcome(state, status, reason, attempt + 1))
            except Exception:
                logger.exception("whatsapp sandbox delivery callback failed")
        if retrying:
            logger.info(
                "whatsapp sandbox webhook %s to pnid=%s failed (status=%s); retry %d in %.1fs",
                kind,
                target.phone_number_id,
                status,
                attempt + 1,
                self.retry_delays[attempt],
            )
            self.scheduler.call_later(
                self.retry_delays[attempt],
                lambda: self._attempt(
                    target,
                    payload,
                    kind=kind,
                    delivery_id=delivery_id,
                    attempt=attempt + 1,
                    on_result=on_result,
                ),
            )
        return status

"""A web process admits HTTP_CONCURRENCY Django requests at a time (kernel.admission)."""

import asyncio
import time

from asgiref.sync import sync_to_async

from kernel import admission


def run_requests(limit: int, *requests):
    """Run ``requests`` (name, waits_on_remote) concurrently, each on a thread of its own as
    Django runs sync views, through a process admission of ``limit``; return what happened."""
    timeline = []

    def view(name, waits_on_remote):
        timeline.append(f"{name} starts")
        if waits_on_remote:
            # Noted before the turn is given away: once it is, the next request may start
            # before this thread runs again.
            timeline.append(f"{name} waits on WhatsApp")
            with admission.waiting_outside():
                time.sleep(0.3)
        else:
            time.sleep(0.05)  # stands for CPU work
        timeline.append(f"{name} ends")

    async def scenario():
        semaphore = asyncio.Semaphore(limit)

        async def request(name, waits_on_remote):
            async with admission.admitted(semaphore):
                await sync_to_async(view, thread_sensitive=False)(name, waits_on_remote)

        await asyncio.gather(*(request(*r) for r in requests))

    asyncio.run(scenario())
    return timeline


def test_requests_beyond_the_limit_wait_their_turn_before_any_work():
    timeline = run_requests(1, ("A", False), ("B", False), ("C", False))
    assert timeline == ["A starts", "A ends", "B starts", "B ends", "C starts", "C ends"]


def test_a_request_waiting_on_a_remote_service_lets_the_next_one_run():
    timeline = run_requests(1, ("A", True), ("B", False))
    assert timeline == ["A starts", "A waits on WhatsApp", "B starts", "B ends", "A ends"]


def test_outside_an_admitted_request_waiting_outside_does_nothing():
    with admission.waiting_outside():
        pass  # a task or a command: no turn to give away, and no error

"""Hot Redis commands on each thread's own connection (``kernel.cache.own_command``): the API
throttle's script and the delivery tasks' RPUSH (real Redis)."""

import threading
import uuid

import pytest
import redis
from django_q.signing import SignedPackage

from kernel import tasks
from kernel.cache import own_command, script_run
from tests.inbox.test_multiprocess_fanout import REDIS_URL, redis_available

pytestmark = pytest.mark.skipif(not redis_available(), reason="needs Redis at REDIS_URL")


@pytest.fixture
def client():
    client = redis.Redis.from_url(REDIS_URL)
    prefix = f"test-own-command:{uuid.uuid4().hex}"
    yield client, prefix
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


def test_a_connection_the_server_dropped_is_reopened_and_the_command_sent_again(client):
    client, prefix = client
    own_command(client, "SET", f"{prefix}:a", "1")
    own_id = own_command(client, "CLIENT", "ID")
    # Redis restarted, a proxy timed the connection out: the server closes it.
    assert client.execute_command("CLIENT", "KILL", "ID", own_id) == 1

    assert own_command(client, "INCR", f"{prefix}:a") == 2
    assert own_command(client, "CLIENT", "ID") != own_id  # a new connection
    assert client.get(f"{prefix}:a") == b"2"


def test_an_error_redis_answers_raises_and_the_connection_goes_on(client):
    client, prefix = client
    own_command(client, "SET", f"{prefix}:text", "not a number")
    with pytest.raises(redis.ResponseError):
        own_command(client, "INCR", f"{prefix}:text")
    assert own_command(client, "GET", f"{prefix}:text") == b"not a number"


def test_each_thread_has_its_own_connection(client):
    client, _prefix = client
    ids = []

    def run():
        ids.append(own_command(client, "CLIENT", "ID"))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids.append(own_command(client, "CLIENT", "ID"))
    assert len(set(ids)) == 4


def test_a_script_redis_has_not_seen_is_sent_whole_then_by_its_digest(client):
    client, prefix = client
    # A script text no test ran before: Redis does not know its digest (as after a restart).
    script = f"-- {uuid.uuid4().hex}\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])"
    assert script_run(client, script, [f"{prefix}:n"], [5]) == 5
    assert script_run(client, script, [f"{prefix}:n"], [2]) == 7
    # EVAL loaded it: the next call goes by digest.
    sha = client.script_load(script)
    assert client.script_exists(sha) == [True]


def test_the_delivery_broker_queues_packages_django_q2_reads(client):
    client, _prefix = client
    broker = tasks.OwnConnectionRedis(f"test-own-command-{uuid.uuid4().hex}")
    try:
        broker.enqueue(SignedPackage.dumps({"func": "inbox.tasks.deliver_message", "args": (7,)}))
        assert broker.queue_size() == 1
        _task_id, package = broker.dequeue()[0]
        assert SignedPackage.loads(package)["args"] == (7,)
    finally:
        broker.delete_queue()

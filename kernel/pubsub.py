"""channels-redis' pub/sub channel layer, with the groups of one batch published together.

A send's live event goes to the organization's group and, when the chat is assigned, to the
assignee's: two PUBLISH round trips on the web process's event loop, each about 80 µs of its
CPU. ``group_send_many`` pipelines a batch's publishes, one round trip per Redis shard
(``kernel.realtime`` calls it for what it sends together); ``publish_many_now`` does the same
from a thread with no event loop, on that thread's own connection.
"""

import redis
from channels_redis.pubsub import RedisPubSubChannelLayer, _consistent_hash
from channels_redis.utils import decode_hosts

from kernel.cache import own_pipeline


class PubSubLayer(RedisPubSubChannelLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        config = {"hosts": None, "prefix": "asgi"}
        config.update(zip(("hosts", "prefix"), args, strict=False))
        config.update({k: v for k, v in kwargs.items() if k in config})
        self._hosts = decode_hosts(config["hosts"])
        self._prefix = config["prefix"]
        self._clients: dict[int, redis.Redis] = {}
        # Every shard a URL (not a sentinel set): a thread can reach it without the loop.
        self.publishes_now = all("address" in host for host in self._hosts)

    async def group_send_many(self, sends: list[tuple[str, dict]]) -> None:
        """``group_send`` of each (group, message), in order, one pipeline per shard."""
        layer = self._get_layer()
        by_shard: dict = {}
        for group, message in sends:
            channel = layer._get_group_channel_name(group)
            payload = self.serialize(message)
            by_shard.setdefault(layer._get_shard(channel), []).append((channel, payload))
        for shard, publishes in by_shard.items():
            async with shard._lock:  # as channels-redis' own publish holds it
                shard._ensure_redis()
                async with shard._redis.pipeline(transaction=False) as pipe:
                    for channel, payload in publishes:
                        pipe.publish(channel, payload)
                    await pipe.execute()

    def publish_many_now(self, sends: list[tuple[str, dict]]) -> None:
        """``group_send_many`` from this thread, without an event loop: the channel and payload
        channels-redis would publish (its group naming, its shard hash, this layer's
        serializer), PUBLISHed in one round trip per shard (``kernel.cache.own_pipeline``).
        Only when ``publishes_now``."""
        by_shard: dict[int, list] = {}
        for group, message in sends:
            channel = f"{self._prefix}__group__{group}"
            shard = _consistent_hash(channel, len(self._hosts))
            by_shard.setdefault(shard, []).append(("PUBLISH", channel, self.serialize(message)))
        for shard, commands in by_shard.items():
            own_pipeline(self._client(shard), commands)

    def _client(self, shard: int) -> redis.Redis:
        client = self._clients.get(shard)
        if client is None:
            host = dict(self._hosts[shard])
            address = host.pop("address")
            client = self._clients[shard] = redis.Redis.from_url(address, **host)
        return client

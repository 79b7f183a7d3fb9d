"""channels-redis' pub/sub channel layer, with the groups of one batch published together.

A send's live event goes to the organization's group and, when the chat is assigned, to the
assignee's: two PUBLISH round trips on the web process's event loop, each about 80 µs of its
CPU. ``group_send_many`` pipelines a batch's publishes, one round trip per Redis shard
(``kernel.realtime`` calls it for what it sends together).
"""

from channels_redis.pubsub import RedisPubSubChannelLayer


class PubSubLayer(RedisPubSubChannelLayer):
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

"""Who is online in the inbox now: a member with a live socket that spoke in the last
``ONLINE_SECONDS`` (the inbox page announces itself every 10 s). Kept in the cache, so every web
process sees every socket with Redis; handoffs deal chats to these members first."""

import time

from django.core.cache import cache

ONLINE_SECONDS = 60


def _key(organization_id: int, user_id: int) -> str:
    return f"porfin:online:{organization_id}:{user_id}"


async def seen(organization_id: int, user_id: int) -> None:
    await cache.aset(_key(organization_id, user_id), time.time(), timeout=ONLINE_SECONDS)


async def gone(organization_id: int, user_id: int) -> None:
    await cache.adelete(_key(organization_id, user_id))


def online_user_ids(organization_id: int, user_ids: list[int]) -> set[int]:
    found = cache.get_many([_key(organization_id, user_id) for user_id in user_ids])
    return {user_id for user_id in user_ids if _key(organization_id, user_id) in found}

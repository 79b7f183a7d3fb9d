"""The conversation router: one owner for every customer message.

Apps above ``inbox`` register handlers at start-up (``AppConfig.ready``), each with an order:
consent (STOP/START) 10, CSAT survey taps 20, daily-question answers 30, flows 40, bookings 50,
the AI assistant 90. For each customer message, inside the transaction that stores it, the
router asks them in order; the first that accepts claims the message with a conditional UPDATE
of ``Message.handled_by`` (exactly one owner, whatever runs twice) and does its work: database
bookkeeping at once, sends and tasks after commit. A message nobody claims is the team's.

A handler may *hold* a chat (a flow waiting for an answer, a booking in progress): the chat's
next message goes straight to it, before the others, unless a handler that ``preempts`` holds
(opting out) wants it. A person replying, or "AI off", releases the hold; so does its expiry.

Deciding runs on the inbound hot path: ``accepts`` must be cheap (memos, one indexed query at
most) and must not write; ``handle`` writes. Both run in a savepoint, so a failing handler
leaves the message stored and unclaimed (logged) rather than losing the delivery.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from inbox.models import Chat, Contact, Message

logger = logging.getLogger(__name__)

PERSON = "person"  # a teammate answered it (set when one replies to unclaimed messages)


@dataclass(frozen=True)
class Inbound:
    """What a handler is asked about: the stored message, its chat (with contact and
    organization loaded) and whether this message opened the chat."""

    message: Message
    chat: Chat
    contact: Contact
    new_chat: bool = False
    notes: dict = field(default_factory=dict)  # what ``accepts`` found, for ``handle``

    @property
    def held_by(self) -> str:
        return self.chat.held_by if _hold_is_live(self.chat) else ""


@dataclass(frozen=True)
class Handler:
    key: str  # stored in Message.handled_by and Chat.held_by (≤ 20 characters)
    order: int
    label: str | Promise  # shown in the thread: "Handled by {label}"
    accepts: Callable[[Inbound], bool]
    handle: Callable[[Inbound], None]
    preempts_hold: bool = False  # e.g. STOP wins over a flow waiting for an answer


_handlers: dict[str, Handler] = {}
_ordered: list[Handler] = []


def register(handler: Handler) -> None:
    """Called from ``AppConfig.ready``; registering the same key again replaces it."""
    if len(handler.key) > 20:
        raise ValueError(f"Handler key {handler.key!r} is longer than 20 characters")
    _handlers[handler.key] = handler
    _ordered[:] = sorted(_handlers.values(), key=lambda h: (h.order, h.key))


def unregister(key: str) -> None:
    _handlers.pop(key, None)
    _ordered[:] = sorted(_handlers.values(), key=lambda h: (h.order, h.key))


def handlers() -> list[Handler]:
    return list(_ordered)


# --- Starters: handlers another app may start on a chat -----------------------------------------


@dataclass(frozen=True)
class Starter:
    """A handler that can also be started on a chat by another app (appointments' booking
    menus, started by a flow's "book" step), without either app importing the other.
    ``start(chat, option)`` holds the chat and sends the first message; ``options(org_id)``
    lists what may be chosen (value, label), e.g. the services to book."""

    key: str
    label: str | Promise
    start: Callable[[Chat, str], None]
    options: Callable[[int], list[tuple[str, str]]] = lambda _organization_id: []


_starters: dict[str, Starter] = {}


def register_starter(starter: Starter) -> None:
    _starters[starter.key] = starter


def starter(key: str) -> Starter | None:
    return _starters.get(key)


def label_for(key: str) -> str:
    if not key:
        return ""
    if key == PERSON:
        return str(_("a team member"))
    handler = _handlers.get(key)
    return str(handler.label) if handler else key


def route(inbound: Inbound) -> str:
    """Give ``inbound.message`` to its one owner; returns the owner's key ("" for the team).

    Runs inside the transaction that stored the message, in one savepoint: a handler that
    fails is logged and skipped, and the others are asked again."""
    failed: set[str] = set()
    while True:
        try:
            with transaction.atomic():
                return _route_once(inbound, failed)
        except _HandlerFailed as failure:
            logger.error(
                "Handler %s failed on message %s; asking the others",
                failure.key,
                inbound.message.pk,
                exc_info=failure.__cause__,
            )
            inbound.message.handled_by = ""
            failed.add(failure.key)


def route_many(inbounds: list[Inbound]) -> list[str]:
    """``route`` for a batch of stored messages (a webhook batch's), in order: one savepoint
    for all of them instead of one each. If a handler fails, the batch's routing is undone and
    every message is routed again on its own (``route``), where the failure stays isolated."""
    if not inbounds:
        return []
    try:
        with transaction.atomic():
            return [_route_once(inbound, set()) for inbound in inbounds]
    except _HandlerFailed:
        logger.warning(
            "A handler failed in a batch of %d messages; routing each alone", len(inbounds)
        )
    chats = {inbound.chat.pk: inbound.chat for inbound in inbounds}
    for pk, held_by, held_until in Chat.objects.filter(pk__in=chats).values_list(
        "pk", "held_by", "held_until"
    ):  # what the undone handlers changed in memory
        chats[pk].held_by, chats[pk].held_until = held_by, held_until
    for inbound in inbounds:
        inbound.message.handled_by = ""
        inbound.notes.clear()
    return [route(inbound) for inbound in inbounds]


class _HandlerFailed(Exception):
    def __init__(self, key: str):
        self.key = key


def _route_once(inbound: Inbound, failed: set[str]) -> str:
    message = inbound.message
    for handler in _candidates(inbound):
        if handler.key in failed:
            continue
        try:
            if not handler.accepts(inbound):
                continue
            if not _claim(message, handler.key):  # the same message routed twice
                return (
                    Message.objects.filter(pk=message.pk)
                    .values_list("handled_by", flat=True)
                    .first()
                    or ""
                )
            handler.handle(inbound)
        except Exception as exc:
            raise _HandlerFailed(handler.key) from exc
        return handler.key
    return ""


def _candidates(inbound: Inbound) -> list[Handler]:
    held = _handlers.get(inbound.held_by) if inbound.held_by else None
    if held is None:
        return _ordered
    first = [h for h in _ordered if h.preempts_hold and h is not held]
    return [*first, held, *(h for h in _ordered if h is not held and not h.preempts_hold)]


def _claim(message: Message, key: str) -> bool:
    claimed = Message.objects.filter(pk=message.pk, handled_by="").update(handled_by=key)
    if claimed:
        message.handled_by = key
    return bool(claimed)


# --- Holds --------------------------------------------------------------------------------------


def _hold_is_live(chat: Chat) -> bool:
    return bool(chat.held_by) and (chat.held_until is None or chat.held_until > timezone.now())


def chat_hold(*, chat: Chat, by: str, until: datetime | None = None) -> None:
    """Send the chat's next customer messages to handler ``by`` first, until ``until``."""
    if by not in _handlers:
        raise ValueError(f"No handler {by!r} is registered")
    Chat.objects.filter(pk=chat.pk).update(held_by=by, held_until=until)
    chat.held_by, chat.held_until = by, until


def chat_release(*, chat: Chat, by: str | None = None) -> bool:
    """End the chat's hold (only ``by``'s, when given). True when there was one."""
    held = Chat.objects.filter(pk=chat.pk).exclude(held_by="")
    if by is not None:
        held = held.filter(held_by=by)
    released = held.update(held_by="", held_until=None)
    if released or by is None or chat.held_by == by:
        chat.held_by, chat.held_until = "", None
    return bool(released)


def person_answered(*, chat: Chat, since: datetime) -> None:
    """A teammate replied: the chat's unclaimed customer messages since ``since`` were theirs,
    and whatever held the chat lets go (a person is talking now)."""
    Message.objects.filter(
        chat=chat, direction=Message.Direction.INBOUND, handled_by="", timestamp__gte=since
    ).update(handled_by=PERSON)
    if chat.held_by:
        chat_release(chat=chat)

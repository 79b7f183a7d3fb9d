"""``kernel.sql.CompiledQuery``: the objects ``first`` builds from its compiled statement are
the ones the queryset's ``first()`` builds, converted columns included (JSON, datetimes, UUIDs,
booleans), on every call after the one that compiled it (issue 21: the API's send looks its
chat up with it)."""

import uuid
from datetime import timedelta

from django.test import TestCase
from django.utils import timezone

from inbox.models import Chat, Contact
from kernel.sql import CompiledQuery
from tests.base import make_chat, make_org


def build(organization_id, chat_code):
    return (
        Chat.objects.filter(organization_id=organization_id, code=chat_code)
        .select_related("contact", "number")
        .only(
            *("code", "organization", "contact", "number", "window_expires_at", "seq"),
            *("ai_enabled", "tags", "contact__attributes", "contact__tags", "contact__wa_id"),
            *("number__provider", "number__organization"),
        )
    )


class CompiledQueryTests(TestCase):
    def setUp(self):
        self.org, self.number = make_org("Clínica Compilada", "clinica-compilada", "445")
        self.chats = []
        for i, (tags, attributes) in enumerate(
            [(["vip", "retorno"], {"plano": "ouro", "visitas": 3}), ([], {})]
        ):
            chat = make_chat(self.org, self.number, f"55119000000{50 + i}", f"Cliente {i}")
            Chat.objects.filter(pk=chat.pk).update(
                tags=tags,
                ai_enabled=not i,
                window_expires_at=timezone.now() + timedelta(hours=5 + i),
            )
            Contact.objects.filter(pk=chat.contact_id).update(tags=tags, attributes=attributes)
            self.chats.append(Chat.objects.get(pk=chat.pk))

    def described(self, chat: Chat) -> tuple:
        return (
            chat.pk,
            chat.code,
            chat.organization_id,
            chat.window_expires_at,
            chat.seq,
            chat.ai_enabled,
            chat.tags,
            chat.contact.pk,
            chat.contact.attributes,
            chat.contact.tags,
            chat.contact.wa_id,
            chat.number.pk,
            chat.number.provider,
        )

    def test_first_builds_what_the_queryset_builds(self):
        lookup = CompiledQuery(build, -7391, uuid.UUID(int=7392))
        for _round in range(2):  # the second round runs the statement compiled by the first
            for chat in self.chats:
                found = lookup.first(self.org.pk, chat.code)
                self.assertEqual(
                    self.described(found), self.described(build(self.org.pk, chat.code).first())
                )
                self.assertIsInstance(found.code, uuid.UUID)
                self.assertIsInstance(found.contact.attributes, dict)
                self.assertIsInstance(found.tags, list)
        self.assertEqual(self.chats[0].tags, ["vip", "retorno"])
        self.assertEqual(
            lookup.first(self.org.pk, self.chats[0].code).contact.attributes,
            {"plano": "ouro", "visitas": 3},
        )

    def test_no_row_is_none(self):
        lookup = CompiledQuery(build, -7391, uuid.UUID(int=7392))
        self.assertIsNone(lookup.first(self.org.pk, uuid.uuid4()))
        self.assertIsNone(lookup.first(self.org.pk + 1000, self.chats[0].code))

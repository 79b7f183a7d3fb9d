"""Every way a contact is written sends the same event (``inbox.contacts``): an import's new
contacts run the "new contact" automations and reach integrators as ``contact.created``
webhooks (a real local receiver), queued in blocks rather than one task per contact; pages,
the API, assistants' tools and automations send "updated" with what changed."""

import json
import math
from unittest import mock

from django.dispatch import receiver
from django.test import override_settings
from django.urls import reverse

from assistants import tools
from campaigns import automations
from campaigns.models import Automation, AutomationRun
from inbox import signals
from inbox.models import Contact
from integrations import outgoing
from kernel import tasks
from tests.api.helpers import ApiTestCase
from tests.api.receiver import Receiver

T = Automation.Trigger


class EventLog:
    """Records the inbox's contact events as receivers see them (after commit)."""

    def __init__(self, test):
        self.single: list[tuple[str, int, dict]] = []
        self.bulk: list[tuple[str, list[int]]] = []

        @receiver(signals.contact_changed, weak=False, dispatch_uid="test-contact-log")
        def one(sender, *, contact, change, data=None, **kwargs):
            self.single.append((change, contact.pk, data or {}))

        @receiver(signals.contacts_changed, weak=False, dispatch_uid="test-contacts-log")
        def many(sender, *, contacts, change, **kwargs):
            self.bulk.append((change, [c.pk for c in contacts]))

        test.addCleanup(signals.contact_changed.disconnect, dispatch_uid="test-contact-log")
        test.addCleanup(signals.contacts_changed.disconnect, dispatch_uid="test-contacts-log")

    def of(self, change: str) -> list[tuple[int, dict]]:
        return [(pk, data) for kind, pk, data in self.single if kind == change]


@override_settings(EGRESS_ALLOW_PRIVATE=True)
class ContactEventsTests(ApiTestCase):
    def setUp(self):
        self.receiver = Receiver().start()
        self.addCleanup(self.receiver.stop)
        outgoing.subscription_create(
            organization=self.org, url=self.receiver.url, events=["contact.created"]
        )
        self.events = EventLog(self)

    def created_webhooks(self) -> list[str]:
        bodies = [json.loads(body) for _headers, body in self.receiver.requests]
        return [b["data"]["contact"]["id"] for b in bodies if b["type"] == "contact.created"]

    def test_an_import_runs_new_contact_automations_and_webhooks_for_each_in_blocks(self):
        rule = Automation.objects.create(
            organization=self.org,
            name="Boas-vindas",
            trigger=T.NEW_CONTACT,
            action_tags=["boas-vindas"],
        )
        existing = self.other_chat.contact
        rows = [{"phone": f"+55119876{i:05d}", "name": f"Importada {i}"} for i in range(450)]
        rows.append({"phone": existing.phone, "tags": ["vip"]})
        with mock.patch("kernel.tasks.dispatch", wraps=tasks.dispatch) as dispatched:
            response = self.api("post", reverse("api_contact_import"), {"contacts": rows})
        self.assertEqual(response.json(), {"created": 450, "updated": 1, "merged": 0})
        new = Contact.objects.filter(organization=self.org, name__startswith="Importada ")
        new_ids = set(new.values_list("pk", flat=True))
        self.assertEqual(len(new_ids), 450)
        # One event per contact...
        self.assertEqual({pk for pk, _data in self.events.of("created")}, new_ids)
        self.assertEqual(self.events.of("updated")[0][0], existing.pk)
        # ...the automation ran for each new contact (and tagged it), not for the old one...
        runs = AutomationRun.objects.filter(automation=rule)
        self.assertEqual(set(runs.values_list("contact_id", flat=True)), new_ids)
        self.assertEqual(new.filter(tags__icontains="boas-vindas").count(), 450)
        # ...and the integrator heard of each new contact, once.
        codes = {str(code) for code in new.values_list("code", flat=True)}
        self.assertEqual(sorted(self.created_webhooks()), sorted(codes))
        # In blocks: a few tasks, not 450 of each.
        paths = [call.args[0] for call in dispatched.call_args_list]
        self.assertEqual(
            paths.count("campaigns.tasks.automations_for_new_contacts"),
            math.ceil(450 / automations.NEW_CONTACTS_PER_TASK),
        )
        self.assertEqual(
            paths.count("integrations.outgoing.deliveries_attempt"),
            math.ceil(450 / outgoing.DELIVERIES_PER_TASK),
        )
        self.assertNotIn("campaigns.tasks.automations_for_event", paths)
        self.assertNotIn("integrations.outgoing.delivery_attempt", paths)
        # Contact created events arrive numbered in order for the subscription.
        sequences = [json.loads(body)["sequence"] for _h, body in self.receiver.requests]
        self.assertEqual(sorted(sequences), list(range(1, 451)))

    def test_an_import_that_fails_validation_sends_nothing(self):
        rows = [{"phone": "+5511987600001"}, {"phone": "not a phone"}]
        response = self.api("post", reverse("api_contact_import"), {"contacts": rows})
        self.assertEqual(response.status_code, 422)
        self.assertEqual((self.events.single, self.receiver.requests), ([], []))

    def test_the_api_creates_and_updates_with_one_event_each(self):
        created = self.api(
            "post", reverse("api_contacts"), {"phone": "+5511987600002", "tags": ["lead"]}
        ).json()
        contact = Contact.objects.get(code=created["id"])
        self.assertEqual(self.events.of("created"), [(contact.pk, {"source": "api"})])
        self.assertEqual(self.created_webhooks(), [created["id"]])
        self.api("patch", reverse("api_contact", args=[contact.code]), {"name": "Ana"})
        ((pk, data),) = self.events.of("updated")
        self.assertEqual((pk, data["fields"], data["source"]), (contact.pk, ["name"], "staff"))
        # A change to nothing is no change: no second event.
        self.api("patch", reverse("api_contact", args=[contact.code]), {"name": "Ana"})
        self.assertEqual(len(self.events.of("updated")), 1)

    def test_the_pages_send_updated_with_the_added_tags(self):
        self.client.force_login(self.admin)
        chat = self.other_chat
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(
                reverse("contact_update", args=[chat.code]),
                {"name": "Nome Novo", "email": "", "language": "", "notes": "", "tags": "vip"},
            )
        self.assertEqual(response.status_code, 302)
        ((pk, data),) = self.events.of("updated")
        self.assertEqual((pk, data["tags_added"]), (chat.contact_id, ["vip"]))
        self.assertEqual(sorted(data["fields"]), ["name", "tags"])
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(
                reverse("campaign_contact_edit", args=[chat.contact.code]),
                {
                    "name": "Nome Novo",
                    "tags": "vip, retorno",
                    "stage": "customer",
                    "opt_in": "unknown",
                },
            )
        self.assertEqual(response.status_code, 302, response.content.decode()[-3000:])
        (_pk, data) = self.events.of("updated")[1]
        self.assertEqual(data["tags_added"], ["retorno"])
        contact = Contact.objects.get(pk=chat.contact_id)
        self.assertEqual((contact.stage, contact.conversion_source), ("customer", "staff"))

    def test_an_assistant_saving_what_the_customer_said_sends_updated(self):
        contact = self.other_chat.contact
        Contact.objects.filter(pk=contact.pk).update(attributes={"plano": "ouro"})
        context = tools.ToolContext(chat=self.other_chat, contact=contact)
        with self.captureOnCommitCallbacks(execute=True):
            result = tools.execute(
                context, "set_contact", {"email": "ana@x.test", "attributes": {"cidade": "Rio"}}
            )
            tools.execute(context, "add_tag", {"tag": "implante"})
        self.assertEqual(result, {"ok": True, "saved": ["attributes", "email"]})
        contact.refresh_from_db()
        self.assertEqual(contact.attributes, {"plano": "ouro", "cidade": "Rio"})
        self.assertIn("implante", contact.tags)
        sources = [data["source"] for _pk, data in self.events.of("updated")]
        self.assertEqual(sources, ["assistant", "assistant"])

"""Audiences: XLSX import, lead-score and engagement segments, lifecycle stages and the funnel's
conversions, end to end through the pages, the inbox services and the WhatsApp sandbox."""

import io
import re
import zipfile
from datetime import date

import openpyxl
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from campaigns import dispatch, services
from campaigns.dispatch import Dispatcher, Options
from campaigns.models import ConsentEvent, Segment
from inbox import services as inbox_services
from inbox.models import Chat, Contact
from integrations.models import WhatsAppNumber
from tests.base import BaseTestCase
from tests.campaigns.helpers import (
    SandboxMixin,
    inbound,
    make_campaign,
    make_contacts,
    make_template,
)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def workbook(rows) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


class XlsxImportTests(BaseTestCase):
    def setUp(self):
        self.org.language = "pt-br"  # Brazil is the default region for local numbers
        self.org.save()
        self.manager.language = "en"  # while this reader reads English
        self.manager.save()
        self.login(self.manager)

    def upload(self, data: bytes, name="contatos.xlsx", content_type=XLSX):
        upload = SimpleUploadedFile(name, data, content_type=content_type)
        return self.client.post(reverse("campaign_contact_import"), {"file": upload})

    def test_it_imports_a_workbook_with_mapping_merging_duplicates(self):
        data = workbook(
            [
                ["Nome", "Celular", "Cidade", "Aceita", "Desde"],
                ["Maria", 5511988887777, "Santos", "sim", date(2024, 3, 1)],  # a number cell
                ["Maria Souza", "(11) 98888-7777", None, "sim", None],  # same phone: merged
                [None, None, None, None, None],  # a blank row is ignored
                ["João", "21 99999-0000", "Rio", "não", None],
            ]
        )
        response = self.upload(data)
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "Cidade")
        self.assertContains(response, "5511988887777")  # the preview shows the cells as text
        self.assertEqual(response.context["rows"], 4)
        with self.captureOnCommitCallbacks(execute=True):  # the import task runs after commit
            response = self.client.post(
                reverse("campaign_contact_import"),
                {
                    "token": response.context["token"],
                    "col_0": "name",
                    "col_1": "phone",
                    "col_2": "attribute",
                    "col_3": "opt_in",
                    "col_4": "attribute",
                },
            )
        response = self.client.get(response["Location"])
        self.assertContains(response, "Import finished")
        job = response.context["job"]
        self.assertEqual((job.created_count, job.updated_count, job.merged_count), (2, 0, 1))
        maria = Contact.objects.get(organization=self.org, phone="+5511988887777")
        self.assertEqual(maria.name, "Maria Souza")
        self.assertEqual(maria.attributes, {"cidade": "Santos", "desde": "2024-03-01"})
        self.assertEqual(maria.opt_in, Contact.OptIn.OPTED_IN)
        joao = Contact.objects.get(organization=self.org, phone="+5521999990000")
        self.assertEqual(joao.opt_in, Contact.OptIn.OPTED_OUT)
        self.assertEqual(set(ConsentEvent.objects.values_list("source", flat=True)), {"import"})

    def test_a_workbook_imports_its_good_rows_and_offers_the_bad_ones_to_download(self):
        data = workbook(
            [
                ["phone", "name", "email", "stage"],
                ["+5511977776666", "Ana", "ana@example.com", "lead"],
                [12345, "Curto", None, None],
                ["+5511955554444", "Eva", "not-an-email", None],
                ["+5511944443333", "Rui", None, "vip"],
            ]
        )
        token = self.upload(data).context["token"]
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(
                reverse("campaign_contact_import"),
                {
                    "token": token,
                    "col_0": "phone",
                    "col_1": "name",
                    "col_2": "email",
                    "col_3": "stage",
                },
            )
        response = self.client.get(response["Location"])
        self.assertContains(response, "3 rows were not imported")
        self.assertTrue(Contact.objects.filter(organization=self.org, name="Ana").exists())
        errors = self.client.get(
            reverse("campaign_contact_import_errors", args=[response.context["job"].code])
        )
        lines = errors.content.decode().splitlines()
        self.assertEqual(lines[0], "line,problem,phone,name,email,stage")
        self.assertEqual([line.split(",")[0] for line in lines[1:]], ["3", "4", "5"])
        self.assertIn("12345", lines[1])
        self.assertIn("not-an-email", lines[2])
        self.assertFalse(Contact.objects.filter(name__in=["Curto", "Eva", "Rui"]).exists())

    def test_it_rejects_files_it_cannot_import_with_a_clear_error(self):
        not_a_workbook = io.BytesIO()
        with zipfile.ZipFile(not_a_workbook, "w") as archive:
            archive.writestr("hello.txt", "just a zip")
        cases = {
            "old.xls": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "old Excel file"),
            "photo.xlsx": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 100, "not a CSV"),
            "fake.xlsx": (not_a_workbook.getvalue(), "could not be read as an Excel"),
            "empty.xlsx": (workbook([]), "The file is empty"),
            "huge.csv": (
                b"phone\n" + b"+5511977776666\n" * (services.MAX_IMPORT_ROWS + 1),
                "more than 50,000 rows",
            ),
        }
        for name, (data, message) in cases.items():
            with self.subTest(name=name):
                response = self.upload(data, name=name)
                self.assertEqual(response.status_code, 200)
                self.assertContains(response, message)
                self.assertNotIn("token", response.context)
        self.assertFalse(Contact.objects.filter(phone="+5511977776666").exists())


class SegmentFilterTests(BaseTestCase):
    def setUp(self):
        self.login(self.admin)

    def test_it_keeps_the_latest_lead_score_from_conversation_analysis(self):
        """Resolving a chat runs the analysis (offline provider: buying words raise the score);
        the contact keeps the score and a lead-score segment counts it."""
        hot = self.other_chat
        with self.captureOnCommitCallbacks(execute=True):
            inbox_services.message_receive(
                number=self.number,
                inbound=inbound(
                    self.number, hot.contact.wa_id, "Quero agendar uma consulta, qual o preço?"
                ),
            )
        with self.captureOnCommitCallbacks(execute=True):
            inbox_services.chat_set_status(chat=hot, status=Chat.Status.RESOLVED, actor=self.admin)
        hot.contact.refresh_from_db()
        self.assertGreaterEqual(hot.contact.lead_score, 7)
        cold = self.agent_chat
        with self.captureOnCommitCallbacks(execute=True):
            inbox_services.chat_set_status(chat=cold, status=Chat.Status.RESOLVED, actor=self.admin)
        cold.contact.refresh_from_db()
        self.assertLessEqual(cold.contact.lead_score, 4)
        make_contacts(self.org, 2)  # never analysed: no score

        response = self.client.post(
            reverse("segment_create"), {"name": "Quentes", "kind": "dynamic", "lead_score_min": 7}
        )
        segment = Segment.objects.get(name="Quentes")
        self.assertEqual(segment.filters, {"lead_score_min": 7})
        page = self.client.get(response.url)
        self.assertEqual(page.context["count"], 1)
        self.assertEqual([c.pk for c in page.context["page"]], [hot.contact.pk])
        # The live count on the filter form follows the new filters.
        live = self.client.get(
            reverse("campaign_contact_list"),
            {"part": "count", "lead_score_max": 4},
            HTTP_HX_REQUEST="true",
        )
        self.assertContains(live, 'id="contact-count"')
        self.assertContains(live, "1 contact")
        self.assertNotContains(live, "<table")
        self.assertEqual(
            self.client.get(reverse("campaign_contact_list"), {"lead_score_min": 1}).context[
                "count"
            ],
            2,
        )
        bad = self.client.get(
            reverse("campaign_contact_list"), {"lead_score_min": 8, "lead_score_max": 3}
        )
        self.assertContains(bad, "The maximum must not be below the minimum.")

    def test_engagement_segments_count_each_campaign_outcome(self):
        contacts = make_contacts(self.org, 5)
        template = make_template(self.number)
        spring = make_campaign(
            self.org, self.number, template, name="Primavera", status="completed"
        )
        other = make_campaign(self.org, self.number, template, name="Outra", status="completed")
        now = timezone.now()
        outcomes = [
            ("read", {"delivered_at": now, "read_at": now}),
            ("replied", {"delivered_at": now, "read_at": now, "replied_at": now}),
            ("sent", {}),  # no delivery receipt
            ("failed", {}),  # delivery failed
            ("delivered", {"delivered_at": now}),
        ]
        for contact, (status, stamps) in zip(contacts, outcomes, strict=True):
            spring.recipients.create(
                organization=self.org, contact=contact, to=contact.wa_id, status=status, **stamps
            )
        other.recipients.create(
            organization=self.org, contact=contacts[4], to=contacts[4].wa_id, status="read"
        )
        expected = {
            "read_not_replied": {contacts[0].pk},
            "replied": {contacts[1].pk},
            "not_delivered": {contacts[2].pk, contacts[3].pk},
            "delivered_not_read": {contacts[4].pk},
        }
        for state, members in expected.items():
            with self.subTest(state=state):
                self.client.post(
                    reverse("segment_create"),
                    {
                        "name": state,
                        "kind": "dynamic",
                        "engagement": state,
                        "engagement_campaign": str(spring.code),
                    },
                )
                segment = Segment.objects.get(name=state)
                page = self.client.get(reverse("segment_detail", args=[segment.code]))
                self.assertEqual({c.pk for c in page.context["page"]}, members)
                self.assertEqual(page.context["count"], len(members))
        # Without the campaign, "read but did not reply" also finds the other campaign's reader.
        response = self.client.get(
            reverse("campaign_contact_list"), {"engagement": "read_not_replied"}
        )
        self.assertEqual(response.context["count"], 2)
        # Another organization's campaign is not a valid choice.
        foreign = make_campaign(
            self.other_org, self.other_number, make_template(self.other_number), status="completed"
        )
        response = self.client.get(
            reverse("campaign_contact_list"),
            {"engagement": "replied", "engagement_campaign": str(foreign.code)},
        )
        self.assertIn("engagement_campaign", response.context["form"].errors)


class LifecycleTests(SandboxMixin, BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        WhatsAppNumber.objects.filter(pk=cls.number.pk).update(waba_id="900111")
        cls.number.refresh_from_db()
        cls.template = make_template(cls.number)

    def setUp(self):
        self.sandbox_number(self.number)

    def send(self, **fields):
        campaign = make_campaign(self.org, self.number, self.template, **fields)
        services.campaign_launch(campaign=campaign)
        self.assertTrue(dispatch.run_start(campaign.pk))
        outcome = Dispatcher(campaign.pk, Options(idle_sleep=0.02, slice_seconds=30)).run()
        self.assertEqual(outcome, "done")
        campaign.refresh_from_db()
        return campaign

    def reply(self, contact, text):
        with self.captureOnCommitCallbacks(execute=True):
            inbox_services.message_receive(
                number=self.number, inbound=inbound(self.number, contact.wa_id, text)
            )

    def stage(self, contact):
        return Contact.objects.get(pk=contact.pk).stage

    def funnel(self, campaign) -> int:
        """The "converted" counter of the campaign page's live stats."""
        self.login(self.manager)
        response = self.client.get(
            reverse("campaign_detail", args=[campaign.code]),
            {"part": "stats"},
            HTTP_HX_REQUEST="true",
        )
        found = re.search(r'data-field="converted">(\d+)<', response.content.decode())
        return int(found.group(1))

    def test_a_send_contacts_a_lead_and_a_reply_converts_when_replies_count(self):
        lead, lost, customer = make_contacts(self.org, 3)
        Contact.objects.filter(pk=lost.pk).update(stage=Contact.Stage.LOST)
        Contact.objects.filter(pk=customer.pk).update(stage=Contact.Stage.CUSTOMER)
        campaign = self.send(variables={"conversion": {"kind": "reply", "value": ""}})
        self.assertEqual(
            [self.stage(c) for c in (lead, lost, customer)], ["contacted", "lost", "customer"]
        )
        self.reply(lead, "STOP")  # an opt-out is never a conversion
        self.assertEqual(self.stage(lead), "replied")
        self.reply(lead, "START")
        self.reply(lead, "Quero sim, obrigado!")
        contact = Contact.objects.get(pk=lead.pk)
        self.assertEqual(contact.stage, "customer")
        self.assertEqual(contact.conversion_source, f"campaign:{campaign.code}")
        self.assertIsNotNone(contact.converted_at)
        self.reply(customer, "Olá")  # already a customer: not this campaign's conversion
        self.assertEqual(Contact.objects.get(pk=customer.pk).conversion_source, "")
        self.assertEqual(self.funnel(campaign), 1)
        # A later send never moves a customer back.
        self.send(name="Segunda")
        self.assertEqual(self.stage(lead), "customer")

    def test_a_reply_is_only_replied_when_the_campaign_counts_something_else(self):
        contact = make_contacts(self.org, 1)[0]
        campaign = self.send(variables={"conversion": {"kind": "tag", "value": "agendou"}})
        self.reply(contact, "Quero agendar")
        self.assertEqual(self.stage(contact), "replied")
        # A teammate tags the chat in the inbox: that is the conversion.
        chat = Chat.objects.get(contact=contact, number=self.number)
        with self.captureOnCommitCallbacks(execute=True):
            inbox_services.chat_set_tags(chat=chat, tags=["Agendou"], actor=self.manager)
        self.assertEqual(self.stage(contact), "customer")
        self.assertEqual(self.funnel(campaign), 1)

    def test_a_bulk_tag_on_the_contacts_page_converts(self):
        first, second = make_contacts(self.org, 2)
        campaign = self.send(variables={"conversion": {"kind": "tag", "value": "comprou"}})
        self.login(self.manager)
        self.client.post(
            reverse("campaign_contact_bulk"),
            {"contact": [str(first.code), str(second.code)], "add": "vip"},
        )
        self.assertEqual(self.stage(first), "contacted")
        self.client.post(
            reverse("campaign_contact_bulk"), {"contact": [str(first.code)], "add": "comprou"}
        )
        self.assertEqual((self.stage(first), self.stage(second)), ("customer", "contacted"))
        self.assertEqual(self.funnel(campaign), 1)

    def test_an_analysis_intent_converts(self):
        contact = make_contacts(self.org, 1)[0]
        campaign = self.send(variables={"conversion": {"kind": "intent", "value": "agendar"}})
        self.reply(contact, "Quero agendar uma consulta")
        self.assertEqual(self.stage(contact), "replied")
        chat = Chat.objects.get(contact=contact, number=self.number)
        with self.captureOnCommitCallbacks(execute=True):
            inbox_services.chat_set_status(chat=chat, status=Chat.Status.RESOLVED, actor=None)
        contact.refresh_from_db()
        self.assertEqual(contact.stage, "customer")
        self.assertIsNotNone(contact.lead_score)
        self.assertEqual(self.funnel(campaign), 1)

    def test_staff_set_the_stage_on_the_contact_page(self):
        contact = make_contacts(self.org, 1)[0]
        self.login(self.manager)
        url = reverse("campaign_contact_edit", args=[contact.code])
        self.client.post(url, {"name": contact.name, "stage": "customer", "opt_in": "opted_in"})
        contact.refresh_from_db()
        self.assertEqual((contact.stage, contact.conversion_source), ("customer", "staff"))
        self.assertContains(self.client.get(url), "Customer since")
        self.client.post(url, {"name": contact.name, "stage": "lost", "opt_in": "opted_in"})
        self.assertEqual(self.stage(contact), "lost")  # staff may move it anywhere

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import Role
from campaigns.models import Campaign, ConsentEvent, ContactImport, Segment
from inbox.models import Contact
from integrations.models import WhatsAppNumber
from tests.base import BaseTestCase
from tests.campaigns.helpers import make_campaign, make_contacts, make_template


class CampaignPagesTests(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        WhatsAppNumber.objects.filter(pk=cls.number.pk).update(waba_id="900111")
        cls.template = make_template(cls.number, "appointment_reminder")
        cls.campaign = make_campaign(cls.org, cls.number, cls.template, name="Lembrete de maio")

    def test_it_follows_the_role_matrix(self):
        expected = {Role.ADMIN: 200, Role.MANAGER: 200, Role.OPERATOR: 200, Role.AGENT: 403}
        for role, status in expected.items():
            self.login(self.members[role])
            with self.subTest(role=role):
                self.assertEqual(self.client.get(reverse("campaigns_index")).status_code, status)
                self.assertEqual(
                    self.client.get(reverse("campaign_contact_list")).status_code, status
                )
        self.login(self.operator)
        self.assertEqual(self.client.get(reverse("campaign_create")).status_code, 403)
        url = reverse("campaign_pause", args=[self.campaign.code])
        self.assertEqual(self.client.post(url).status_code, 403)

    def test_it_lists_campaigns_with_progress(self):
        self.login(self.operator)
        response = self.client.get(reverse("campaigns_index"))
        self.assertContains(response, "Lembrete de maio")
        self.assertContains(response, f'data-campaign="{self.campaign.code}"')
        self.assertContains(response, "<progress")

    def test_it_creates_a_campaign_with_variable_mapping_and_previews_it(self):
        self.login(self.manager)
        response = self.client.get(
            reverse("campaign_create"), {"template": self.template.pk}, HTTP_HX_REQUEST="true"
        )
        self.assertContains(response, "var_body_3_source")
        make_contacts(self.org, 2)
        data = {
            "name": "Consultas",
            "number": self.number.pk,
            "template": self.template.pk,
            "schedule": "now",
            "time_zone_mode": "organization",
            "pace": "rate",
            "rate_per_second": 20,
            "stagger_min_seconds": 60,
            "stagger_max_seconds": 120,
            "quiet_action": "defer",
            "require_opt_in": "on",
            "var_body_0_source": "first_name",
            "var_body_1_source": "fixed",
            "var_body_1_value": "Dra. Ana",
            "var_body_2_source": "attribute",
            "var_body_2_value": "dia",
            "var_body_2_fallback": "amanhã",
            "var_body_3_source": "fixed",
            "var_body_3_value": "10h",
        }
        response = self.client.post(reverse("campaign_create"), data)
        campaign = Campaign.objects.get(name="Consultas")
        self.assertRedirects(response, reverse("campaign_detail", args=[campaign.code]))
        self.assertEqual(campaign.status, Campaign.Status.DRAFT)
        self.assertEqual(
            campaign.variables["body"][2],
            {"source": "field", "value": "attribute:dia", "fallback": "amanhã"},
        )
        page = self.client.get(reverse("campaign_detail", args=[campaign.code]))
        self.assertContains(
            page, "Olá Cliente, lembramos da sua consulta com Dra. Ana em amanhã às 10h"
        )

    def test_it_rejects_a_rate_above_the_numbers_cap_and_a_past_date(self):
        self.login(self.admin)
        response = self.client.post(
            reverse("campaign_create"),
            {
                "name": "x",
                "number": self.number.pk,
                "template": self.template.pk,
                "schedule": "at",
                "scheduled_at": "2020-01-01T10:00",
                "rate_per_second": 500,
                "time_zone_mode": "organization",
                "pace": "rate",
                "quiet_action": "defer",
                "stagger_min_seconds": 1,
                "stagger_max_seconds": 2,
            },
        )
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "at most 80 messages per second")
        self.assertContains(response, "in the future")

    def test_it_pauses_and_cancels_from_the_page(self):
        self.login(self.admin)
        Campaign.objects.filter(pk=self.campaign.pk).update(status=Campaign.Status.SCHEDULED)
        self.client.post(reverse("campaign_pause", args=[self.campaign.code]))
        self.campaign.refresh_from_db()
        self.assertEqual(self.campaign.status, Campaign.Status.PAUSED)
        self.client.post(reverse("campaign_cancel", args=[self.campaign.code]))
        self.campaign.refresh_from_db()
        self.assertEqual(self.campaign.status, Campaign.Status.CANCELLED)
        self.assertEqual(
            self.client.get(reverse("campaign_pause", args=[self.campaign.code])).status_code, 405
        )

    def test_the_stats_partial_serves_htmx_polling(self):
        self.login(self.operator)
        response = self.client.get(
            reverse("campaign_detail", args=[self.campaign.code]),
            {"part": "stats"},
            HTTP_HX_REQUEST="true",
        )
        self.assertContains(response, 'id="campaign-stats"')
        self.assertNotContains(response, "<html")

    def test_other_organizations_segments_and_campaigns_stay_hidden(self):
        foreign_template = make_template(self.other_number)
        foreign = make_campaign(
            self.other_org, self.other_number, foreign_template, name="Bob promo"
        )
        segment = Segment.objects.create(organization=self.other_org, name="Bob list")
        self.login(self.admin)
        self.assertNotContains(self.client.get(reverse("campaigns_index")), "Bob promo")
        self.assertNotContains(self.client.get(reverse("segment_list")), "Bob list")
        self.assertEqual(
            self.client.get(reverse("campaign_detail", args=[foreign.code])).status_code, 404
        )
        self.assertEqual(
            self.client.get(reverse("segment_detail", args=[segment.code])).status_code, 404
        )
        # Bulk actions ignore another organization's contacts and lists.
        mine = Segment.objects.create(organization=self.org, name="Mine", kind="static")
        response = self.client.post(
            reverse("campaign_contact_bulk"),
            {"contact": [str(self.secret_chat.contact.code)], "list": str(mine.code)},
        )
        self.assertEqual(response.status_code, 302)
        self.assertEqual(mine.contacts.count(), 0)
        response = self.client.post(
            reverse("campaign_contact_bulk"),
            {"contact": [str(self.other_chat.contact.code)], "list": str(segment.code)},
        )
        self.assertEqual(response.status_code, 404)
        # The campaign form never offers another organization's number or template.
        form_page = self.client.get(reverse("campaign_create"))
        self.assertNotContains(form_page, "Clínica Bob Secreta")


class ContactPagesTests(BaseTestCase):
    def upload(self, text):
        upload = SimpleUploadedFile("contacts.csv", text.encode(), content_type="text/csv")
        response = self.client.post(reverse("campaign_contact_import"), {"file": upload})
        self.assertEqual(response.status_code, 200)
        return response.context["token"], response

    def test_it_imports_with_mapping_merges_duplicates_and_records_consent(self):
        self.org.language = "pt-br"  # Brazil is then the default region for local numbers
        self.org.save()
        self.manager.language = "en"  # while this reader reads English
        self.manager.save()
        self.login(self.manager)
        token, response = self.upload(
            "Nome;Celular;Cidade;Aceita\n"
            "Maria;(11) 98888-7777;Santos;sim\n"
            "Maria Souza;+55 11 98888-7777;;sim\n"
            "João;21 99999-0000;Rio;não\n"
        )
        self.assertContains(response, "Cidade")
        mapping = {
            "token": token,
            "col_0": "name",
            "col_1": "phone",
            "col_2": "attribute",
            "col_3": "opt_in",
        }
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(reverse("campaign_contact_import"), mapping)
        response = self.client.get(response["Location"])
        self.assertContains(response, "1 duplicate rows merged")
        maria = Contact.objects.get(organization=self.org, phone="+5511988887777")
        self.assertEqual((maria.name, maria.attributes), ("Maria Souza", {"cidade": "Santos"}))
        self.assertEqual(maria.opt_in, Contact.OptIn.OPTED_IN)
        self.assertEqual(maria.wa_id, "5511988887777")
        joao = Contact.objects.get(organization=self.org, phone="+5521999990000")
        self.assertEqual(joao.opt_in, Contact.OptIn.OPTED_OUT)
        self.assertEqual(set(ConsentEvent.objects.values_list("source", flat=True)), {"import"})

    def test_a_file_with_bad_rows_imports_the_others_and_lists_each_bad_row(self):
        self.login(self.admin)
        before = Contact.objects.count()
        token, _response = self.upload(
            "phone,name,email\n+5511977776666,Ana,ana@x.com\n12345,Bad,\n+5511955554444,Eve,not-an-email\n"
        )
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(
                reverse("campaign_contact_import"),
                {"token": token, "col_0": "phone", "col_1": "name", "col_2": "email"},
            )
        response = self.client.get(response["Location"])
        job = response.context["job"]
        self.assertContains(response, "2 rows were not imported")
        self.assertEqual(list(job.row_errors.values_list("line", flat=True)), [3, 4])
        self.assertEqual(Contact.objects.count(), before + 1)
        errors = self.client.get(reverse("campaign_contact_import_errors", args=[job.code]))
        self.assertEqual(errors["Content-Type"], "text/csv; charset=utf-8")
        self.assertIn("12345,Bad,", errors.content.decode())
        # A mapping without the phone is refused before anything starts.
        token, _response = self.upload("phone,name\n+5511977776666,Ana\n")
        response = self.client.post(
            reverse("campaign_contact_import"), {"token": token, "col_0": "", "col_1": "name"}
        )
        self.assertContains(response, "Map one column to the phone number.")
        self.assertEqual(ContactImport.objects.filter(organization=self.org).count(), 1)
        # Another organization's member never sees the import, nor its rows.
        self.login(self.outsider)
        for name in ("campaign_contact_import_detail", "campaign_contact_import_errors"):
            self.assertEqual(self.client.get(reverse(name, args=[job.code])).status_code, 404)
        # A member who may not edit contacts may not read them there either.
        self.login(self.agent)
        response = self.client.get(reverse("campaign_contact_import_errors", args=[job.code]))
        self.assertIn(response.status_code, (403, 404))

    def test_it_filters_tags_in_bulk_and_exports(self):
        contacts = make_contacts(self.org, 3)
        self.login(self.manager)
        self.client.post(
            reverse("campaign_contact_bulk"),
            {"contact": [str(contacts[0].code), str(contacts[1].code)], "add": "vip, maio"},
        )
        response = self.client.get(reverse("campaign_contact_list"), {"tag": "vip"})
        self.assertEqual(response.context["count"], 2)
        export = self.client.get(reverse("campaign_contact_export"), {"tag": "vip"})
        self.assertEqual(export["Content-Type"], "text/csv")
        lines = export.content.decode().strip().splitlines()
        self.assertEqual(len(lines), 3)
        self.assertIn("vip, maio", lines[1])
        self.assertNotIn("Zelda", export.content.decode())

    def test_the_bulk_action_returns_to_the_list_page_and_never_off_site(self):
        contacts = make_contacts(self.org, 1)
        self.login(self.manager)
        data = {"contact": [str(contacts[0].code)], "add": "vip"}
        back = reverse("campaign_contact_list") + "?tag=vip&page=2"
        response = self.client.post(reverse("campaign_contact_bulk"), {**data, "next": back})
        self.assertRedirects(response, back, fetch_redirect_response=False)
        for target in (
            "https://evil.example/",
            "//evil.example/",
            "https:evil.example",
            "/\\evil.example/",
            "javascript:alert(1)",
            "http://testserver/contacts/",  # same host, but downgraded from https
        ):
            with self.subTest(next=target):
                response = self.client.post(
                    reverse("campaign_contact_bulk"), {**data, "next": target}, secure=True
                )
                self.assertRedirects(
                    response, reverse("campaign_contact_list"), fetch_redirect_response=False
                )

    def test_a_saved_filter_segment_counts_live(self):
        contacts = make_contacts(self.org, 3)
        self.login(self.admin)
        response = self.client.post(
            reverse("segment_create"),
            {"name": "Leads", "kind": "dynamic", "stage": "lead", "opt_in": "opted_in"},
        )
        segment = Segment.objects.get(name="Leads")
        self.assertRedirects(response, reverse("segment_detail", args=[segment.code]))
        self.assertEqual(self.client.get(response.url).context["count"], 3)
        Contact.objects.filter(pk=contacts[0].pk).update(stage="customer")
        self.assertEqual(self.client.get(response.url).context["count"], 2)

    def test_it_edits_a_contact_and_records_a_staff_opt_out(self):
        contact = make_contacts(self.org, 1)[0]
        self.login(self.manager)
        url = reverse("campaign_contact_edit", args=[contact.code])
        self.client.post(
            url, {"name": "Nova", "tags": "a, b", "stage": "customer", "opt_in": "opted_out"}
        )
        contact.refresh_from_db()
        self.assertEqual(
            (contact.name, contact.tags, contact.opt_in), ("Nova", ["a", "b"], "opted_out")
        )
        event = ConsentEvent.objects.get(contact=contact)
        self.assertEqual((event.source, event.actor), ("staff", self.manager))
        self.login(self.operator)
        self.assertEqual(self.client.post(url, {"name": "x"}).status_code, 403)


class EngagementFilterTests(BaseTestCase):
    def test_it_finds_contacts_who_read_but_did_not_reply(self):
        contacts = make_contacts(self.org, 3)
        campaign = make_campaign(self.org, self.number, make_template(self.number))
        for contact, status in zip(contacts, ("read", "replied", "sent"), strict=True):
            campaign.recipients.create(
                organization=self.org, contact=contact, to=contact.wa_id, status=status
            )
        self.login(self.operator)
        response = self.client.get(
            reverse("campaign_contact_list"), {"engagement": "read_not_replied"}
        )
        self.assertEqual([c.pk for c in response.context["page"]], [contacts[0].pk])

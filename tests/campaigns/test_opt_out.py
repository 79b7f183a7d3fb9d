from campaigns import services
from campaigns.models import AudienceSettings, CampaignRecipient, ConsentEvent
from inbox import services as inbox_services
from inbox.models import Contact, Message
from integrations.models import WhatsAppNumber
from tests.base import BaseTestCase
from tests.campaigns.helpers import SandboxMixin, inbound


class OptOutTests(SandboxMixin, BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        WhatsAppNumber.objects.filter(pk=cls.number.pk).update(waba_id="900111")
        cls.number.refresh_from_db()

    def setUp(self):
        self.sandbox_number(self.number)

    def receive(self, text, wa_id="5511900000002"):
        with self.captureOnCommitCallbacks(execute=True):
            inbox_services.message_receive(
                number=self.number, inbound=inbound(self.number, wa_id, text)
            )
        return Contact.objects.get(organization=self.org, wa_id=wa_id)

    def confirmations(self, wa_id="5511900000002"):
        return Message.objects.filter(
            chat__contact__wa_id=wa_id,
            direction=Message.Direction.OUTBOUND,
            author_type=Message.Author.AUTOMATION,
        )

    def test_it_opts_out_on_stop_keywords_whatever_the_case_and_accents(self):
        for word in ("STOP", " parar ", "Sáir!", "cancelar", "UnSubscribe"):
            Contact.objects.filter(wa_id="5511900000002").update(opt_in=Contact.OptIn.OPTED_IN)
            contact = self.receive(word)
            self.assertEqual(contact.opt_in, Contact.OptIn.OPTED_OUT, word)
            self.assertEqual(contact.opt_in_source, "conversation")
            self.assertIsNotNone(contact.opt_in_at)

    def test_a_tap_on_our_own_menu_is_never_consent_but_a_template_stop_button_is(self):
        """A booking's or a flow's "Cancelar" button answers that menu; a marketing template's
        quick-reply "PARAR" is the customer opting out."""
        from dataclasses import replace

        tap = replace(
            inbound(self.number, "5511900000002", ""),
            type="interactive",
            content={"type": "button_reply", "button_reply": {"id": "appt:x", "title": "Cancelar"}},
        )
        with self.captureOnCommitCallbacks(execute=True):
            message = inbox_services.message_receive(number=self.number, inbound=tap)
        self.assertEqual(message.text, "Cancelar")
        contact = Contact.objects.get(organization=self.org, wa_id="5511900000002")
        self.assertNotEqual(contact.opt_in, Contact.OptIn.OPTED_OUT)
        quick_reply = replace(
            inbound(self.number, "5511900000002", ""),
            type="button",
            content={"payload": "stop-promotions", "text": "PARAR"},
        )
        with self.captureOnCommitCallbacks(execute=True):
            inbox_services.message_receive(number=self.number, inbound=quick_reply)
        contact.refresh_from_db()
        self.assertEqual(contact.opt_in, Contact.OptIn.OPTED_OUT)

    def test_it_ignores_keywords_inside_a_longer_message(self):
        contact = self.receive("não quero parar o tratamento")
        self.assertNotEqual(contact.opt_in, Contact.OptIn.OPTED_OUT)
        self.assertFalse(self.confirmations().exists())

    def test_it_confirms_once_and_records_the_history(self):
        self.receive("STOP")
        self.receive("stop")
        confirmations = self.confirmations()
        self.assertEqual(confirmations.count(), 1)
        self.assertIn("START", confirmations.get().text)
        # The confirmation really went out to WhatsApp.
        self.assertEqual(self.sent_to(self.number), ["5511900000002"])
        contact = self.receive("Voltar")
        self.assertEqual(contact.opt_in, Contact.OptIn.OPTED_IN)
        events = list(ConsentEvent.objects.filter(contact=contact).order_by("id"))
        self.assertEqual([e.opted_in for e in events], [False, True])
        self.assertEqual({e.source for e in events}, {"conversation"})
        self.assertEqual(self.confirmations().count(), 2)

    def test_it_uses_the_organizations_own_keywords(self):
        prefs = services.audience_settings_for(self.org)
        prefs.opt_out_keywords = "chega, basta"
        prefs.opt_out_reply = "Ok, sem mais mensagens."
        prefs.save()
        self.assertEqual(self.receive("STOP").opt_in, Contact.OptIn.UNKNOWN)
        self.assertEqual(self.receive("Chega").opt_in, Contact.OptIn.OPTED_OUT)
        self.assertEqual(self.confirmations().get().text, "Ok, sem mais mensagens.")
        self.assertEqual(AudienceSettings.objects.filter(organization=self.org).count(), 1)

    def test_a_keyword_change_holds_from_the_very_next_message(self):
        self.receive("Olá")  # the organization's keywords were read for this one
        prefs = services.audience_settings_for(self.org)
        prefs.opt_out_keywords = "chega"
        prefs.save()
        self.assertEqual(self.receive("Chega").opt_in, Contact.OptIn.OPTED_OUT)

    def test_it_skips_the_contacts_queued_campaign_sends(self):
        from tests.campaigns.helpers import make_campaign, make_template

        campaign = make_campaign(self.org, self.number, make_template(self.number))
        contact = Contact.objects.get(wa_id="5511900000002")
        row = CampaignRecipient.objects.create(
            organization=self.org, campaign=campaign, contact=contact, to=contact.wa_id
        )
        self.receive("PARAR")
        row.refresh_from_db()
        self.assertEqual((row.status, row.reason), ("skipped", "opted_out"))

"""CSAT end to end: a resolution sends reply buttons through the sandbox (real HTTP), the
customer's tap comes back through the signed webhook, the answer is stored once and shows on the
dashboard; stale, second and foreign taps are ignored; nothing is sent when the setting is off
or the 24-hour window is closed."""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from assistants.models import Assistant
from assistants.services import assistant_save
from inbox import services as inbox_services
from inbox.models import Chat, Message
from integrations import services
from reports import csat, privacy, stats, tasks
from reports.models import CsatResponse, CsatSurvey, ReportSettings
from tests.integrations.conftest import CUSTOMER_WA_ID
from tests.integrations.test_webhook_inbound import SandboxTestCase


class CsatTestCase(SandboxTestCase):
    def setUp(self):
        super().setUp()
        ReportSettings.objects.update_or_create(
            organization=self.org, defaults={"csat_enabled": True}
        )

    def customer_sends(self, **spec) -> Message | None:
        """Like the base class, but forwards the webhook carrying this very message: the
        sandbox's status webhooks for our survey may arrive in between."""
        result = services.sandbox_customer_send(
            number=self.number, spec={"from": CUSTOMER_WA_ID, "profile_name": "Carla", **spec}
        )
        wamid = result["wamid"].encode()
        received = self.receiver.wait_for(lambda items: any(wamid in r.body for r in items))
        self.forward(next(r for r in received if wamid in r.body))
        return Message.objects.filter(number=self.number, wamid=result["wamid"]).first()

    def open_chat(self) -> Chat:
        """A customer writes through the sandbox: the chat is open, its window too."""
        message = self.customer_sends(type="text", text="Oi, preciso remarcar")
        return Chat.objects.get(pk=message.chat_id)

    def resolve(self, chat, actor=None) -> Chat:
        with self.captureOnCommitCallbacks(execute=True):
            inbox_services.chat_set_status(
                chat=Chat.objects.get(pk=chat.pk), status=Chat.Status.RESOLVED, actor=actor
            )
        return Chat.objects.get(pk=chat.pk)

    def sent_to_sandbox(self, message_type="interactive") -> list[dict]:
        log = self.sandbox.app.messages(self.number.phone_number_id, direction="outbound")
        return [entry["message"] for entry in log if entry["message"]["type"] == message_type]

    def tap(self, survey: CsatSurvey, score: int, title="Ótimo") -> Message:
        context = {"context_id": survey.message.wamid} if survey.message else {}
        return self.customer_sends(
            type="button_reply", reply_id=f"csat:{survey.code}:{score}", title=title, **context
        )


class CsatFlowTests(CsatTestCase):
    def test_it_surveys_after_resolution_and_records_the_tap_end_to_end(self):
        chat = self.open_chat()
        with self.captureOnCommitCallbacks(execute=True):
            inbox_services.message_send(
                chat=chat,
                message_type="text",
                content={"body": "Claro! Remarcado."},
                author_user=self.manager,
            )
        self.resolve(chat, actor=self.manager)

        survey = CsatSurvey.objects.get(chat=chat)
        self.assertEqual(survey.agent, self.manager)
        self.assertIsNone(survey.assistant)
        (sent,) = self.sent_to_sandbox()
        interactive = sent["interactive"]
        self.assertEqual(interactive["type"], "button")
        self.assertEqual(interactive["body"]["text"], "How would you rate our service?")
        buttons = interactive["action"]["buttons"]
        self.assertEqual([b["reply"]["title"] for b in buttons], ["Great", "OK", "Bad"])
        self.assertEqual(buttons[0]["reply"]["id"], f"csat:{survey.code}:3")
        survey.message.refresh_from_db()
        self.assertEqual(survey.message.status, Message.Status.SENT)

        reply = self.tap(survey, 3)
        response = CsatResponse.objects.get(survey=survey)
        self.assertEqual(response.score, 3)
        self.assertEqual(response.agent, self.manager)
        self.assertEqual(response.contact, chat.contact)
        self.assertEqual(response.message, reply)
        (thanks,) = self.sent_to_sandbox("text")[-1:]
        self.assertEqual(thanks["text"]["body"], "Thank you for your feedback!")
        # The tap reopened the chat for a moment; it is resolved again, nothing to do.
        self.assertEqual(Chat.objects.get(pk=chat.pk).status, Chat.Status.RESOLVED)
        # LGPD: the answer is part of what we hold about the customer.
        exported, _files = privacy.contact_export_data(chat.contact)
        self.assertEqual([a["score"] for a in exported["satisfaction_answers"]], [3])

        today = stats.local_today(self.org)
        stats.stats_rebuild(self.org, first=today, last=today)
        self.login(self.manager)
        response = self.client.get(reverse("reports_dashboard"), {"period": "today"})
        cards = {card["label"]: card for card in response.context["cards"]}
        self.assertEqual(cards["Customer satisfaction (CSAT)"]["value"], "3.00 / 3")
        self.assertEqual(cards["Customer satisfaction (CSAT)"]["note"], "1 answer")
        (agent,) = [a for a in response.context["agents"] if a["name"] == "Mara Manager"]
        self.assertEqual(agent["csat"], "3.00 / 3 (1)")
        self.assertContains(response, "CSAT (answers)")

    def test_it_asks_the_organizations_own_question_in_its_language(self):
        self.org.language = "pt-br"
        self.org.save()
        ReportSettings.objects.filter(organization=self.org).update(
            csat_question="De 1 a 3, como foi?"
        )
        chat = self.open_chat()
        self.resolve(chat, actor=self.admin)
        (sent,) = self.sent_to_sandbox()
        self.assertEqual(sent["interactive"]["body"]["text"], "De 1 a 3, como foi?")
        self.assertEqual(len(sent["interactive"]["action"]["buttons"]), 3)

    def test_a_second_tap_and_a_stale_tap_are_ignored(self):
        chat = self.open_chat()
        self.resolve(chat, actor=self.admin)
        survey = CsatSurvey.objects.get(chat=chat)
        self.tap(survey, 1, "Ruim")
        self.tap(survey, 3, "Ótimo")  # changed their mind: the first answer stands
        self.assertEqual(list(CsatResponse.objects.values_list("score", flat=True)), [1])
        self.assertEqual(len(self.sent_to_sandbox("text")), 1)  # thanked once
        self.assertEqual(Chat.objects.get(pk=chat.pk).status, Chat.Status.RESOLVED)

        CsatResponse.objects.all().delete()
        CsatSurvey.objects.filter(pk=survey.pk).update(
            sent_at=timezone.now() - csat.REPLY_WINDOW - timedelta(minutes=1)
        )
        self.tap(survey, 2, "Ok")
        self.assertFalse(CsatResponse.objects.exists())

    def test_a_tap_naming_another_organizations_survey_is_ignored(self):
        resolution = Message.objects.create(
            organization=self.other_org, chat=self.secret_chat, number=self.other_number,
            direction="int", type="activity", author_type="system",
            content={"type": "activity", "activity": {"kind": "status", "status": "resolved"}},
        )  # fmt: skip
        foreign = CsatSurvey.objects.create(
            organization=self.other_org,
            chat=self.secret_chat,
            contact=self.secret_chat.contact,
            resolution=resolution,
        )
        self.open_chat()
        self.tap(foreign, 3)
        self.assertFalse(CsatResponse.objects.exists())
        self.assertEqual(self.sent_to_sandbox("text"), [])

    def test_it_surveys_once_per_resolution(self):
        chat = self.open_chat()
        self.resolve(chat, actor=self.admin)
        with self.captureOnCommitCallbacks(execute=True):
            tasks.csat_send(chat.pk)  # a repeated task
        self.assertEqual(CsatSurvey.objects.filter(chat=chat).count(), 1)
        self.assertEqual(len(self.sent_to_sandbox()), 1)

    def test_it_credits_the_assistant_when_the_ai_resolved_alone(self):
        assistant = Assistant(organization=self.org, name="Sofia", instructions="x")
        version = assistant_save(assistant=assistant, user=self.admin)
        chat = self.open_chat()
        Message.objects.create(
            organization=self.org, chat=chat, number=self.number, direction="out",
            text="Remarcado para amanhã.", author_type="assistant", author_ref=str(version.code),
            status="sent",
        )  # fmt: skip
        self.resolve(chat)
        survey = CsatSurvey.objects.get(chat=chat)
        self.assertIsNone(survey.agent)
        self.assertEqual(survey.assistant, assistant)
        self.tap(survey, 2, "Ok")
        self.assertEqual(CsatResponse.objects.get().assistant, assistant)


class CsatOffTests(CsatTestCase):
    def test_nothing_is_sent_when_the_setting_is_off(self):
        ReportSettings.objects.filter(organization=self.org).update(csat_enabled=False)
        chat = self.open_chat()
        self.resolve(chat, actor=self.admin)
        self.assertFalse(CsatSurvey.objects.exists())
        self.assertEqual(self.sent_to_sandbox(), [])
        self.assertEqual(Chat.objects.get(pk=chat.pk).status, Chat.Status.RESOLVED)

    def test_nothing_is_sent_outside_the_24_hour_window(self):
        chat = self.open_chat()
        Chat.objects.filter(pk=chat.pk).update(
            window_expires_at=timezone.now() - timedelta(minutes=1)
        )
        self.resolve(chat, actor=self.admin)
        self.assertFalse(CsatSurvey.objects.exists())
        self.assertEqual(self.sent_to_sandbox(), [])

    def test_nothing_is_sent_for_a_resolution_marked_merge_or_spam(self):
        chat = self.open_chat()
        from inbox import signals

        with self.captureOnCommitCallbacks(execute=True):
            Chat.objects.filter(pk=chat.pk).update(status=Chat.Status.RESOLVED)
            signals.send_on_commit(
                signals.chat_changed,
                chat=chat,
                change="status",
                actor=None,
                data={"status": "resolved", "reason": "spam"},
            )
        self.assertFalse(CsatSurvey.objects.exists())

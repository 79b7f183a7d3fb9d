"""Drip programs: step scheduling in each contact's time zone, sending through the sandbox,
unenrolment on opt-out, and the question of the day graded through the real OpenAI stub."""

from datetime import UTC, datetime, time, timedelta

from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from assistants.models import AISettings, Assistant
from campaigns import drips, messaging
from campaigns.models import DripDelivery, DripEnrolment, DripProgram, DripQuestion, DripStep
from inbox import services as inbox_services
from inbox.models import Contact, Message
from integrations.models import WhatsAppNumber
from tests.assistants.openai_stub import OpenAIStub
from tests.base import BaseTestCase
from tests.campaigns.helpers import SandboxMixin, inbound, make_template

E = DripEnrolment.Status


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


class DripTestCase(SandboxMixin, BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        WhatsAppNumber.objects.filter(pk=cls.number.pk).update(waba_id="900111")
        cls.number.refresh_from_db()
        cls.template = make_template(cls.number)
        cls.rio = Contact.objects.create(
            organization=cls.org,
            wa_id="5521955550001",
            phone="+5521955550001",
            name="Rita Rio",
            time_zone="America/Sao_Paulo",
        )
        cls.tokyo = Contact.objects.create(
            organization=cls.org,
            wa_id="81901234567",
            phone="+81901234567",
            name="Taro Tokyo",
            time_zone="Asia/Tokyo",
        )

    def setUp(self):
        self.sandbox_number(self.number)

    def receive(self, text, wa_id):
        with self.captureOnCommitCallbacks(execute=True):
            return inbox_services.message_receive(
                number=self.number, inbound=inbound(self.number, wa_id, text)
            )

    def tick(self, now):
        with self.captureOnCommitCallbacks(execute=True):
            return drips.drips_tick(now)


class StepScheduleTests(DripTestCase):
    def steps_program(self):
        program = DripProgram.objects.create(
            organization=self.org, name="Boas-vindas", number=self.number
        )
        for position, (days, at) in enumerate([(0, time(9)), (1, time(9)), (0, None)], start=1):
            DripStep.objects.create(
                organization=self.org,
                program=program,
                position=position,
                delay_days=days,
                delay_hours=0 if at else 2,
                send_time=at,
                text=f"Passo {position}",
                template=self.template,
            )
        return program

    def test_steps_fall_at_nine_in_each_contacts_zone(self):
        program = self.steps_program()
        now = utc(2026, 3, 10, 13, 0)  # 10:00 in São Paulo (UTC-3, no DST), 22:00 in Tokyo
        self.assertEqual(drips.first_due(program, self.rio, now), utc(2026, 3, 11, 12, 0))
        self.assertEqual(drips.first_due(program, self.tokyo, now), utc(2026, 3, 11, 0, 0))
        before_nine = utc(2026, 3, 10, 11, 0)  # 08:00 in São Paulo: today at 09:00
        self.assertEqual(drips.first_due(program, self.rio, before_nine), utc(2026, 3, 10, 12, 0))
        # Brazil has no DST: the same wall-clock time in the (southern) summer.
        self.assertEqual(
            drips.first_due(program, self.rio, utc(2026, 1, 10, 13, 0)), utc(2026, 1, 11, 12, 0)
        )

    def test_the_tick_sends_each_step_once_and_schedules_the_next(self):
        program = self.steps_program()
        enrolment = drips.enrolment_create(program=program, contact=self.rio, source="staff")
        DripEnrolment.objects.filter(pk=enrolment.pk).update(next_due_at=utc(2026, 3, 11, 12, 0))
        self.assertEqual(self.tick(utc(2026, 3, 11, 11, 59)), 0)
        self.assertEqual(self.tick(utc(2026, 3, 11, 12, 0)), 1)
        self.assertEqual(self.tick(utc(2026, 3, 11, 12, 0)), 0)  # never twice
        enrolment.refresh_from_db()
        self.assertEqual(enrolment.steps_sent, 1)
        self.assertEqual(enrolment.next_due_at, utc(2026, 3, 12, 12, 0))  # next day 09:00 BRT
        self.assertEqual(self.sent_to(self.number), ["5521955550001"])
        sent = Message.objects.get(chat__contact=self.rio)
        self.assertEqual(sent.type, Message.Type.TEMPLATE)  # window closed: the template
        self.assertEqual(sent.author_type, Message.Author.AUTOMATION)
        self.tick(utc(2026, 3, 12, 12, 0))
        enrolment.refresh_from_db()
        self.assertEqual(enrolment.next_due_at, utc(2026, 3, 12, 14, 0))  # 2 h later, any time
        self.tick(utc(2026, 3, 12, 14, 0))
        enrolment.refresh_from_db()
        self.assertEqual((enrolment.status, enrolment.steps_sent), (E.COMPLETED, 3))
        self.assertEqual(DripDelivery.objects.filter(enrolment=enrolment).count(), 3)

    def test_text_goes_out_while_the_window_is_open(self):
        program = self.steps_program()
        self.receive("oi", self.rio.wa_id)
        enrolment = drips.enrolment_create(program=program, contact=self.rio, source="staff")
        self.tick(enrolment.next_due_at)
        self.assertEqual(
            Message.objects.filter(author_type="automation").values_list("text", flat=True).get(),
            "Passo 1",
        )

    def test_opting_out_unenrols(self):
        program = self.steps_program()
        enrolment = drips.enrolment_create(program=program, contact=self.rio, source="staff")
        self.receive("PARAR", self.rio.wa_id)
        enrolment.refresh_from_db()
        self.assertEqual((enrolment.status, enrolment.stopped_reason), (E.STOPPED, "opted_out"))
        self.assertEqual(self.tick(timezone.now() + timedelta(days=3)), 0)
        self.assertFalse(DripDelivery.objects.exists())
        self.rio.refresh_from_db()
        with self.assertRaises(messaging.ActionSkipped):
            drips.enrolment_create(program=program, contact=self.rio, source="staff")


class QuestionOfTheDayTests(DripTestCase):
    @classmethod
    def setUpClass(cls):
        cls.stub = OpenAIStub().start()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.stub.stop()

    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.program = DripProgram.objects.create(
            organization=cls.org,
            name="Pergunta do dia",
            kind=DripProgram.Kind.QUESTION_OF_THE_DAY,
            number=cls.number,
            topics="higiene, ortodontia",
        )
        cls.questions = {}
        for key, topic, language, text in [
            ("pt1", "higiene", "pt", "Quantas vezes por dia escovar?"),
            ("en1", "higiene", "en", "How often should you brush?"),
            ("en2", "higiene", "en", "Why floss?"),
            ("orto", "ortodontia", "en", "How do braces work?"),
        ]:
            cls.questions[key] = DripQuestion.objects.create(
                organization=cls.org,
                program=cls.program,
                text=text,
                topic=topic,
                language=language,
                rubric="brush twice a day, fluoride toothpaste",
            )
        Assistant.objects.create(organization=cls.org, name="Sofia", model="gpt-4o-mini")

    def setUp(self):
        super().setUp()
        AISettings.objects.update_or_create(
            organization=self.org,
            defaults={"api_key": "sk-test", "base_url": self.stub.base_url, "timeout_seconds": 2},
        )
        self.stub.queue.clear()
        self.stub.requests.clear()

    def enrol(self, contact, topic="higiene", language="en"):
        return drips.enrolment_create(
            program=self.program, contact=contact, source="form", topic=topic, language=language
        )

    def test_questions_follow_the_topic_and_language(self):
        enrolment = self.enrol(self.tokyo)
        self.assertEqual(drips.next_question(enrolment), self.questions["en1"])
        pt = self.enrol(self.rio, language="pt")
        self.assertEqual(drips.next_question(pt), self.questions["pt1"])
        enrolment.topic = "ortodontia"
        self.assertEqual(drips.next_question(enrolment), self.questions["orto"])

    def test_the_question_goes_out_at_nine_local_time(self):
        enrolment = self.enrol(self.tokyo)
        DripEnrolment.objects.filter(pk=enrolment.pk).update(next_due_at=utc(2026, 3, 11, 0, 0))
        # The window is closed and there is no template: nothing may go out, and it says why.
        self.assertEqual(self.tick(utc(2026, 3, 11, 0, 0)), 0)
        enrolment.refresh_from_db()
        self.assertIn("no template", enrolment.last_error)
        self.assertEqual(enrolment.next_due_at, utc(2026, 3, 12, 0, 0))  # 09:00 JST tomorrow
        DripProgram.objects.filter(pk=self.program.pk).update(
            template=make_template(self.number, "appointment_reminder")
        )
        self.assertEqual(self.tick(utc(2026, 3, 12, 0, 0)), 1)
        delivery = DripDelivery.objects.get(enrolment=enrolment)
        self.assertEqual(delivery.question, self.questions["en1"])
        body = delivery.message.content["template"]["components"][-1]["parameters"]
        self.assertEqual(body[0]["text"], "How often should you brush?")  # {{1}} is the question
        self.assertEqual(body[1]["text"], "Taro Tokyo")
        self.assertEqual(self.sent_to(self.number), ["81901234567"])

    def test_an_answer_is_graded_by_the_assistant_and_answered(self):
        enrolment = self.enrol(self.rio)
        self.receive("oi", self.rio.wa_id)  # the window is open: the question goes as text
        self.tick(enrolment.next_due_at)
        question = Message.objects.get(author_type="automation", chat__contact=self.rio)
        self.assertEqual(question.text, "How often should you brush?")
        self.stub.script({"content": '{"score": 7, "feedback": "Good; mention fluoride."}'})
        answer = self.receive("Twice a day", self.rio.wa_id)
        delivery = DripDelivery.objects.get(enrolment=enrolment)
        self.assertEqual((delivery.answer, delivery.score), (answer, 7))
        self.assertEqual(delivery.feedback, "Good; mention fluoride.")
        reply = Message.objects.filter(author_type="automation").order_by("id").last()
        self.assertEqual(reply.text, "Score: 7/10. Good; mention fluoride.")
        self.assertEqual(reply.reply_to, answer)
        prompt = self.stub.chat_requests()[-1]["messages"]
        self.assertIn("Rubric:\nbrush twice a day", prompt[1]["content"])
        self.assertIn("Answer:\nTwice a day", prompt[1]["content"])
        self.assertIn("'en'", prompt[0]["content"])  # feedback in the contact's language
        # A second message is not a second answer.
        self.receive("Also floss", self.rio.wa_id)
        self.assertEqual(len(self.stub.chat_requests()), 1)
        # The next day brings the next question, not the answered one.
        enrolment.refresh_from_db()
        self.tick(enrolment.next_due_at)
        latest = DripDelivery.objects.filter(enrolment=enrolment).first()
        self.assertEqual(latest.question, self.questions["en2"])

    def test_when_the_model_fails_the_answer_is_kept_and_acknowledged(self):
        enrolment = self.enrol(self.rio)
        self.receive("oi", self.rio.wa_id)
        self.tick(enrolment.next_due_at)
        self.stub.script({"content": "not json at all"})
        with self.assertLogs("campaigns.drips", "WARNING") as logs:
            self.receive("Twice a day", self.rio.wa_id)
        self.assertIn("did not return JSON", logs.output[0])
        delivery = DripDelivery.objects.get(enrolment=enrolment)
        self.assertEqual((delivery.answer.text, delivery.score), ("Twice a day", None))
        reply = Message.objects.filter(author_type="automation").order_by("id").last()
        self.assertEqual(reply.text, "Thank you! Your answer was recorded.")

    @override_settings(OPENAI_API_KEY="")
    def test_without_an_ai_key_grading_is_offline(self):
        AISettings.objects.filter(organization=self.org).update(api_key="")
        enrolment = self.enrol(self.rio)
        self.receive("oi", self.rio.wa_id)
        self.tick(enrolment.next_due_at)
        self.receive("I brush twice a day", self.rio.wa_id)
        delivery = DripDelivery.objects.get(enrolment=enrolment)
        self.assertTrue(1 <= delivery.score <= 10)
        self.assertIn("fluoride", delivery.feedback)  # "also think about"
        self.assertEqual(self.stub.chat_requests(), [])

    def test_stop_is_not_an_answer(self):
        enrolment = self.enrol(self.rio)
        self.receive("oi", self.rio.wa_id)
        self.tick(enrolment.next_due_at)
        self.receive("STOP", self.rio.wa_id)
        self.assertFalse(DripDelivery.objects.filter(answer__isnull=False).exists())
        enrolment.refresh_from_db()
        self.assertEqual(enrolment.status, E.STOPPED)

    def test_when_every_question_was_sent_the_unanswered_one_returns(self):
        enrolment = self.enrol(self.tokyo)
        for key in ("en1", "en2"):
            DripDelivery.objects.create(
                organization=self.org, enrolment=enrolment, question=self.questions[key]
            )
        DripDelivery.objects.filter(question=self.questions["en1"]).update(
            answered_at=timezone.now(), answer=Message.objects.first()
        )
        self.assertEqual(drips.next_question(enrolment), self.questions["en2"])


class DripPageTests(DripTestCase):
    def test_a_manager_builds_a_program_with_steps_and_questions(self):
        self.login(self.manager)
        self.assertContains(self.client.get(reverse("drip_list")), "No drip programs yet")
        response = self.client.post(
            reverse("drip_create"),
            {
                "name": "Pergunta",
                "kind": "qotd",
                "is_active": "on",
                "number": self.number.pk,
                "send_time": "09:00",
                "topics": "higiene",
                "form_enabled": "on",
            },
        )
        program = DripProgram.objects.get(organization=self.org)
        self.assertRedirects(response, reverse("drip_detail", args=[program.code]))
        page = self.client.get(reverse("drip_detail", args=[program.code]))
        self.assertContains(page, f"/campaigns/join/{program.form_slug}/")
        questions = reverse("drip_questions", args=[program.code])
        bad = self.client.post(questions, {"text": "", "language": "pt", "rubric": "x"})
        self.assertEqual(bad.status_code, 400)
        self.client.post(
            questions,
            {
                "text": "Por que usar fio?",
                "topic": "higiene",
                "language": "pt",
                "rubric": "placa",
                "position": 1,
            },
        )
        self.assertContains(self.client.get(questions), "Por que usar fio?")
        steps = DripProgram.objects.create(organization=self.org, name="Passos", number=self.number)
        add = reverse("drip_step_add", args=[steps.code])
        self.assertContains(
            self.client.post(add, {"position": 1}),
            "Write a text or choose a template.",
            status_code=400,
        )
        self.client.post(add, {"position": 1, "delay_days": 0, "delay_hours": 1, "text": "Olá!"})
        self.assertContains(self.client.get(reverse("drip_detail", args=[steps.code])), "Olá!")

    def test_enrolments_page_shows_progress_and_unenrols(self):
        program = DripProgram.objects.create(organization=self.org, name="P", number=self.number)
        DripStep.objects.create(
            organization=self.org, program=program, text="Oi", template=self.template
        )
        enrolment = drips.enrolment_create(program=program, contact=self.rio, source="staff")
        self.login(self.admin)
        page = self.client.get(reverse("drip_enrolments", args=[program.code]))
        self.assertContains(page, "Rita Rio")
        self.client.post(reverse("drip_enrolment_stop", args=[program.code, enrolment.code]))
        enrolment.refresh_from_db()
        self.assertEqual(enrolment.status, E.STOPPED)

    def test_operators_read_agents_and_outsiders_do_not(self):
        program = DripProgram.objects.create(organization=self.org, name="P", number=self.number)
        self.login(self.operator)
        self.assertEqual(
            self.client.get(reverse("drip_detail", args=[program.code])).status_code, 200
        )
        self.assertEqual(
            self.client.post(
                reverse("drip_detail", args=[program.code]), {"name": "x"}
            ).status_code,
            403,
        )
        self.login(self.agent)
        self.assertEqual(self.client.get(reverse("drip_list")).status_code, 403)
        self.login(self.outsider)
        self.assertEqual(
            self.client.get(reverse("drip_detail", args=[program.code])).status_code, 404
        )

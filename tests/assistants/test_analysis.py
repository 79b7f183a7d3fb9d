from datetime import date, timedelta

from django.test import override_settings
from django.urls import reverse

from assistants import services
from assistants.models import AISettings, ConversationAnalysis, UsageRecord
from inbox import services as inbox_services
from inbox.models import Chat, Message
from integrations.providers import provider_for
from integrations.whatsapp import payloads
from tests.assistants.helpers import AssistantTestCase


class AnalysisTests(AssistantTestCase):
    def test_resolving_a_chat_analyses_it(self):
        chat = self.ai_chat()
        self.stub.script({"content": "Claro, temos horário amanhã."})
        self.receive("Quero agendar um clareamento, quanto custa?")
        self.stub.script(
            {"content": '{"summary": "Quer clareamento", "intent": "agendar clareamento", '
                        '"sentiment": "positive", "lead_score": 9, "lead_score_reason": "pediu preço e horário", '
                        '"next_step": "confirmar horário", "follow_up_days": 1}'}
        )  # fmt: skip
        with self.captureOnCommitCallbacks(execute=True):
            inbox_services.chat_set_status(chat=chat, status=Chat.Status.RESOLVED, actor=self.admin)
        analysis = ConversationAnalysis.objects.get(chat=chat)
        self.assertEqual(analysis.lead_score, 9)
        self.assertEqual(analysis.sentiment, "positive")
        self.assertEqual(analysis.follow_up_on, date.today() + timedelta(days=1))
        transcript = self.stub.chat_requests()[-1]["messages"][1]["content"]
        self.assertIn("Customer: Quero agendar um clareamento", transcript)
        self.assertIn("Business: Claro, temos horário amanhã.", transcript)
        self.assertTrue(UsageRecord.objects.filter(kind="analysis").exists())

    def test_analysis_on_demand_renders_the_side_panel_partial(self):
        self.stub.script({"content": 'Aqui: {"summary": "Dúvida", "intent": "preço", "sentiment": "neutral", '
                                     '"lead_score": 42, "follow_up_days": "x"}'})  # fmt: skip
        self.login(self.agent)
        url = reverse("chat_analyze", args=[self.agent_chat.code])
        response = self.client.post(url)
        self.assertContains(response, "10/10")  # clamped; the bad follow-up falls back to 7 days
        self.assertContains(response, "Dúvida")
        panel = self.client.get(reverse("chat_analysis", args=[self.agent_chat.code]))
        self.assertContains(panel, "Dúvida")
        # An agent only reaches their own chats.
        self.assertEqual(
            self.client.post(reverse("chat_analyze", args=[self.other_chat.code])).status_code, 404
        )

    @override_settings(OPENAI_API_KEY="")
    def test_offline_analysis_is_labelled(self):
        AISettings.objects.filter(organization=self.org).update(api_key="")
        analysis = services.chat_analyze(chat=self.agent_chat)
        self.assertTrue(analysis.offline)
        self.login(self.admin)
        panel = self.client.get(reverse("chat_analysis", args=[self.agent_chat.code]))
        self.assertContains(panel, "offline")


class GradingTests(AssistantTestCase):
    def test_it_grades_an_answer_against_a_rubric(self):
        self.stub.script(
            {"content": '{"score": 8, "feedback": "Muito bem, faltou citar o flúor."}'}
        )
        score, feedback = services.grade_answer(
            self.assistant,
            "Escovar 3 vezes ao dia, usar fio dental e creme com flúor",
            "Escovo e uso fio",
        )
        self.assertEqual((score, feedback), (8, "Muito bem, faltou citar o flúor."))
        prompt = self.stub.chat_requests()[-1]["messages"]
        self.assertIn("Rubric:", prompt[1]["content"])

    @override_settings(OPENAI_API_KEY="")
    def test_offline_grading_scores_by_coverage(self):
        AISettings.objects.filter(organization=self.org).update(api_key="")
        score, feedback = services.grade_answer(
            self.assistant, "escovar fio dental flúor", "Eu escovo e passo fio dental"
        )
        self.assertTrue(1 <= score <= 10)
        self.assertIn("flúor", feedback)


class VoiceNoteTests(AssistantTestCase):
    def test_a_voice_note_is_transcribed_and_answered_from_the_transcript(self):
        chat = self.ai_chat()
        media_id = provider_for(self.number).upload_media(
            data=b"OggS fake voice", mime_type="audio/ogg", filename="voz.ogg"
        )
        self.stub.transcript = "quero marcar uma limpeza amanhã"
        self.stub.script({"content": "Temos horário às 10h."})
        content = payloads.build_media(
            media_id=media_id, mime_type="audio/ogg", sha256="abc=", voice=True
        )
        self.receive("", message_type="audio", content=content)
        voice = chat.messages.get(type=Message.Type.AUDIO)
        self.assertEqual(voice.content["transcript"], "quero marcar uma limpeza amanhã")
        self.assertTrue(
            any(r["path"].endswith("/audio/transcriptions") for r in self.stub.requests)
        )
        last_user = self.stub.chat_requests()[-1]["messages"][-1]
        self.assertEqual(last_user["content"], "quero marcar uma limpeza amanhã")
        self.assertTrue(
            chat.messages.filter(author_type="assistant", text="Temos horário às 10h.").exists()
        )


class AnalysisPartialTests(AssistantTestCase):
    def test_the_partial_shows_the_latest_analysis_given_only_the_chat(self):
        from django.template.loader import render_to_string

        ConversationAnalysis.objects.create(
            organization=self.org, chat=self.agent_chat, summary="antiga", lead_score=2
        )
        ConversationAnalysis.objects.create(
            organization=self.org, chat=self.agent_chat, summary="recente", lead_score=7
        )
        html = render_to_string("assistants/_analysis.html", {"chat": self.agent_chat})
        self.assertIn("recente", html)
        self.assertIn("7/10", html)
        self.assertNotIn("antiga", html)


class TranscriptSummaryTests(AssistantTestCase):
    def test_a_clinical_note_is_written_from_a_transcript(self):
        message = self.agent_chat.messages.first()
        Message.objects.filter(pk=message.pk).update(
            content={"type": "audio", "transcript": "Dor no dente 36 há 3 dias, piora com frio."}
        )
        self.stub.script({"content": "S: dor no 36 há 3 dias, piora com frio. P: avaliar."})
        self.login(self.agent)
        url = reverse("transcript_summary", args=[message.code])
        response = self.client.post(url, {"kind": "clinical_note"})
        self.assertContains(response, "Clinical note")
        self.assertContains(response, "S: dor no 36")
        message.refresh_from_db()
        self.assertEqual(message.content["transcript_summary"]["kind"], "clinical_note")
        self.assertIn("piora com frio", self.stub.chat_requests()[-1]["messages"][1]["content"])
        other = self.other_chat.messages.first()  # not the agent's chat
        self.assertEqual(
            self.client.post(reverse("transcript_summary", args=[other.code])).status_code, 404
        )

    def test_a_message_without_transcript_is_refused(self):
        self.login(self.admin)
        url = reverse("transcript_summary", args=[self.other_chat.messages.first().code])
        self.assertEqual(self.client.post(url).status_code, 400)

"""Visit notes by voice: transcribed and structured by the organization's model; without a
model the note says plainly that transcription needs one."""

import json

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from appointments import services
from appointments.models import AgendaSettings, VisitNote
from assistants.models import AISettings
from tests.appointments.helpers import at, make_agenda, next_weekday
from tests.assistants.helpers import AssistantTestCase


def audio():
    return SimpleUploadedFile("nota.ogg", b"OggS fake voice", content_type="audio/ogg")


class VisitNoteTests(AssistantTestCase):
    def setUp(self):
        super().setUp()
        self.agenda = make_agenda(self.org, users=(self.agent, None))
        self.appointment = services.appointment_book(
            service=self.agenda["cleaning"],
            professional=self.agenda["ana"],
            starts_at=at(next_weekday(1), 9),
            channel="staff",
            customer_name="Paula",
        )
        self.url = reverse("appointment_visit_note", args=[self.appointment.code])
        self.login(self.agent)  # Ana, the professional

    def post(self, upload):
        with self.captureOnCommitCallbacks(execute=True):
            return self.client.post(self.url, {"audio": upload}, HTTP_HX_REQUEST="true")

    def test_the_model_transcribes_and_structures_the_note(self):
        self.stub.transcript = (
            "Paciente relata sensibilidade. Gengiva inflamada. Gengivite. Retorno em 30 dias."
        )
        self.stub.script(
            {
                "content": json.dumps(
                    {
                        "subjective": "Sensibilidade",
                        "objective": "Gengiva inflamada",
                        "assessment": "Gengivite",
                        "plan": "Retorno em 30 dias",
                    }
                )
            }
        )
        response = self.post(audio())
        self.assertContains(response, "Voice note saved")
        note = VisitNote.objects.get(appointment=self.appointment)
        self.assertEqual(note.status, "done")
        self.assertEqual(note.note["assessment"], "Gengivite")
        self.assertIn("sensibilidade", note.transcript)
        page = self.client.get(reverse("appointment_detail", args=[self.appointment.code]))
        self.assertContains(page, "Retorno em 30 dias")

    def test_offline_it_says_transcription_needs_a_model(self):
        AISettings.objects.filter(organization=self.org).delete()
        with self.settings(OPENAI_API_KEY=""):
            self.post(audio())
        note = VisitNote.objects.get(appointment=self.appointment)
        self.assertEqual(note.status, "needs_model")
        page = self.client.get(reverse("appointment_detail", args=[self.appointment.code]))
        self.assertContains(page, "Transcription needs an AI model")

    def test_it_refuses_what_is_not_audio_and_other_agendas(self):
        response = self.post(SimpleUploadedFile("x.pdf", b"%PDF", content_type="application/pdf"))
        self.assertEqual(response.status_code, 422)
        self.assertFalse(VisitNote.objects.exists())
        bruno_visit = services.appointment_book(
            service=self.agenda["implant"],
            professional=self.agenda["bruno"],
            starts_at=at(next_weekday(1), 10),
            channel="staff",
            customer_name="Outro",
        )
        response = self.client.post(
            reverse("appointment_visit_note", args=[bruno_visit.code]), {"audio": audio()}
        )
        self.assertEqual(response.status_code, 404)
        self.assertTrue(AgendaSettings.objects.exists())

"""LGPD: a contact's export lists their appointments; erasing the contact removes the name,
notes and voice notes kept on them (the appointment rows stay for the agenda's figures)."""

from django.core.files.uploadedfile import SimpleUploadedFile

from appointments import services
from appointments.models import Appointment, VisitNote
from reports import privacy
from tests.appointments.helpers import at, make_agenda, next_weekday
from tests.base import BaseTestCase


class AppointmentPrivacyTests(BaseTestCase):
    def test_export_and_erase(self):
        agenda = make_agenda(self.org)
        contact = self.other_chat.contact
        appointment = services.appointment_book(
            service=agenda["cleaning"],
            professional=agenda["ana"],
            starts_at=at(next_weekday(1), 9),
            channel="staff",
            contact=contact,
            notes="Alergia a penicilina",
        )
        note = VisitNote.objects.create(
            organization=self.org,
            appointment=appointment,
            audio=SimpleUploadedFile("n.ogg", b"OggS", content_type="audio/ogg"),
            mime_type="audio/ogg",
            status="done",
            transcript="Paciente Unassigned Customer com dor",
            note={"subjective": "dor"},
        )
        data, _media = privacy.contact_export_data(contact)
        self.assertEqual(data["appointments"][0]["notes"], "Alergia a penicilina")
        privacy.contact_erase(contact=contact, actor=self.admin)
        appointment.refresh_from_db()
        note.refresh_from_db()
        self.assertNotIn("Unassigned", appointment.customer_name)
        self.assertEqual(appointment.notes, "")
        self.assertEqual((note.transcript, note.note, note.audio.name), ("", {}, ""))
        self.assertEqual(Appointment.objects.count(), 1)

"""``manage.py appointments_demo``: Clínica Sorriso's services, two dentists with agendas and a
week of appointments, idempotently. Run after ``manage.py demo`` (and ``assistant_demo``, so the
demo assistant is told it can book)."""

from datetime import datetime, time, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import Organization, User
from appointments import availability, services
from appointments.models import AgendaSettings, Appointment, Professional, Service, WorkingHours
from inbox.models import Contact

SERVICES = [
    # name, category, minutes, buffer after, price, description, who
    ("Limpeza", "Prevenção", 30, 10, "150.00", "Profilaxia e remoção de tártaro", "both"),
    ("Avaliação", "Consulta", 30, 0, "0.00", "Primeira consulta com plano de tratamento", "both"),
    ("Clareamento", "Estética", 60, 10, "800.00", "Clareamento em consultório", "ana"),
    ("Restauração", "Tratamento", 45, 10, "250.00", "Restauração em resina", "both"),
    ("Avaliação de implante", "Implantes", 60, 0, "0.00", "Avaliação com tomografia", "bruno"),
]
PROFESSIONALS = [
    ("ana", "Dra. Ana Ribeiro", "ana@sorriso.demo", "#0ea5e9", ((8, 12), (13, 17))),
    ("bruno", "Dr. Bruno Alves", "bruno@sorriso.demo", "#f97316", ((9, 13), (14, 18))),
]
BOOKING_NOTE = (
    "\n\nAgendamentos: use as ferramentas list_services, find_slots e book_appointment para "
    "marcar consultas (confirme serviço, dia e horário com o paciente antes de agendar); "
    "my_appointments, reschedule_appointment e cancel_appointment para remarcar ou cancelar. "
    "O paciente também pode escrever “agendar” para escolher pelo menu."
)


class Command(BaseCommand):
    help = "Create (or refresh) the demo clinic's services, agendas and a week of appointments."

    def add_arguments(self, parser):
        parser.add_argument("--organization", default="clinica-sorriso", help="organization slug")

    @transaction.atomic
    def handle(self, *args, organization, **options):
        org = Organization.objects.filter(slug=organization).first()
        if org is None:
            raise CommandError(f"No organization {organization!r}; run `manage.py demo` first.")
        AgendaSettings.objects.get_or_create(
            organization=org,
            defaults={
                "address": "Rua das Flores, 123 - Pinheiros, São Paulo",
                "min_notice_minutes": 60,
            },
        )
        pros = {}
        for key, name, email, color, periods in PROFESSIONALS:
            user = User.objects.filter(email=email, memberships__organization=org).first()
            professional, created = Professional.objects.get_or_create(
                organization=org, name=name, defaults={"user": user, "color": color}
            )
            if created:
                for weekday in range(5):
                    for start, end in periods:
                        WorkingHours.objects.create(
                            organization=org,
                            professional=professional,
                            weekday=weekday,
                            starts_at=time(start),
                            ends_at=time(end),
                        )
                WorkingHours.objects.create(
                    organization=org,
                    professional=professional,
                    weekday=5,
                    starts_at=time(8),
                    ends_at=time(12),
                )
            pros[key] = professional
        offered = {}
        for name, category, minutes, buffer, price, description, who in SERVICES:
            service, created = Service.objects.get_or_create(
                organization=org,
                name=name,
                defaults={
                    "category": category,
                    "duration_minutes": minutes,
                    "buffer_after_minutes": buffer,
                    "price": price,
                    "description": description,
                },
            )
            if created:
                service.professionals.set(list(pros.values()) if who == "both" else [pros[who]])
            offered[name] = service
        if not Appointment.objects.filter(organization=org).exists():
            self._week_of_appointments(org, offered)
        self._tell_the_assistant(org)
        count = Appointment.objects.filter(organization=org).count()
        self.stdout.write(
            self.style.SUCCESS(f"Agenda ready: {len(offered)} services, {count} appointments")
        )

    def _week_of_appointments(self, org, offered):
        tz = availability.zone(org)
        contacts = list(Contact.objects.filter(organization=org).order_by("created_at"))
        today = timezone.now().astimezone(tz).date()
        names = list(offered)
        plan = [(9, 0), (10, 0), (11, 0), (14, 30), (15, 30)]
        made = 0
        for offset in range(-2, 6):
            day = today + timedelta(days=offset)
            if day.weekday() >= 5:
                continue
            for index, (hour, minute) in enumerate(plan):
                service = offered[names[(offset + index) % len(names)]]
                contact = contacts[(made) % len(contacts)] if contacts else None
                starts_at = datetime.combine(day, time(hour, minute), tzinfo=tz)
                for professional in service.professionals.all():
                    if starts_at < timezone.now():
                        # The past: written as history (booking refuses past times, rightly).
                        self._history(org, service, professional, contact, starts_at, made)
                        made += 1
                        break
                    try:
                        services.appointment_book(
                            service=service,
                            professional=professional,
                            starts_at=starts_at,
                            channel=("bot", "ai", "staff", "api")[made % 4],
                            contact=contact,
                            customer_name="" if contact else f"Paciente {made}",
                        )
                    except services.BookingError:
                        continue
                    made += 1
                    break

    def _history(self, org, service, professional, contact, starts_at, index):
        ends_at = starts_at + timedelta(minutes=service.duration_minutes)
        Appointment.objects.create(
            organization=org,
            professional=professional,
            service=service,
            contact=contact,
            customer_name=contact.display_name if contact else "",
            starts_at=starts_at,
            ends_at=ends_at,
            blocked_from=starts_at,
            blocked_until=ends_at + timedelta(minutes=service.buffer_after_minutes),
            status=(Appointment.Status.COMPLETED, Appointment.Status.NO_SHOW)[index % 5 == 4],
            channel=("bot", "ai", "staff")[index % 3],
        )

    def _tell_the_assistant(self, org):
        from assistants.models import Assistant

        for assistant in Assistant.objects.filter(organization=org):
            if "book_appointment" not in assistant.instructions:
                assistant.instructions += BOOKING_NOTE
                assistant.save(update_fields=["instructions"])

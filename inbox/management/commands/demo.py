"""``manage.py demo``: the demo organization "Clínica Sorriso", idempotently.

Lives in ``inbox`` because it needs organizations, numbers, contacts and chats (the apps it may
depend on); running it twice creates nothing twice.
"""

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, Organization, Role, User
from inbox.demo_history import demo_extras
from inbox.models import Chat, Contact, Message
from integrations import sandbox_web
from integrations.models import WhatsAppNumber

DEMO_PASSWORD = "sorriso-demo-2026"
OWNER_EMAIL = "dona@sorriso.demo"
TEAM = [
    (OWNER_EMAIL, "Helena Costa", Role.ADMIN),
    ("gerente@sorriso.demo", "Marcos Lima", Role.MANAGER),
    ("recepcao@sorriso.demo", "Paula Souza", Role.OPERATOR),
    ("ana@sorriso.demo", "Ana Ribeiro", Role.AGENT),
    ("bruno@sorriso.demo", "Bruno Alves", Role.AGENT),
]
CONTACTS = [
    (
        "5511987650001",
        "Juliana Martins",
        ["paciente", "ortodontia"],
        "Olá! Queria remarcar minha consulta de quinta.",
    ),
    ("5511987650002", "Carlos Pereira", ["lead"], "Vocês fazem clareamento? Quanto custa?"),
    ("5521998760003", "Fernanda Oliveira", ["paciente"], "Obrigada pelo atendimento de hoje 😊"),
    (
        "5531996540004",
        "Rafael Gomes",
        ["lead", "implante"],
        "Bom dia, gostaria de um orçamento para implante.",
    ),
    ("5511976540005", "Beatriz Santos", ["paciente"], "Vou chegar 10 minutos atrasada, tudo bem?"),
    ("5541991230006", "Lucas Fernandes", [], "Qual o horário de funcionamento no sábado?"),
]
# Chats on the WhatsApp Web number (paired on the embedded Evolution emulator).
WEB_CONTACTS = [
    ("5511965430007", "Mariana Rocha", "Oi! Vi o anúncio no Instagram, ainda tem horário hoje?"),
    ("5511954320008", "Pedro Almeida", "Pode me mandar o endereço da clínica?"),
    ("5521943210009", "Larissa Costa", "Minha filha perdeu um dente de leite, precisa consulta?"),
]


class Command(BaseCommand):
    help = "Create (or refresh) the demo organization Clínica Sorriso with its team and chats."

    @transaction.atomic
    def handle(self, *args, **options):
        organization, _ = Organization.objects.get_or_create(
            slug="clinica-sorriso",
            defaults={
                "name": "Clínica Sorriso",
                "language": "pt-br",
                "plan": Organization.Plan.PRO,
            },
        )
        users = {}
        for email, name, role in TEAM:
            user = User.objects.filter(email=email).first()
            if user is None:
                user = User.objects.create_user(email=email, password=DEMO_PASSWORD, name=name)
            if role == Role.ADMIN and not user.is_staff:
                user.is_staff = True  # the owner runs the back office in Django admin
                user.save(update_fields=["is_staff"])
            Membership.objects.get_or_create(
                user=user, organization=organization, defaults={"role": role}
            )
            self._verify_email(user)
            users[role] = users.get(role, []) + [user]

        number, _ = WhatsAppNumber.objects.get_or_create(
            phone_number_id="100000000000001",
            defaults={
                "organization": organization,
                "name": "Recepção",
                "display_phone_number": "+55 11 4000-1234",
                "waba_id": "200000000000001",
                "provider": WhatsAppNumber.Provider.SANDBOX,
                "access_token": "sandbox-token-clinica-sorriso",
                "app_secret": "sandbox-secret-clinica-sorriso",
            },
        )
        agents = users[Role.AGENT]
        now = timezone.now()
        self._chats(
            organization, number, CONTACTS, agents,
            now=now, spacing=17, offset=3, assign_every=3, unread_every=2, wamid="wamid.demo-",
        )  # fmt: skip
        web = sandbox_web.demo_number(organization, name="WhatsApp Web", phone="5511940005678")
        if web is not None:
            self._chats(
                organization, web, [(wa_id, name, [], text) for wa_id, name, text in WEB_CONTACTS],
                agents, now=now, spacing=11, offset=9, assign_every=2, unread_every=1,
                wamid="3EB0DEMO",
            )  # fmt: skip
        demo_extras(organization=organization, number=number, users_by_role=users, agents=agents)
        self.stdout.write(self.style.SUCCESS("Demo organization ready: Clínica Sorriso"))
        self.stdout.write(f"  Sign in at http://127.0.0.1:8000/ as {OWNER_EMAIL} / {DEMO_PASSWORD}")
        self.stdout.write(
            "  Teammates (same password): "
            + ", ".join(f"{email} ({role})" for email, _, role in TEAM[1:])
        )

    @staticmethod
    def _chats(
        organization, number, contacts, agents, *, now, spacing, offset, assign_every,
        unread_every, wamid,
    ):  # fmt: skip
        """One customer message per contact on ``number`` (idempotent): every
        ``assign_every``-th chat unassigned, every ``unread_every``-th unread."""
        for index, (wa_id, name, tags, text) in enumerate(contacts):
            contact, _ = Contact.objects.get_or_create(
                organization=organization,
                wa_id=wa_id,
                defaults={"phone": f"+{wa_id}", "profile_name": name, "name": name, "tags": tags},
            )
            when = now - timedelta(minutes=spacing * index + offset)
            chat, created = Chat.objects.get_or_create(
                organization=organization,
                contact=contact,
                number=number,
                defaults={
                    "assignee": agents[index % len(agents)] if index % assign_every else None,
                    "last_message_at": when,
                    "last_message_preview": text[:200],
                    "unread_count": 1 if index % unread_every == 0 else 0,
                    "window_expires_at": when + timedelta(hours=24),
                },
            )
            if created:
                Message.objects.create(
                    organization=organization,
                    chat=chat,
                    number=number,
                    direction=Message.Direction.INBOUND,
                    type=Message.Type.TEXT,
                    text=text,
                    content={"type": "text", "text": {"body": text}},
                    wamid=f"{wamid}{wa_id}",
                    status=Message.Status.RECEIVED,
                    author_type=Message.Author.CUSTOMER,
                    timestamp=when,
                )

    @staticmethod
    def _verify_email(user):
        from allauth.account.models import EmailAddress

        EmailAddress.objects.get_or_create(
            user=user, email=user.email, defaults={"verified": True, "primary": True}
        )

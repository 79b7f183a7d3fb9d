"""Shared test fixtures: two organizations, a member of every role, and an outsider."""

from django.test import TestCase

from accounts.models import Membership, Organization, Role, User
from inbox.models import Chat, Contact, Message
from integrations.models import WhatsAppNumber

PASSWORD = "correct-horse-battery"


def make_user(email: str, name: str = "") -> User:
    return User.objects.create_user(
        email=email, password=PASSWORD, name=name or email.split("@")[0]
    )


def make_org(name: str, slug: str, phone_number_id: str):
    organization = Organization.objects.create(name=name, slug=slug, language="en")
    number = WhatsAppNumber.objects.create(
        organization=organization,
        name=f"{name} main",
        display_phone_number="+55 11 4000-0000",
        phone_number_id=phone_number_id,
        waba_id=f"9{phone_number_id}",
        access_token=f"token-{slug}",
        app_secret=f"secret-{slug}",
    )
    return organization, number


def make_chat(organization, number, wa_id: str, name: str, assignee=None, text="Olá"):
    contact = Contact.objects.create(
        organization=organization, wa_id=wa_id, phone=f"+{wa_id}", name=name
    )
    chat = Chat.objects.create(
        organization=organization,
        contact=contact,
        number=number,
        assignee=assignee,
        last_message_preview=text,
    )
    Message.objects.create(
        organization=organization,
        chat=chat,
        number=number,
        direction="in",
        text=text,
        wamid=f"wamid.{wa_id}",
        author_type=Message.Author.CUSTOMER,
    )
    return chat


class BaseTestCase(TestCase):
    """Alice's clinic (a member of every role) and Bob's clinic, which nobody here may see."""

    @classmethod
    def setUpTestData(cls):
        cls.org, cls.number = make_org("Clínica Alice", "clinica-alice", "111")
        cls.admin = make_user("admin@alice.test", "Alice Admin")
        cls.manager = make_user("manager@alice.test", "Mara Manager")
        cls.operator = make_user("operator@alice.test", "Otto Operator")
        cls.agent = make_user("agent@alice.test", "Ana Agent")
        cls.members = {
            Role.ADMIN: cls.admin,
            Role.MANAGER: cls.manager,
            Role.OPERATOR: cls.operator,
            Role.AGENT: cls.agent,
        }
        for role, user in cls.members.items():
            Membership.objects.create(user=user, organization=cls.org, role=role)
        cls.agent_chat = make_chat(
            cls.org, cls.number, "5511900000001", "Assigned Customer", cls.agent
        )
        cls.other_chat = make_chat(cls.org, cls.number, "5511900000002", "Unassigned Customer")

        cls.other_org, cls.other_number = make_org("Clínica Bob Secreta", "clinica-bob", "222")
        cls.outsider = make_user("bob@bob.test", "Bob Outsider")
        Membership.objects.create(user=cls.outsider, organization=cls.other_org, role=Role.ADMIN)
        cls.secret_chat = make_chat(
            cls.other_org,
            cls.other_number,
            "5511911111111",
            "Zelda Secretcustomer",
            cls.outsider,
            text="segredo-do-bob",
        )

    def login(self, user):
        self.client.force_login(user)

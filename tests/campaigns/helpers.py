"""Campaign test helpers: a real sandbox over HTTP, contacts, templates and campaigns."""

import itertools
from datetime import UTC, datetime

from django.test import override_settings

from campaigns.models import Campaign
from inbox.models import Contact
from integrations import services as channel
from integrations.models import MessageTemplate
from integrations.whatsapp.payloads import InboundMessage, StatusUpdate
from integrations.whatsapp.sandbox import SandboxApp, SandboxServer

NO_STATUSES = {"sent": None, "delivered": None, "read": None}
_wamids = itertools.count(1)

FAST = {
    "CAMPAIGN_THROTTLE_BACKOFF_SECONDS": 0.05,
    "CAMPAIGN_PAIR_BACKOFF_SECONDS": 0.05,
    "CAMPAIGN_SPAM_BACKOFF_SECONDS": 0.05,
    "CAMPAIGN_RETRY_BACKOFF_SECONDS": 0.05,
}


class SandboxMixin:
    """A fresh sandbox per test class on a free port; SANDBOX_URL points at it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sandbox = SandboxServer(
            SandboxApp(webhook_timeout=0.5, webhook_retry_delays=(), delivery_workers=2)
        ).start()
        cls._sandbox_settings = override_settings(
            SANDBOX_URL=cls.sandbox.url, SANDBOX_WEBHOOK_BASE_URL="http://127.0.0.1:9", **FAST
        )
        cls._sandbox_settings.enable()

    @classmethod
    def tearDownClass(cls):
        cls._sandbox_settings.disable()
        cls.sandbox.stop()
        super().tearDownClass()

    def sandbox_number(self, number, **config):
        """Register ``number`` with a clean sandbox: no status webhooks unless asked."""
        self.sandbox.app.reset()
        channel.sandbox_register(number, force=True)
        self.sandbox.app.register_number(
            {"phone_number_id": number.phone_number_id, "delays": dict(NO_STATUSES), **config},
            verify=False,
        )
        self.sandbox.app.clear_failures(number.phone_number_id)

    def sent_to(self, number) -> list[str]:
        return [
            m["to"] for m in self.sandbox.app.messages(number.phone_number_id, direction="outbound")
        ]


TEMPLATES = {
    "welcome": [
        {
            "type": "BODY",
            "text": "Olá! Obrigado por falar com a Clínica Sorriso. Como podemos ajudar você hoje?",
        }
    ],
    "appointment_reminder": [
        {"type": "HEADER", "format": "TEXT", "text": "Lembrete de consulta"},
        {
            "type": "BODY",
            "text": "Olá {{1}}, lembramos da sua consulta com {{2}} em {{3}} às {{4}}. "
            "Podemos confirmar sua presença?",
        },
        {"type": "FOOTER", "text": "Clínica Sorriso"},
    ],
}


def make_template(number, name="welcome"):
    """A template the sandbox seeds for every WABA (same name, language and variables)."""
    return MessageTemplate.objects.create(
        organization_id=number.organization_id,
        number=number,
        name=name,
        language="pt_BR",
        category="UTILITY",
        status="APPROVED",
        components=TEMPLATES[name],
    )


def make_contacts(organization, count, *, start=0, opt_in=Contact.OptIn.OPTED_IN, **extra):
    return Contact.objects.bulk_create(
        [
            Contact(
                organization=organization,
                wa_id=f"5521987{start + i:06d}",
                phone=f"+5521987{start + i:06d}",
                name=f"Cliente {start + i}",
                opt_in=opt_in,
                **extra,
            )
            for i in range(count)
        ]
    )


def make_campaign(organization, number, template, **fields):
    return Campaign.objects.create(
        organization=organization,
        name=fields.pop("name", "Lembrete"),
        number=number,
        template=template,
        **fields,
    )


def inbound(number, wa_id, text, *, wamid=None):
    return InboundMessage(
        phone_number_id=number.phone_number_id,
        display_phone_number="551140000000",
        waba_id=number.waba_id,
        wa_id=wa_id,
        user_id="",
        profile_name="Cliente",
        wamid=wamid or f"wamid.in.{next(_wamids)}",
        timestamp=datetime.now(UTC),
        type="text",
        content={"body": text},
    )


def status_update(number, wamid, status, *, callback=""):
    return StatusUpdate(
        phone_number_id=number.phone_number_id,
        display_phone_number="551140000000",
        waba_id=number.waba_id,
        wamid=wamid,
        status=status,
        timestamp=datetime.now(UTC),
        recipient_id="",
        biz_opaque_callback_data=callback,
    )

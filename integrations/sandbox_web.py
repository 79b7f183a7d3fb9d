"""The sandbox phone's side of WhatsApp Web numbers: talks to the Evolution emulator's control
API (``integrations.whatsapp.evolution_sandbox``) as the phone and the customers would."""

import requests
from django.conf import settings

from integrations.models import WhatsAppNumber
from integrations.providers.evolution import EvolutionProvider, server_for


def is_emulated(number: WhatsAppNumber) -> bool:
    """Whether the number's Evolution server is the sandbox's emulator."""
    try:
        return server_for(number).url == settings.SANDBOX_EVOLUTION_URL.rstrip("/")
    except Exception:  # noqa: BLE001 (no server configured: not emulated)
        return False


def _control(number: WhatsAppNumber, path: str) -> str:
    return f"{settings.SANDBOX_EVOLUTION_URL.rstrip('/')}/_sandbox/instances/{number.evolution_instance}/{path}"


def pair(number: WhatsAppNumber, *, phone: str = "") -> dict:
    """The phone scans the number's QR code: its session opens (``CONNECTION_UPDATE``)."""
    response = requests.post(
        _control(number, "pair"), json={"phone": phone or "5511900000000"}, timeout=10
    )
    response.raise_for_status()
    return response.json()


def customer_send(number: WhatsAppNumber, *, phone: str, name: str, text: str) -> dict:
    """A customer writes to the number (``MESSAGES_UPSERT`` to Porfin's webhook)."""
    response = requests.post(
        _control(number, "inbound"),
        json={"from": phone, "name": name, "type": "text", "text": text},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()


def sent_to_phone(number: WhatsAppNumber) -> list[dict]:
    """What the business sent through the number, newest first (empty when unreachable)."""
    try:
        response = requests.get(_control(number, "sent"), timeout=5)
    except requests.RequestException:
        return []
    if response.status_code != 200:
        return []
    shown = []
    for record in reversed(response.json()[-20:]):
        message = record.get("message") or {}
        text = message.get("conversation") or next(
            (
                v.get("caption") or v.get("text") or ""
                for v in message.values()
                if isinstance(v, dict)
            ),
            "",
        )
        shown.append(
            {"to": record["key"]["remoteJid"].split("@")[0], "route": record["route"], "text": text}
        )
    return shown


def phone_states() -> dict[str, str]:
    """Each emulated instance's state as the phone sees it (``{instance: state}``)."""
    try:
        response = requests.get(
            f"{settings.SANDBOX_EVOLUTION_URL.rstrip('/')}/_sandbox/instances", timeout=5
        )
        response.raise_for_status()
    except requests.RequestException:
        return {}
    return {item["instanceName"]: item["state"] for item in response.json()}


def emulated_sessions() -> list[dict]:
    """The paired sessions of numbers on the embedded emulator, for it to restore when the web
    process starts (a real Evolution server keeps its sessions across restarts; the emulator
    lives in memory): name, phone and webhook of every such number Porfin believes open."""
    sessions = []
    numbers = WhatsAppNumber.objects.filter(
        evolution_server=None, is_active=True, connection_state="open"
    ).exclude(evolution_instance="")
    for number in numbers:
        if not is_emulated(number):
            continue
        sessions.append(
            {
                "name": number.evolution_instance,
                "phone": "".join(c for c in number.display_phone_number if c.isdigit()),
                "webhook": EvolutionProvider(number)._webhook_config(),
            }
        )
    return sessions


DEMO_INSTANCE = "porfin-demo-web-{organization}"


def demo_number(organization, *, name: str, phone: str) -> WhatsAppNumber | None:
    """A WhatsApp Web number on the embedded emulator, already paired (``manage.py demo``), so
    the QR and Web features have something to show on first run; idempotent. None when the
    sandbox is off (no emulator to pair it with)."""
    if not settings.SANDBOX_ENABLED or settings.EVOLUTION_API_URL:
        return None
    instance = DEMO_INSTANCE.format(organization=organization.pk)
    number, _created = WhatsAppNumber.objects.get_or_create(
        phone_number_id=f"evolution:{instance}",
        defaults={
            "organization": organization,
            "name": name,
            "display_phone_number": f"+{phone}",
            "provider": WhatsAppNumber.Provider.EVOLUTION,
            "evolution_instance": instance,
            "connection_state": "open",
            "throughput_per_second": 1,
        },
    )
    return number

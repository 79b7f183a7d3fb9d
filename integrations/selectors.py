from django.conf import settings

from integrations.models import MessageTemplate, WhatsAppNumber


def numbers_of(organization) -> list[WhatsAppNumber]:
    return list(WhatsAppNumber.objects.filter(organization=organization).order_by("name"))


def webhook_url(request, number: WhatsAppNumber) -> str:
    path = f"/webhooks/whatsapp/{number.webhook_key}/"
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    return base + path if base else request.build_absolute_uri(path)


def templates_by_number(organization) -> dict[int, list[MessageTemplate]]:
    """The organization's synced message templates, grouped by number id."""
    grouped: dict[int, list[MessageTemplate]] = {}
    for template in MessageTemplate.objects.filter(organization=organization).order_by(
        "name", "language"
    ):
        grouped.setdefault(template.number_id, []).append(template)
    return grouped

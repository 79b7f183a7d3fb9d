from django.conf import settings

from integrations.models import WhatsAppNumber


def numbers_of(organization) -> list[WhatsAppNumber]:
    return list(WhatsAppNumber.objects.filter(organization=organization).order_by("name"))


def webhook_url(request, number: WhatsAppNumber) -> str:
    path = f"/webhooks/whatsapp/{number.webhook_key}/"
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    return base + path if base else request.build_absolute_uri(path)

from django.conf import settings

from integrations.models import MessageTemplate, WebhookEvent, WhatsAppNumber


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


def webhook_backlog_since(number_id: int):
    """When the oldest delivery for ``number_id`` still waiting to be processed arrived (None:
    no backlog). Evidence about a send (its status webhook) received before this moment may not
    have been applied yet, so nothing should be concluded from its absence."""
    from integrations.services import MAX_PROCESSING_ATTEMPTS

    return (
        WebhookEvent.objects.filter(
            number_id=number_id, processed_at__isnull=True, attempts__lt=MAX_PROCESSING_ATTEMPTS
        )
        .order_by("received_at")
        .values_list("received_at", flat=True)
        .first()
    )

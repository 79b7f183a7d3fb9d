"""What the inbox knows about a WhatsApp number's health and use, for Settings › Numbers
(``integrations.numbers`` asks through its registries; it cannot import the inbox)."""

from django.utils.translation import gettext as _

from inbox.models import Chat, Message
from integrations import numbers


@numbers.register_health_source
def last_messages(number_list) -> dict:
    """The newest customer message and the newest failed send, per number (two indexed
    lookups each: the organization's messages by time)."""
    found = {}
    for number in number_list:
        scoped = Message.objects.filter(organization_id=number.organization_id, number=number)
        inbound = (
            scoped.filter(direction=Message.Direction.INBOUND)
            .order_by("-timestamp")
            .values_list("timestamp", flat=True)
            .first()
        )
        failed = (
            scoped.filter(status=Message.Status.FAILED)
            .order_by("-timestamp")
            .values("error_code", "error_title", "error_details", "failed_at", "timestamp")
            .first()
        )
        entry = {}
        if inbound:
            entry["last_inbound"] = inbound
        if failed:
            code = f"#{failed['error_code']} " if failed["error_code"] is not None else ""
            reason = failed["error_title"] or _("Failed")
            if failed["error_details"] and failed["error_details"] != failed["error_title"]:
                reason += f": {failed['error_details']}"
            entry["last_error"] = code + reason
            entry["last_error_at"] = failed["failed_at"] or failed["timestamp"]
        if entry:
            found[number.pk] = entry
    return found


@numbers.register_usage
def chats(number) -> tuple[str, int]:
    return _("Chats"), Chat.objects.filter(number=number).count()

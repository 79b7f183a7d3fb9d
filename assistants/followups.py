"""Acting on the conversation analysis' follow-up date.

The analysis suggests a day to follow up with the customer (``ConversationAnalysis.follow_up_on``).
When that day has come in the organization's time zone (from ``FOLLOW_UP_LOCAL_HOUR`` on), the
periodic tick either reminds the chat's assignee in the bell (as an @mention does), or sends the
organization's follow-up template to the customer, as the organization chose in AI settings
(``AISettings.follow_up_action``, default: remind).

- Once, never twice: each analysis is claimed by one conditional UPDATE on
  ``follow_up_done_at`` before anything is done, so two ticks (two boxes) never both act.
- Only the chat's latest analysis counts: an older one still waiting is marked superseded.
- Opt-out: a customer who opted out never gets the template; the assignee is reminded instead,
  and so when the template cannot be sent (none chosen, none on the chat's number, refused).
- A follow-up more than ``FOLLOW_UP_GRACE_DAYS`` late (the feature just deployed, the workers
  down for days) is marked expired rather than sent out of the blue.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import Membership, Role
from assistants.models import AISettings, ConversationAnalysis
from inbox import services as inbox_services
from inbox import teamwork
from inbox.models import Contact, Message
from integrations.models import MessageTemplate
from integrations.whatsapp.validation import placeholders

logger = logging.getLogger(__name__)

FollowUp = ConversationAnalysis.FollowUp
Action = AISettings.FollowUpAction

FOLLOW_UP_GRACE_DAYS = 3
BATCH = 200


def local_hour() -> int:
    return int(getattr(settings, "FOLLOW_UP_LOCAL_HOUR", 9))


def template_problem(template: MessageTemplate | None) -> str | None:
    """Why ``template`` cannot be a follow-up template (None: it can). It must be approved, with
    no header variable or media and at most one body variable (the customer's first name)."""
    if template is None:
        return _("Choose the follow-up template.")
    if template.status != "APPROVED":
        return _("Only an approved template can be sent.")
    body_variables: list[str] = []
    for component in template.components or []:
        kind = str(component.get("type", "")).upper()
        if kind == "HEADER":
            if str(component.get("format", "TEXT")).upper() != "TEXT" or placeholders(
                component.get("text", "")
            ):
                return _("The template's header must be plain text, without variables.")
        elif kind == "BODY":
            body_variables = placeholders(component.get("text", ""))
        elif kind == "BUTTONS":
            for button in component.get("buttons") or []:
                if placeholders(str(button.get("url", ""))):
                    return _("The template's buttons must have no variables.")
    if len(body_variables) > 1:
        return _(
            "The template has more than one variable; a follow-up fills only one (the "
            "customer's first name)."
        )
    return None


def _send_content(template: MessageTemplate, contact: Contact) -> dict:
    content: dict = {"name": template.name, "language": {"code": template.language}}
    for component in template.components or []:
        if str(component.get("type", "")).upper() != "BODY":
            continue
        names = placeholders(component.get("text", ""))
        if names:
            first = (contact.display_name or "").split()
            parameter = {"type": "text", "text": first[0] if first else _("customer")}
            if not names[0].isdigit():
                parameter["parameter_name"] = names[0]
            content["components"] = [{"type": "body", "parameters": [parameter]}]
    return content


def _due_locally(analysis: ConversationAnalysis, now: datetime) -> bool:
    try:
        zone = ZoneInfo(analysis.organization.time_zone or "UTC")
    except (ValueError, KeyError):
        zone = ZoneInfo("UTC")
    local = now.astimezone(zone)
    return analysis.follow_up_on < local.date() or (
        analysis.follow_up_on == local.date() and local.hour >= local_hour()
    )


def _claim(analysis_id: int, result: str, now: datetime) -> bool:
    return bool(
        ConversationAnalysis.objects.filter(pk=analysis_id, follow_up_done_at=None).update(
            follow_up_done_at=now, follow_up_result=result
        )
    )


def _result_set(analysis_id: int, result: str) -> None:
    ConversationAnalysis.objects.filter(pk=analysis_id).update(follow_up_result=result)


def followups_due(*, now: datetime | None = None) -> dict[str, int]:
    """Act on every analysis whose follow-up day has come; returns counts by result."""
    now = now or timezone.now()
    newer = ConversationAnalysis.objects.filter(
        chat_id=OuterRef("chat_id"), created_at__gt=OuterRef("created_at")
    )
    candidates = (
        ConversationAnalysis.objects.filter(
            follow_up_done_at=None,
            follow_up_on__lte=now.date() + timedelta(days=1),  # the earliest zone's today
        )
        .annotate(superseded=Exists(newer))
        .select_related("organization", "chat__contact", "chat__assignee", "chat__number")
        .order_by("follow_up_on", "pk")[:BATCH]
    )
    counts: dict[str, int] = {}
    configs: dict[int, AISettings | None] = {}
    for analysis in candidates:
        result = _followup_one(analysis, now, configs)
        if result:
            counts[result] = counts.get(result, 0) + 1
    return counts


def _followup_one(analysis: ConversationAnalysis, now: datetime, configs: dict) -> str | None:
    if analysis.superseded:
        return FollowUp.SUPERSEDED if _claim(analysis.pk, FollowUp.SUPERSEDED, now) else None
    if not _due_locally(analysis, now):
        return None
    if analysis.follow_up_on < now.date() - timedelta(days=FOLLOW_UP_GRACE_DAYS):
        return FollowUp.EXPIRED if _claim(analysis.pk, FollowUp.EXPIRED, now) else None
    org_id = analysis.organization_id
    if org_id not in configs:
        configs[org_id] = (
            AISettings.objects.filter(organization_id=org_id)
            .select_related("follow_up_template")
            .first()
        )
    config = configs[org_id]
    action = config.follow_up_action if config else Action.REMIND
    if action == Action.OFF:
        return FollowUp.OFF if _claim(analysis.pk, FollowUp.OFF, now) else None
    # Claimed first (with the likeliest result), acted on after: a crash in between loses a
    # reminder, never sends a template twice.
    first = FollowUp.SENT if action == Action.TEMPLATE else FollowUp.REMINDED
    if not _claim(analysis.pk, first, now):
        return None
    with translation.override(analysis.organization.language or settings.LANGUAGE_CODE):
        if action == Action.TEMPLATE:
            result = _send_template(analysis, config.follow_up_template)
            if result != FollowUp.SENT:
                _result_set(analysis.pk, result)
                _remind(analysis, why=result)
            return result
        _remind(analysis)
        return FollowUp.REMINDED


def _send_template(analysis: ConversationAnalysis, chosen: MessageTemplate | None) -> str:
    chat = analysis.chat
    if chat.contact.opt_in == Contact.OptIn.OPTED_OUT:
        return FollowUp.OPTED_OUT
    template = None
    if chosen is not None:
        template = MessageTemplate.objects.filter(
            number_id=chat.number_id, name=chosen.name, language=chosen.language
        ).first()
    if template is None or template_problem(template):
        return FollowUp.NO_TEMPLATE
    try:
        inbox_services.message_send(
            chat=chat,
            message_type=Message.Type.TEMPLATE,
            content=_send_content(template, chat.contact),
            author_type=Message.Author.AUTOMATION,
            author_ref=f"follow-up:{analysis.code}",
        )
    except (ValidationError, ValueError) as error:
        logger.warning("Follow-up template for analysis %s refused: %s", analysis.pk, error)
        return FollowUp.NO_TEMPLATE
    return FollowUp.SENT


def _remind(analysis: ConversationAnalysis, *, why: str = "") -> None:
    chat = analysis.chat
    name = chat.contact.display_name
    text = _("Follow up with %(name)s today.") % {"name": name}
    if analysis.next_step:
        text += " " + _("Suggested: %(step)s") % {"step": analysis.next_step[:200]}
    if why == FollowUp.OPTED_OUT:
        text += " " + _("(The customer opted out: no template was sent.)")
    elif why == FollowUp.NO_TEMPLATE:
        text += " " + _("(The follow-up template could not be sent.)")
    for user in _reminded_users(chat):
        teamwork.notify(user=user, chat=chat, text=text)


def _reminded_users(chat) -> list:
    """The chat's assignee; for an unassigned chat, the organization's admins and managers."""
    if chat.assignee_id and chat.assignee.is_active:
        return [chat.assignee]
    members = Membership.objects.select_related("user").filter(
        organization_id=chat.organization_id,
        role__in=[Role.ADMIN, Role.MANAGER],
        user__is_active=True,
    )
    return [member.user for member in members]

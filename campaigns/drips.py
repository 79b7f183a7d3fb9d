"""Drip programs: enrolment, the periodic send of due steps and daily questions, grading of
answers, and the public opt-in form's sign-up.

Scheduling happens in each contact's time zone (the organization's when the contact has none).
A send is claimed with a conditional update before it goes out, so two ticks never send the
same step twice; a claim that dies mid-send retries after ``CLAIM_LEASE``.

Answers to the question of the day are graded by the organization's first AI assistant, with
the assistants app's rubric grading.
"""

import logging
from datetime import datetime, timedelta

import phonenumbers
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from assistants.models import Assistant
from assistants.services import grade_answer
from campaigns import scheduling
from campaigns import services as campaign_services
from campaigns.messaging import ActionSkipped, send_text_or_template
from campaigns.models import (
    ConsentEvent,
    DripDelivery,
    DripEnrolment,
    DripProgram,
    DripQuestion,
    DripStep,
)
from inbox import contacts as inbox_contacts
from inbox import services as inbox_services
from inbox.models import Chat, Contact, Message
from kernel import tasks
from kernel.memo import ProcessMemo

logger = logging.getLogger(__name__)

E = DripEnrolment.Status
CLAIM_LEASE = timedelta(hours=1)
ANSWER_WINDOW = timedelta(hours=36)  # an answer counts for the latest question this recent
LANGUAGES = {"pt": "pt-br", "en": "en", "es": "es"}


# --- Grading ------------------------------------------------------------------------------------


def grade(*, organization_id: int, rubric: str, answer: str, language: str):
    """(score, feedback) from the organization's first AI assistant, in the contact's language
    ("pt", "en", "es"); None when there is no assistant or the model failed (the answer is kept
    either way)."""
    assistant = Assistant.objects.filter(organization_id=organization_id).order_by("pk").first()
    if assistant is None:
        return None
    assistant.language = LANGUAGES.get(language, assistant.language)  # feedback in theirs
    try:
        return grade_answer(assistant, rubric, answer)
    except Exception as error:  # the model is down or answered nonsense: keep the answer
        logger.warning("Grading for organization %s failed: %s", organization_id, error)
        return None


# --- Time ---------------------------------------------------------------------------------------


# A sign-up's time zone, by its phone's country, when the person does not choose one. One zone a
# country: the one most of its people live in (Brazil's Brasília time covers ~90% of phones).
COUNTRY_ZONES = {
    "BR": "America/Sao_Paulo",
    "PT": "Europe/Lisbon",
    "AO": "Africa/Luanda",
    "MZ": "Africa/Maputo",
    "AR": "America/Argentina/Buenos_Aires",
    "BO": "America/La_Paz",
    "CL": "America/Santiago",
    "CO": "America/Bogota",
    "CR": "America/Costa_Rica",
    "DO": "America/Santo_Domingo",
    "EC": "America/Guayaquil",
    "ES": "Europe/Madrid",
    "GT": "America/Guatemala",
    "MX": "America/Mexico_City",
    "PA": "America/Panama",
    "PE": "America/Lima",
    "PY": "America/Asuncion",
    "UY": "America/Montevideo",
    "VE": "America/Caracas",
    "US": "America/New_York",
    "CA": "America/Toronto",
    "GB": "Europe/London",
    "FR": "Europe/Paris",
    "DE": "Europe/Berlin",
    "IT": "Europe/Rome",
}


def zone_for_phone(phone: str, default: str) -> str:
    """The time zone of an E.164 ``phone``'s country (``COUNTRY_ZONES``), else ``default``
    (the organization's zone: a sane guess for a clinic's own customers)."""
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(phone, None))
    except phonenumbers.NumberParseException:
        return default
    return COUNTRY_ZONES.get(region or "", default)


def zone_choices(organization) -> list[tuple[str, str]]:
    """The zones a sign-up may choose: the countries' above and the organization's own."""
    zones = sorted({*COUNTRY_ZONES.values(), organization.time_zone or "UTC"})
    return [(name, name.replace("_", " ")) for name in zones]


def contact_zone(contact: Contact, organization):
    return scheduling.zone(contact.time_zone, organization.time_zone)


def step_due(step: DripStep, *, after: datetime, tz) -> datetime:
    """``after`` plus the step's delay, moved to the next ``send_time`` in ``tz`` if it has one."""
    due = after + timedelta(days=step.delay_days, hours=step.delay_hours)
    if step.send_time is None:
        return due
    local = due.astimezone(tz)
    candidate = scheduling.local_to_aware(local.date(), step.send_time, tz)
    if candidate < due:
        candidate = scheduling.local_to_aware(local.date() + timedelta(days=1), step.send_time, tz)
    return candidate


def daily_due(send_time, *, after: datetime, tz) -> datetime:
    """The next ``send_time`` in ``tz`` strictly after ``after``."""
    local = after.astimezone(tz)
    candidate = scheduling.local_to_aware(local.date(), send_time, tz)
    if candidate <= after:
        candidate = scheduling.local_to_aware(local.date() + timedelta(days=1), send_time, tz)
    return candidate


def _steps(program: DripProgram) -> list[DripStep]:
    return list(program.steps.order_by("position", "id").select_related("template"))


def first_due(program: DripProgram, contact: Contact, now: datetime) -> datetime | None:
    tz = contact_zone(contact, program.organization)
    if program.is_qotd:
        return daily_due(program.send_time, after=now, tz=tz)
    steps = _steps(program)
    return step_due(steps[0], after=now, tz=tz) if steps else None


# --- Enrolment ----------------------------------------------------------------------------------


@transaction.atomic
def enrolment_create(
    *, program: DripProgram, contact: Contact, source: str, topic: str = "", language: str = ""
) -> DripEnrolment:
    """Enrol ``contact`` (again, from the start, when a previous enrolment ended)."""
    if contact.opt_in == Contact.OptIn.OPTED_OUT:
        raise ActionSkipped(_("The contact opted out."))
    if not program.is_active:
        raise ActionSkipped(_("The drip program is paused."))
    now = timezone.now()
    enrolment, created = DripEnrolment.objects.select_for_update().get_or_create(
        organization_id=program.organization_id,
        program=program,
        contact=contact,
        defaults={"source": source, "topic": topic, "language": language},
    )
    if not created and enrolment.status == E.ACTIVE:
        if topic or language:
            enrolment.topic = topic or enrolment.topic
            enrolment.language = language or enrolment.language
            enrolment.save(update_fields=["topic", "language"])
        return enrolment
    enrolment.status, enrolment.source = E.ACTIVE, source
    enrolment.topic, enrolment.language = topic or enrolment.topic, language or enrolment.language
    enrolment.steps_sent, enrolment.stopped_reason, enrolment.last_error = 0, "", ""
    enrolment.next_due_at = first_due(program, contact, now)
    if enrolment.next_due_at is None:
        enrolment.status = E.COMPLETED
    enrolment.save()
    return enrolment


def enrolments_stop(*, contact: Contact, reason: str) -> int:
    """Unenrol the contact from every program (e.g. they opted out)."""
    return DripEnrolment.objects.filter(contact=contact, status=E.ACTIVE).update(
        status=E.STOPPED, stopped_reason=reason[:100], next_due_at=None
    )


def enrolment_stop(*, enrolment: DripEnrolment, reason: str) -> bool:
    return bool(
        DripEnrolment.objects.filter(pk=enrolment.pk, status=E.ACTIVE).update(
            status=E.STOPPED, stopped_reason=reason[:100], next_due_at=None
        )
    )


# --- Sending ------------------------------------------------------------------------------------


def drips_tick(now: datetime | None = None) -> int:
    """Periodic: send every due step or question; returns how many went out."""
    now = now or timezone.now()
    due = DripEnrolment.objects.filter(
        status=E.ACTIVE, next_due_at__lte=now, program__is_active=True
    ).values_list("pk", flat=True)
    return sum(1 for pk in list(due[:500]) if enrolment_advance(pk, now=now))


def _claim(enrolment: DripEnrolment, **changes) -> bool:
    return bool(
        DripEnrolment.objects.filter(
            pk=enrolment.pk,
            status=E.ACTIVE,
            next_due_at=enrolment.next_due_at,
            steps_sent=enrolment.steps_sent,
        ).update(**changes)
    )


def enrolment_advance(enrolment_id: int, *, now: datetime | None = None) -> DripDelivery | None:
    now = now or timezone.now()
    enrolment = (
        DripEnrolment.objects.select_related("program__organization", "program__number", "contact")
        .filter(pk=enrolment_id, status=E.ACTIVE, next_due_at__lte=now)
        .first()
    )
    if enrolment is None:
        return None
    if enrolment.contact.opt_in == Contact.OptIn.OPTED_OUT:
        enrolment_stop(enrolment=enrolment, reason="opted_out")
        return None
    if enrolment.program.is_qotd:
        return _send_question(enrolment, now)
    return _send_step(enrolment, now)


def _send_step(enrolment: DripEnrolment, now: datetime) -> DripDelivery | None:
    program, contact = enrolment.program, enrolment.contact
    steps = _steps(program)
    index = enrolment.steps_sent
    if index >= len(steps):
        DripEnrolment.objects.filter(pk=enrolment.pk).update(status=E.COMPLETED, next_due_at=None)
        return None
    if not _claim(enrolment, steps_sent=index + 1, next_due_at=now + CLAIM_LEASE):
        return None  # another tick got there first
    step = steps[index]
    delivery = _deliver(enrolment, text=step.text, template=step.template, step=step)
    tz = contact_zone(contact, program.organization)
    if index + 1 < len(steps):
        next_due, status = step_due(steps[index + 1], after=now, tz=tz), E.ACTIVE
    else:
        next_due, status = None, E.COMPLETED
    DripEnrolment.objects.filter(pk=enrolment.pk).update(next_due_at=next_due, status=status)
    return delivery


def next_question(enrolment: DripEnrolment) -> DripQuestion | None:
    """The first question of the contact's topic and language never sent to them; when all
    were sent, the first one they have not answered yet."""
    questions = DripQuestion.objects.filter(program_id=enrolment.program_id).order_by(
        "position", "id"
    )
    if enrolment.topic:
        questions = questions.filter(Q(topic__iexact=enrolment.topic) | Q(topic=""))
    if enrolment.language:
        questions = questions.filter(language=enrolment.language)
    sent = DripDelivery.objects.filter(enrolment=enrolment, question__isnull=False)
    fresh = questions.exclude(pk__in=sent.values("question_id")).first()
    if fresh is not None:
        return fresh
    answered = sent.filter(answer__isnull=False).values("question_id")
    return questions.exclude(pk__in=answered).first()


def _send_question(enrolment: DripEnrolment, now: datetime) -> DripDelivery | None:
    program, contact = enrolment.program, enrolment.contact
    tz = contact_zone(contact, program.organization)
    tomorrow = daily_due(program.send_time, after=now, tz=tz)
    if not _claim(enrolment, next_due_at=tomorrow, steps_sent=enrolment.steps_sent + 1):
        return None
    question = next_question(enrolment)
    if question is None:
        DripEnrolment.objects.filter(pk=enrolment.pk).update(
            last_error=_("No unanswered question for this topic and language.")
        )
        return None
    return _deliver(
        enrolment,
        text=question.text,
        template=program.template,
        question=question,
        first_value=question.text,
    )


def _deliver(enrolment, *, text, template, step=None, question=None, first_value=""):
    program, contact = enrolment.program, enrolment.contact
    error = ""
    message = None
    try:
        with transaction.atomic():
            chat = inbox_services.chat_for_contact(number=program.number, contact=contact)
            chat = Chat.objects.select_related("number").get(pk=chat.pk)
            message = send_text_or_template(
                chat=chat,
                contact=contact,
                text=text,
                template=template,
                author_ref=str(program.code),
                first_value=first_value,
            )
    except (inbox_services.SendRefused, ActionSkipped, ValueError) as refused:
        error = " ".join(getattr(refused, "messages", None) or [str(refused)])
        logger.info("Drip %s for contact %s not sent: %s", program.pk, contact.pk, error)
    DripEnrolment.objects.filter(pk=enrolment.pk).update(
        last_sent_at=timezone.now() if message else enrolment.last_sent_at, last_error=error[:500]
    )
    if message is None:
        return None
    return DripDelivery.objects.create(
        organization_id=enrolment.organization_id,
        enrolment=enrolment,
        step=step,
        question=question,
        message=message,
    )


# --- Answers ------------------------------------------------------------------------------------


_question_numbers = ProcessMemo()


def _numbers_asking(organization_id: int) -> frozenset[int]:
    """Numbers of the organization that send daily questions: the router asks about every
    customer message, and almost no number asks any (``kernel.memo``)."""
    return _question_numbers.get(
        organization_id,
        lambda: frozenset(
            DripProgram.objects.filter(
                organization_id=organization_id, kind=DripProgram.Kind.QUESTION_OF_THE_DAY
            ).values_list("number_id", flat=True)
        ),
    )


def programs_changed(organization_id: int) -> None:
    _question_numbers.forget(organization_id)


def question_awaiting_answer(*, message: Message, contact_id: int) -> DripDelivery | None:
    """The daily question this customer message answers: the latest one sent to the contact
    from the message's number within ``ANSWER_WINDOW``, still unanswered."""
    if message.direction != Message.Direction.INBOUND or not message.text.strip():
        return None
    if message.number_id not in _numbers_asking(message.organization_id):
        return None
    delivery = (
        DripDelivery.objects.filter(
            enrolment__contact_id=contact_id,
            enrolment__program__number_id=message.number_id,
            question__isnull=False,
            sent_at__gte=timezone.now() - ANSWER_WINDOW,
        )
        .order_by("-sent_at", "-id")
        .first()
    )
    if delivery is None or delivery.answer_id:
        return None
    return delivery


def answer_receive(*, message: Message, delivery: DripDelivery) -> bool:
    """The router's drip handler: ``message`` answers ``delivery``'s question; store it and
    queue the grading."""
    claimed = DripDelivery.objects.filter(pk=delivery.pk, answer__isnull=True).update(
        answer=message, answered_at=message.timestamp
    )
    if claimed:
        tasks.enqueue("campaigns.tasks.grade_drip_answer", delivery.pk, queue="ai")
    return bool(claimed)


def answer_grade(delivery_id: int) -> DripDelivery | None:
    """Grade the answer against the question's rubric and reply with score and feedback."""
    delivery = (
        DripDelivery.objects.select_related(
            "question", "answer__chat__number", "enrolment__contact", "enrolment__program"
        )
        .filter(pk=delivery_id, answer__isnull=False, score__isnull=True)
        .first()
    )
    if delivery is None or delivery.question is None:
        return None
    enrolment, question = delivery.enrolment, delivery.question
    language = enrolment.language or question.language
    result = grade(
        organization_id=delivery.organization_id,
        rubric=question.rubric,
        answer=delivery.answer.text,
        language=language,
    )
    with translation.override(LANGUAGES.get(language, "pt-br")):
        if result is None:
            score, feedback = None, ""
            reply = _("Thank you! Your answer was recorded.")
        else:
            score, feedback = result
            reply = _("Score: %(score)d/10. %(feedback)s") % {"score": score, "feedback": feedback}
    updated = DripDelivery.objects.filter(pk=delivery.pk, score__isnull=True).update(
        score=score, feedback=feedback[:4000]
    )
    if not updated and score is not None:
        return None
    delivery.score, delivery.feedback = score, feedback
    try:
        inbox_services.message_send(
            chat=delivery.answer.chat,
            message_type="text",
            content={"body": reply.strip()[:4096], "preview_url": False},
            author_type=Message.Author.AUTOMATION,
            author_ref=str(enrolment.program.code),
            reply_to=delivery.answer,
        )
    except inbox_services.SendRefused as refused:
        logger.info("Grade reply for delivery %s refused: %s", delivery.pk, refused)
    return delivery


# --- Public opt-in form -------------------------------------------------------------------------


@transaction.atomic
def optin_submit(
    *,
    program: DripProgram,
    name: str,
    phone: str,
    topic: str,
    language: str,
    detail: str = "",
    time_zone: str = "",
) -> DripEnrolment:
    """Create or update the contact from the form, record their consent, enrol them.

    ``phone`` is already E.164 (the form validates it); ``time_zone`` (an IANA name the form
    checked) is when the questions arrive, kept on the contact."""
    contact, created = inbox_contacts.contact_get_or_create(
        organization_id=program.organization_id,
        phone=phone,
        defaults={"name": name, "language": language, "time_zone": time_zone},
        source="form",
    )
    if not created:
        changes = {
            "name": name or contact.name,
            "language": language or contact.language,
            "time_zone": time_zone or contact.time_zone,
        }
        inbox_contacts.contact_update(contact=contact, data=changes, source="form")
    detail = (detail or program.name)[:255]
    changed = campaign_services.contact_set_consent(
        contact=contact, opted_in=True, source=ConsentEvent.Source.FORM, detail=detail
    )
    if not changed:  # already opted in: the form's consent is still part of the record
        ConsentEvent.objects.create(
            organization_id=contact.organization_id,
            contact=contact,
            opted_in=True,
            source=ConsentEvent.Source.FORM,
            detail=detail,
        )
    contact.opt_in = Contact.OptIn.OPTED_IN
    return enrolment_create(
        program=program, contact=contact, source="form", topic=topic, language=language
    )

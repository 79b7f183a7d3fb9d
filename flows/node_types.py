"""The built-in node types (see ``flows.nodes`` for the registry). Limits are WhatsApp's own
(``integrations.whatsapp.validation``) and are enforced while editing, not at send time."""

import json
import logging
import re
from datetime import datetime, timedelta

import requests
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l

from accounts import hours
from flows.nodes import Field, Outcome, register_node
from inbox import services as inbox_services
from inbox.models import Contact, Message
from integrations import egress
from integrations.egress import UnsafeURL, url_check
from integrations.whatsapp import validation as wa

logger = logging.getLogger(__name__)

NO_MATCH = "no_match"
DEFAULT_RETRIES = 2
MAX_WAIT = timedelta(days=30)
WEBHOOK_TIMEOUT_MAX = 10
SAVE_TO = re.compile(r"^(contact|vars)\.[A-Za-z_][A-Za-z0-9_]{0,63}$")
LABEL = Field(
    "label", _l("Step name"), max_length=60, help=_l("Shown on the canvas and in the run log")
)


def _runtime():
    from flows import runtime

    return runtime


def _text_problems(props, key, limit, *, required=True, what=None) -> list[str]:
    value = props.get(key, "")
    what = what or key
    if not isinstance(value, str):
        return [_("%(field)s must be text.") % {"field": what}]
    if required and not value.strip():
        return [_("%(field)s is missing.") % {"field": what}]
    if len(value) > limit:
        return [
            _("%(field)s is %(n)d characters; WhatsApp allows %(max)d.")
            % {"field": what, "n": len(value), "max": limit}
        ]
    return []


def _options(props) -> list[str]:
    options = props.get("options") or []
    return [str(o) for o in options] if isinstance(options, list) else []


def _option_ports(props) -> list[str]:
    return [f"opt{i}" for i in range(1, len(_options(props)) + 1)] + [NO_MATCH]


def _retries(props) -> int:
    try:
        return max(0, min(5, int(props.get("retries", DEFAULT_RETRIES))))
    except (TypeError, ValueError):
        return DEFAULT_RETRIES


# --- start ------------------------------------------------------------------------------------


def _start_validate(props):
    problems = []
    regex = props.get("regex") or ""
    if regex:
        if len(regex) > 200:
            problems.append(_("The pattern is longer than 200 characters."))
        else:
            try:
                re.compile(regex)
            except re.error as error:
                problems.append(
                    _("The pattern is not a valid regular expression: %(e)s") % {"e": error}
                )
    if len(str(props.get("keywords") or "")) > 500:
        problems.append(_("Keywords are longer than 500 characters."))
    return problems


register_node(
    "start",
    label=_l("Start"),
    category="start",
    icon="▶",
    run=lambda context: Outcome(port="next"),
    validate=_start_validate,
    fields=(
        Field(
            "keywords",
            _l("Keywords"),
            help=_l("Comma-separated; a message equal to one starts the flow"),
        ),
        Field("regex", _l("Pattern (regular expression)"), max_length=200),
        Field("new_contact", _l("Start on a new contact's first message"), kind="bool"),
        Field("outside_hours", _l("Start on any message outside opening hours"), kind="bool"),
    ),
)


# --- send message -----------------------------------------------------------------------------

MEDIA_KINDS = (
    ("", _l("No media")),
    ("image", _l("Image")),
    ("document", _l("Document")),
    ("audio", _l("Audio")),
)


def _message_validate(props):
    kind = props.get("media_type") or ""
    if kind not in ("", "image", "document", "audio"):
        return [_("Unknown media type %(t)s.") % {"t": kind}]
    if kind:
        problems = []
        url = str(props.get("media_url") or "")
        if props.get("media_file"):
            pass  # an uploaded file (flows.media); its type was checked on upload
        elif not url:
            problems.append(_("Upload a file or give an https:// link to it."))
        elif not url.startswith("https://"):
            problems.append(_("The media link must be an https:// URL."))
        if kind != "audio":
            problems += _text_problems(
                props, "text", wa.MAX_CAPTION, required=False, what=_("Caption")
            )
        return problems
    return _text_problems(props, "text", wa.MAX_TEXT_BODY, what=_("Text"))


def _message_run(context):
    props, text = context.props, context.render(context.props.get("text", ""))
    kind = props.get("media_type") or ""
    if kind and props.get("media_file"):
        from flows import media as flow_media

        stored = flow_media.stored_media(context.run.organization_id, props["media_file"])
        if stored is None:
            raise inbox_services.SendRefused(
                _("The file of step %(node)s was deleted: upload it again.")
                % {"node": context.node["id"]}
            )
        flow_media.send_stored(context, stored, text[: wa.MAX_CAPTION])
        return Outcome(port="next")
    if kind:
        content = {"link": props["media_url"]}
        if text and kind != "audio":
            content["caption"] = text[: wa.MAX_CAPTION]
        context.send(kind, content)
    else:
        context.send("text", {"body": text[: wa.MAX_TEXT_BODY] or "…"})
    return Outcome(port="next")


register_node(
    "message",
    label=_l("Send message"),
    category="messages",
    icon="✉",
    run=_message_run,
    validate=_message_validate,
    fields=(
        LABEL,
        Field(
            "text",
            _l("Text"),
            kind="textarea",
            max_length=wa.MAX_TEXT_BODY,
            help=_l("Variables: {{contact.first_name}}, {{contact.name}}, {{vars.name}}"),
        ),
        Field("media_type", _l("Media"), kind="select", choices=MEDIA_KINDS),
        Field(
            "media_file",
            _l("Upload the file"),
            kind="upload",
            help=_l("Image (JPEG, PNG, 5 MB), document (PDF, office, 100 MB) or audio (16 MB)."),
        ),
        Field("media_url", _l("…or a link to it (https)")),
    ),
)


# --- reply buttons and list menu --------------------------------------------------------------


def _buttons_validate(props):
    problems = _text_problems(props, "text", wa.MAX_INTERACTIVE_BODY, what=_("Text"))
    options = _options(props)
    if not options:
        problems.append(_("Add at least one button."))
    if len(options) > wa.MAX_REPLY_BUTTONS:
        problems.append(
            _("WhatsApp allows at most %(n)d reply buttons.") % {"n": wa.MAX_REPLY_BUTTONS}
        )
    for option in options:
        if not option.strip():
            problems.append(_("A button has no title."))
        elif len(option) > wa.MAX_REPLY_BUTTON_TITLE:
            problems.append(
                _('Button "%(t)s" is %(n)d characters; WhatsApp allows %(max)d.')
                % {"t": option, "n": len(option), "max": wa.MAX_REPLY_BUTTON_TITLE}
            )
    if len({o.strip().lower() for o in options}) != len(options):
        problems.append(_("Two buttons have the same title."))
    return problems


def _list_validate(props):
    problems = _text_problems(props, "text", wa.MAX_INTERACTIVE_BODY, what=_("Text"))
    problems += _text_problems(props, "button", wa.MAX_LIST_BUTTON, what=_("Menu button"))
    options = _options(props)
    if not options:
        problems.append(_("Add at least one row."))
    if len(options) > wa.MAX_LIST_ROWS:
        problems.append(
            _("WhatsApp allows at most %(n)d rows in a list.") % {"n": wa.MAX_LIST_ROWS}
        )
    for option in options:
        title, _sep, description = option.partition("|")
        title, description = title.strip(), description.strip()
        if not title:
            problems.append(_("A row has no title."))
        elif len(title) > wa.MAX_LIST_ROW_TITLE:
            problems.append(
                _('Row "%(t)s" is %(n)d characters; WhatsApp allows %(max)d.')
                % {"t": title, "n": len(title), "max": wa.MAX_LIST_ROW_TITLE}
            )
        if len(description) > wa.MAX_LIST_ROW_DESCRIPTION:
            problems.append(
                _('The description of "%(t)s" is longer than %(max)d characters.')
                % {"t": title, "max": wa.MAX_LIST_ROW_DESCRIPTION}
            )
    return problems


def _titles(props) -> list[str]:
    return [o.partition("|")[0].strip() for o in _options(props)]


def _buttons_run(context):
    props = context.props
    buttons = [
        {"type": "reply", "reply": {"id": context.reply_id(f"opt{i}"), "title": title}}
        for i, title in enumerate(_titles(props), start=1)
    ]
    context.send(
        "interactive",
        {
            "type": "button",
            "body": {"text": context.render(props["text"])},
            "action": {"buttons": buttons},
        },
    )
    return Outcome(wait="input")


def _list_run(context):
    props = context.props
    rows = []
    for i, option in enumerate(_options(props), start=1):
        title, _sep, description = option.partition("|")
        row = {"id": context.reply_id(f"opt{i}"), "title": title.strip()}
        if description.strip():
            row["description"] = description.strip()
        rows.append(row)
    context.send(
        "interactive",
        {
            "type": "list",
            "body": {"text": context.render(props["text"])},
            "action": {
                "button": props["button"],
                "sections": [{"title": props["button"][:24], "rows": rows}],
            },
        },
    )
    return Outcome(wait="input")


def message_answer(message: Message) -> tuple[str, str]:
    """(reply id, visible text) of a customer's message: a tapped button/row or typed text."""
    content = message.content or {}
    interactive = content.get("interactive") or {}
    for key in ("button_reply", "list_reply"):
        if interactive.get(key):
            return str(interactive[key].get("id") or ""), str(interactive[key].get("title") or "")
    if content.get("button"):
        return str(content["button"].get("payload") or ""), str(content["button"].get("text") or "")
    return "", (message.text or "").strip()


def _choice_resume(context, message):
    """A tapped option, or typed text equal to an option's title or number."""
    reply_id, text = message_answer(message)
    titles = _titles(context.props)
    port = ""
    prefix = context.reply_id("")
    if reply_id.startswith(prefix) and reply_id[len(prefix) :] in _option_ports(context.props):
        port = reply_id[len(prefix) :]
    else:
        lowered = text.strip().lower()
        for i, title in enumerate(titles, start=1):
            if lowered in (title.lower(), str(i)):
                port = f"opt{i}"
    if port:
        chosen = titles[int(port[3:]) - 1]
        _runtime().step_log(context, _("chose %(option)s") % {"option": chosen})
        context.variables[f"{context.node['id']}_choice"] = chosen
        return Outcome(port=port, detail=_("chose %(option)s") % {"option": chosen})
    if context.run.retries < _retries(context.props):
        fallback = context.props.get("retry_text") or _(
            "Sorry, I didn't understand. Please choose an option."
        )
        context.send("text", {"body": context.render(fallback)})
        (_buttons_run if context.node["type"] == "buttons" else _list_run)(context)
        return Outcome(wait="input", detail=_("didn't understand"))
    return Outcome(port=NO_MATCH, detail=_("didn't understand"))


CHOICE_FIELDS = (
    Field("retries", _l("Re-ask how many times"), kind="number"),
    Field("retry_text", _l("When the answer is not an option"), kind="textarea", max_length=1024),
)

register_node(
    "buttons",
    label=_l("Reply buttons"),
    category="messages",
    icon="▣",
    run=_buttons_run,
    resume=_choice_resume,
    validate=_buttons_validate,
    ports=_option_ports,
    dynamic_ports="options",
    fields=(
        LABEL,
        Field("text", _l("Text"), kind="textarea", max_length=wa.MAX_INTERACTIVE_BODY),
        Field("options", _l("Buttons (one per line, up to 3, 20 characters each)"), kind="lines"),
        *CHOICE_FIELDS,
    ),
    defaults={"text": "", "options": ["Sim", "Não"]},
)
register_node(
    "list",
    label=_l("List menu"),
    category="messages",
    icon="☰",
    run=_list_run,
    resume=_choice_resume,
    validate=_list_validate,
    ports=_option_ports,
    dynamic_ports="options",
    fields=(
        LABEL,
        Field("text", _l("Text"), kind="textarea", max_length=wa.MAX_INTERACTIVE_BODY),
        Field("button", _l("Menu button"), max_length=wa.MAX_LIST_BUTTON),
        Field("options", _l("Rows (one per line: title | description; up to 10)"), kind="lines"),
        *CHOICE_FIELDS,
    ),
    defaults={"text": "", "button": "Menu", "options": []},
)


# --- question ---------------------------------------------------------------------------------

QUESTION_KINDS = (
    ("text", _l("Free text")),
    ("number", _l("Number")),
    ("email", _l("Email")),
    ("date", _l("Date")),
    ("phone", _l("Phone")),
    ("choice", _l("Choice")),
)
CONTACT_FIELDS = {"name", "email", "language"}


def _question_validate(props):
    problems = _text_problems(props, "text", wa.MAX_TEXT_BODY, what=_("Question"))
    if props.get("kind", "text") not in dict(QUESTION_KINDS):
        problems.append(_("Unknown answer type %(t)s.") % {"t": props.get("kind")})
    save_to = str(props.get("save_to") or "")
    if not SAVE_TO.match(save_to):
        problems.append(_('Say where to save the answer: "contact.<attribute>" or "vars.<name>".'))
    if props.get("kind") == "choice" and not _options(props):
        problems.append(_("A choice question needs its options."))
    return problems


def _parse_answer(kind: str, text: str, props) -> tuple[object, bool]:
    text = text.strip()
    if not text:
        return None, False
    if kind == "number":
        try:
            number = float(text.replace(",", "."))
        except ValueError:
            return None, False
        return (int(number) if number.is_integer() else number), True
    if kind == "email":
        try:
            validate_email(text)
        except ValidationError:
            return None, False
        return text.lower(), True
    if kind == "date":
        for pattern in ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y"):
            try:
                return datetime.strptime(text, pattern).date().isoformat(), True
            except ValueError:
                continue
        return None, False
    if kind == "phone":
        digits = re.sub(r"\D", "", text)
        return (f"+{digits}", True) if 8 <= len(digits) <= 15 else (None, False)
    if kind == "choice":
        for i, option in enumerate(_options(props), start=1):
            if text.lower() in (option.strip().lower(), str(i)):
                return option.strip(), True
        return None, False
    return text[:1000], True


def value_save(context, save_to: str, value) -> None:
    scope, _dot, name = save_to.partition(".")
    if scope == "vars":
        context.variables[name] = value
        return
    contact = context.contact
    if name in CONTACT_FIELDS:
        setattr(contact, name, str(value)[:255])
        Contact.objects.filter(pk=contact.pk).update(**{name: getattr(contact, name)})
    else:
        attributes = dict(contact.attributes or {})
        attributes[name] = value
        contact.attributes = attributes
        Contact.objects.filter(pk=contact.pk).update(attributes=attributes)
    context.variables[name] = value


def _question_run(context):
    text = context.render(context.props["text"])
    if context.props.get("kind") == "choice":
        text += "\n" + "\n".join(
            f"{i}. {o}" for i, o in enumerate(_options(context.props), start=1)
        )
    context.send("text", {"body": text[: wa.MAX_TEXT_BODY]})
    return Outcome(wait="input")


def _question_resume(context, message):
    _reply, text = message_answer(message)
    value, ok = _parse_answer(context.props.get("kind", "text"), text, context.props)
    if ok:
        value_save(context, context.props["save_to"], value)
        _runtime().step_log(context, _("answered %(value)s") % {"value": value})
        return Outcome(port="next", detail=_("saved %(to)s") % {"to": context.props["save_to"]})
    if context.run.retries < _retries(context.props):
        error = context.props.get("error_text") or _("That doesn't look right. Please try again.")
        context.send("text", {"body": context.render(error)})
        _question_run(context)
        return Outcome(wait="input", detail=_("invalid answer"))
    return Outcome(port="invalid", detail=_("invalid answer"))


register_node(
    "question",
    label=_l("Question"),
    category="messages",
    icon="?",
    run=_question_run,
    resume=_question_resume,
    validate=_question_validate,
    ports=["next", "invalid"],
    fields=(
        LABEL,
        Field("text", _l("Question"), kind="textarea", max_length=wa.MAX_TEXT_BODY),
        Field("kind", _l("Answer type"), kind="select", choices=QUESTION_KINDS),
        Field("options", _l("Options (choice; one per line)"), kind="lines"),
        Field(
            "save_to", _l("Save to"), help=_l("contact.email, contact.<attribute> or vars.<name>")
        ),
        Field("error_text", _l("When the answer is not valid"), kind="textarea", max_length=1024),
        Field("retries", _l("Re-ask how many times"), kind="number"),
    ),
    defaults={"kind": "text", "save_to": "vars.answer"},
)


# --- condition --------------------------------------------------------------------------------

SUBJECTS = (
    ("value", _l("A variable or contact attribute")),
    ("tag", _l("The chat or contact has the tag")),
    ("stage", _l("The contact's lifecycle stage is")),
    ("open", _l("We are open now (opening hours)")),
    ("window", _l("The 24-hour window is open")),
)
OPERATORS = (
    ("equals", _l("equals")),
    ("not_equals", _l("is not")),
    ("contains", _l("contains")),
    ("exists", _l("is set")),
    ("gt", _l("is greater than")),
    ("lt", _l("is less than")),
)


def _condition_validate(props):
    subject = props.get("subject", "value")
    if subject not in dict(SUBJECTS):
        return [_("Unknown condition %(s)s.") % {"s": subject}]
    if subject == "value":
        problems = []
        if not re.match(
            r"^(contact\.|vars\.)?[A-Za-z_][A-Za-z0-9_]{0,63}$", str(props.get("path") or "")
        ):
            problems.append(_('Say which value to test: "vars.<name>" or "contact.<attribute>".'))
        if props.get("operator", "equals") not in dict(OPERATORS):
            problems.append(_("Unknown comparison."))
        return problems
    if subject in ("tag", "stage") and not str(props.get("value") or "").strip():
        return [_("Say which %(s)s.") % {"s": subject}]
    return []


def _compare(left, operator: str, right: str) -> bool:
    if operator == "exists":
        return left not in (None, "")
    text = "" if left is None else str(left)
    if operator == "equals":
        return text.strip().lower() == right.strip().lower()
    if operator == "not_equals":
        return text.strip().lower() != right.strip().lower()
    if operator == "contains":
        return right.strip().lower() in text.lower()
    try:
        a, b = float(text.replace(",", ".")), float(right.replace(",", "."))
    except ValueError:
        return False
    return a > b if operator == "gt" else a < b


def _condition_run(context):
    props, subject = context.props, context.props.get("subject", "value")
    value = str(props.get("value") or "")
    if subject == "value":
        result = _compare(context.value(props["path"]), props.get("operator", "equals"), value)
    elif subject == "tag":
        tags = {t.lower() for t in (context.chat.tags or []) + (context.contact.tags or [])}
        result = value.strip().lower() in tags
    elif subject == "stage":
        result = context.contact.stage == value.strip()
    elif subject == "open":
        result = hours.is_open(context.chat.organization, timezone.now())
    else:
        result = context.chat.window_is_open
    return Outcome(port="yes" if result else "no")


register_node(
    "condition",
    label=_l("Condition"),
    category="logic",
    icon="◇",
    run=_condition_run,
    validate=_condition_validate,
    ports=["yes", "no"],
    fields=(
        LABEL,
        Field("subject", _l("Test"), kind="select", choices=SUBJECTS),
        Field("path", _l("Value"), help=_l("vars.<name> or contact.<attribute>")),
        Field("operator", _l("Comparison"), kind="select", choices=OPERATORS),
        Field("value", _l("Compare with")),
    ),
    defaults={"subject": "value", "operator": "equals"},
)


# --- AI step ----------------------------------------------------------------------------------


def intents_of(props) -> list[tuple[str, list[str]]]:
    intents = []
    for line in _options(props):
        name, _sep, words = line.partition("|")
        intents.append((name.strip(), [w.strip().lower() for w in words.split(",") if w.strip()]))
    return intents


_intents = intents_of


def _ai_ports(props):
    if props.get("mode") == "classify":
        return [f"intent{i}" for i in range(1, len(_intents(props)) + 1)] + ["other"]
    if props.get("exit") == "continue":
        return ["next"]
    return []


def _ai_validate(props):
    mode = props.get("mode", "assistant")
    if mode not in ("assistant", "classify"):
        return [_("Unknown AI mode %(m)s.") % {"m": mode}]
    if props.get("exit", "handoff") not in ("handoff", "continue"):
        return [_("Unknown AI exit %(e)s.") % {"e": props.get("exit")}]
    if mode == "classify":
        intents = _intents(props)
        if not intents:
            return [_("List the intents, one per line: name | word, word.")]
        if any(not name for name, _words in intents):
            return [_("Each intent needs a name: name | word, word.")]
        return []
    return _text_problems(props, "goal", 500, what=_("Goal"))


def _keyword_intent(context) -> str:
    text = str(context.variables.get("last_text") or "").lower()
    for name, words in _intents(context.props):
        if any(word in text for word in words):
            return name
    return ""


def _ai_outcome(context, result: dict):
    """The AI step's second phase: the model's result (or the fallback) picks the edge."""
    if context.props.get("mode") == "classify":
        intent = result.get("intent")
        how = _("by the model")
        if intent is None:  # no model, or it failed: the intents' keywords
            intent, how = _keyword_intent(context), _("by keywords")
        for i, (name, _words) in enumerate(_intents(context.props), start=1):
            if name == intent:
                context.variables["intent"] = name
                return Outcome(
                    port=f"intent{i}",
                    detail=_("intent %(i)s (%(how)s)") % {"i": name, "how": how},
                )
        return Outcome(port="other", detail=_("no intent (%(how)s)") % {"how": how})
    text = str(result.get("answer") or "").strip()
    if text:
        context.send("text", {"body": text[: wa.MAX_TEXT_BODY]})
        context.variables["ai_answer"] = text[:1000]
        return Outcome(port="next", detail=_("the assistant answered"))
    return Outcome(port="next", detail=_("the assistant had no answer"))


def _ai_run(context):
    from flows import ai_steps

    props = context.props
    if props.get("mode") != "classify" and props.get("exit", "handoff") != "continue":
        # Hand the conversation to the chat's AI assistant with the step's goal; the flow ends.
        inbox_services.chat_set_ai(
            chat=context.chat,
            enabled=True,
            reason=_("flow %(f)s: %(goal)s")
            % {"f": context.flow_name, "goal": props.get("goal", "")},
        )
        return Outcome(end="completed", detail=_("handed to the AI assistant"))
    key = ai_steps.result_key(context.node["id"])
    tries_key = f"{key}_tries"
    if key in context.variables:  # second phase: the model answered (ai_steps.ai_step)
        result = context.variables.pop(key) or {}
        context.variables.pop(tries_key, None)
        return _ai_outcome(context, result)
    tries = int(context.variables.get(tries_key) or 0)
    if tries >= ai_steps.AI_TRIES:
        logger.warning(
            "Flow run %s: no answer from the AI model at node %s after %d tries; the step "
            "falls back and the flow goes on",
            context.run.pk,
            context.node["id"],
            tries,
        )
    if tries >= ai_steps.AI_TRIES or not ai_steps.model_available(context.run.organization_id):
        context.variables.pop(tries_key, None)
        return _ai_outcome(context, {"intent": None, "answer": ""})
    if tries:
        logger.info(
            "Flow run %s: the AI model did not answer within %s at node %s; asking again",
            context.run.pk,
            ai_steps.AI_WAIT,
            context.node["id"],
        )
    context.variables[tries_key] = tries + 1
    ai_steps.ai_request(context.run.pk, context.run.step_index + 1)
    return Outcome(
        wait="time",
        until=timezone.now() + ai_steps.AI_WAIT,
        stay=True,
        hold=True,  # the chat stays the flow's while the model thinks
        detail=_("asked the AI model"),
    )


register_node(
    "ai",
    label=_l("AI step"),
    category="logic",
    icon="✦",
    run=_ai_run,
    validate=_ai_validate,
    ports=_ai_ports,
    dynamic_ports="intents",
    fields=(
        LABEL,
        Field(
            "mode",
            _l("Mode"),
            kind="select",
            choices=(
                ("assistant", _l("Hand to the AI assistant")),
                ("classify", _l("Classify the last answer")),
            ),
        ),
        Field("goal", _l("Goal for the assistant"), kind="textarea", max_length=500),
        Field(
            "exit",
            _l("Then"),
            kind="select",
            choices=(
                ("handoff", _l("Leave the chat to the assistant (the flow ends)")),
                ("continue", _l("Answer once and continue on “next”")),
            ),
            help=_l("Classify always continues on the intent's edge."),
        ),
        Field(
            "options",
            _l("Intents (classify; one per line: name | word, word)"),
            kind="lines",
            help=_l(
                "The organization's AI model picks the intent; without a model (offline), the "
                "words decide."
            ),
        ),
    ),
    defaults={"mode": "assistant", "exit": "handoff"},
)


# --- actions ----------------------------------------------------------------------------------


def _tag_run(context):
    tag = context.render(context.props["tag"]).strip().lower()
    tags = list(context.chat.tags or [])
    if context.props.get("remove"):
        tags = [t for t in tags if t != tag]
    elif tag not in tags:
        tags.append(tag)
    inbox_services.chat_set_tags(chat=context.chat, tags=tags)
    return Outcome(port="next", detail=tag)


register_node(
    "tag",
    label=_l("Set tag"),
    icon="#",
    run=_tag_run,
    validate=lambda props: _text_problems(props, "tag", 40, what=_("Tag")),
    fields=(
        LABEL,
        Field("tag", _l("Tag"), max_length=40),
        Field("remove", _l("Remove instead"), kind="bool"),
    ),
)


def _stage_run(context):
    stage = context.props["stage"]
    Contact.objects.filter(pk=context.contact.pk).update(stage=stage)
    context.contact.stage = stage
    return Outcome(port="next", detail=stage)


register_node(
    "stage",
    label=_l("Set stage"),
    icon="↗",
    run=_stage_run,
    validate=lambda props: (
        [] if props.get("stage") in Contact.Stage.values else [_("Choose a stage.")]
    ),
    fields=(
        LABEL,
        Field("stage", _l("Stage"), kind="select", choices=tuple(Contact.Stage.choices)),
    ),
)


def _attribute_validate(props):
    problems = []
    if not SAVE_TO.match(str(props.get("save_to") or "")):
        problems.append(_('Say what to set: "contact.<attribute>" or "vars.<name>".'))
    return problems + _text_problems(props, "value", 1000, required=False, what=_("Value"))


register_node(
    "attribute",
    label=_l("Set attribute"),
    icon="=",
    run=lambda context: (
        value_save(
            context, context.props["save_to"], context.render(context.props.get("value", ""))
        ),
        Outcome(port="next"),
    )[1],
    validate=_attribute_validate,
    fields=(
        LABEL,
        Field("save_to", _l("Set")),
        Field("value", _l("To"), help=_l("Variables allowed")),
    ),
)


def _member(context, email):
    user = (
        get_user_model()
        .objects.filter(
            email__iexact=email, memberships__organization_id=context.chat.organization_id
        )
        .first()
    )
    return user


def _assign_run(context):
    user = _member(context, context.props["email"])
    if user is None:
        return Outcome(port="next", detail=_("no member %(e)s") % {"e": context.props["email"]})
    inbox_services.chat_assign(chat=context.chat, assignee=user)
    return Outcome(port="next", detail=user.display_name)


register_node(
    "assign",
    label=_l("Assign to a person"),
    icon="@",
    run=_assign_run,
    validate=lambda props: (
        [] if "@" in str(props.get("email") or "") else [_("Give the team member's email.")]
    ),
    fields=(LABEL, Field("email", _l("Team member's email"))),
)


def _team_code_problems(props):
    import uuid

    try:
        uuid.UUID(str(props.get("team") or ""))
    except ValueError:
        return [_("Choose the team.")]
    return []


def _team_of(organization_id: int, code):
    from accounts.models import Team

    return Team.objects.filter(organization_id=organization_id, code=code).first()


def _team_validate_for(organization_id: int, props) -> list[str]:
    if _team_of(organization_id, props.get("team")) is None:
        return [_("The team is not one of this organization's teams.")]
    return []


def _assign_team_run(context):
    """The chat goes to the team; its round robin (``inbox.teamwork``, the same as new chats'
    auto-assignment) deals it to a member online with room."""
    from inbox import teamwork

    team = _team_of(context.chat.organization_id, context.props.get("team"))
    if team is None:
        return Outcome(port="next", detail=_("the team was deleted"))
    assignee = teamwork.chat_team_assign(chat=context.chat, team=team)
    if assignee is None:
        return Outcome(
            port="next", detail=_("%(team)s: nobody online has room") % {"team": team.name}
        )
    return Outcome(port="next", detail=f"{team.name}: {assignee.display_name}"[:200])


register_node(
    "assign_team",
    label=_l("Assign to a team"),
    icon="👥",
    run=_assign_team_run,
    validate=_team_code_problems,
    validate_for=_team_validate_for,
    fields=(
        LABEL,
        Field(
            "team",
            _l("Team"),
            kind="select",
            help=_l(
                "The team's round robin gives the chat to a member online in the inbox with "
                "room; when nobody is, the chat waits in the team's queue."
            ),
        ),
    ),
)


def _handoff_run(context):
    reason = context.render(context.props.get("reason") or "") or _(
        "the customer asked for a person"
    )
    if context.chat.ai_enabled:
        inbox_services.chat_set_ai(chat=context.chat, enabled=False, reason=reason)
    if context.props.get("email"):
        user = _member(context, context.props["email"])
        if user is not None:
            inbox_services.chat_assign(chat=context.chat, assignee=user)
    if context.chat.status != "open":
        inbox_services.chat_set_status(chat=context.chat, status="open")
    if context.props.get("text"):
        context.send("text", {"body": context.render(context.props["text"])})
    _runtime()._timeline(
        context.chat,
        _("Waiting for a person (flow %(f)s): %(r)s") % {"f": context.flow_name, "r": reason},
    )
    return Outcome(end="handed_off", detail=reason[:200])


register_node(
    "handoff",
    label=_l("Hand off to a person"),
    icon="☎",
    run=_handoff_run,
    ports=[],
    validate=lambda props: _text_problems(
        props, "text", wa.MAX_TEXT_BODY, required=False, what=_("Message")
    ),
    fields=(
        LABEL,
        Field("text", _l("Tell the customer"), kind="textarea", max_length=wa.MAX_TEXT_BODY),
        Field("reason", _l("Reason (for the team)")),
        Field("email", _l("Assign to (email, optional)")),
    ),
)


def _webhook_validate(props):
    url = str(props.get("url") or "")
    problems = []
    plain_http_allowed = egress.allow_private()  # dev, tests
    if not url.startswith("https://") and not (plain_http_allowed and url.startswith("http://")):
        problems.append(_("The webhook needs an https:// URL."))
    if props.get("method", "POST") not in ("GET", "POST"):
        problems.append(_("Method must be GET or POST."))
    for line in str(props.get("save") or "").splitlines():
        if line.strip() and "=" not in line:
            problems.append(_('Map responses as "variable = field.path": %(l)s') % {"l": line})
    return problems


def _dig(data, path: str):
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def _webhook_run(context):
    url = context.props["url"]
    try:
        url_check(url)
    except UnsafeURL as refused:
        return Outcome(port="error", detail=str(refused)[:200])
    body = {
        "flow": str(context.run.flow.code),
        "run": str(context.run.code),
        "contact": {
            "id": str(context.contact.code),
            "phone": context.contact.phone,
            "name": context.contact.display_name,
        },
        # The run's own bookkeeping (``_pending``, ``_ai_…``) stays inside Porfin.
        "vars": {k: v for k, v in context.variables.items() if not k.startswith("_")},
    }
    timeout = min(WEBHOOK_TIMEOUT_MAX, max(1, int(context.props.get("timeout") or 5)))
    try:
        # Connects to the address url_check approved (no second DNS lookup, no redirect).
        response = egress.session().request(
            context.props.get("method", "POST"),
            url,
            json=body if context.props.get("method", "POST") == "POST" else None,
            timeout=timeout,
            allow_redirects=False,
            headers={"User-Agent": "Porfin-Flows/1.0"},
        )
        data = response.json() if response.content else {}
    except (requests.RequestException, ValueError) as error:
        return Outcome(port="error", detail=str(error)[:200])
    if not response.ok:
        return Outcome(port="error", detail=f"HTTP {response.status_code}")
    for line in str(context.props.get("save") or "").splitlines():
        name, _sep, path = line.partition("=")
        if name.strip() and path.strip():
            value = _dig(data, path.strip())
            context.variables[name.strip().removeprefix("vars.")] = (
                value
                if isinstance(value, str | int | float | bool) or value is None
                else json.dumps(value)[:1000]
            )
    return Outcome(port="ok", detail=f"HTTP {response.status_code}")


register_node(
    "webhook",
    label=_l("Call a webhook"),
    icon="⇄",
    run=_webhook_run,
    validate=_webhook_validate,
    ports=["ok", "error"],
    fields=(
        LABEL,
        Field("url", _l("URL")),
        Field("method", _l("Method"), kind="select", choices=(("POST", "POST"), ("GET", "GET"))),
        Field("timeout", _l("Timeout (seconds, up to 10)"), kind="number"),
        Field(
            "save", _l("Save from the response (one per line: name = field.path)"), kind="textarea"
        ),
    ),
    defaults={"method": "POST", "timeout": 5},
)

UNITS = {"minutes": 60, "hours": 3600, "days": 86400}


def _wait_seconds(props) -> float:
    return float(props.get("amount") or 0) * UNITS.get(props.get("unit", "minutes"), 60)


def _wait_validate(props):
    try:
        seconds = _wait_seconds(props)
    except (TypeError, ValueError):
        return [_("The wait must be a number.")]
    if props.get("unit", "minutes") not in UNITS:
        return [_("Unknown unit.")]
    if seconds <= 0 or seconds > MAX_WAIT.total_seconds():
        return [_("Wait between 1 minute and 30 days.")]
    return []


register_node(
    "wait",
    label=_l("Wait"),
    category="logic",
    icon="⏱",
    run=lambda context: Outcome(
        port="next",
        wait="time",
        until=timezone.now() + timedelta(seconds=_wait_seconds(context.props)),
    ),
    validate=_wait_validate,
    pauses=True,
    fields=(
        LABEL,
        Field("amount", _l("Wait"), kind="number"),
        Field(
            "unit",
            _l("Unit"),
            kind="select",
            choices=(("minutes", _l("minutes")), ("hours", _l("hours")), ("days", _l("days"))),
        ),
    ),
    defaults={"amount": 1, "unit": "hours"},
)


def _goto_validate(props):
    import uuid

    try:
        uuid.UUID(str(props.get("flow") or ""))
    except ValueError:
        return [_("Choose the flow to go to.")]
    return []


register_node(
    "goto",
    label=_l("Go to another flow"),
    category="logic",
    icon="↪",
    run=lambda context: Outcome(jump=str(context.props["flow"]), detail=_("went to another flow")),
    validate=_goto_validate,
    ports=[],
    pauses=True,  # the other flow starts as a new run
    fields=(LABEL, Field("flow", _l("Flow (its id)"))),
)
register_node(
    "end",
    label=_l("End"),
    category="logic",
    icon="■",
    run=lambda context: Outcome(end="completed"),
    ports=[],
    fields=(LABEL,),
)


# --- book an appointment (appointments' booking menus, through the router's starters) ---------

BOOKING = "booking"  # the router starter appointments registers


def _book_validate(props):
    from inbox import router

    if router.starter(BOOKING) is None:
        return [_("Bookings are not available here (the agenda is not installed).")]
    return []


def _book_run(context):
    from inbox import router

    starter = router.starter(BOOKING)
    if starter is None:
        return Outcome(end="failed", detail=_("bookings are not available"))
    starter.start(context.chat, str(context.props.get("service") or ""))
    # The booking menus hold the chat now; the flow's part is done.
    return Outcome(end="completed", detail=_("handed to the booking menus"))


register_node(
    "book",
    label=_l("Book an appointment"),
    category="actions",
    icon="📅",
    run=_book_run,
    validate=_book_validate,
    ports=[],
    fields=(
        LABEL,
        Field(
            "service",
            _l("Service"),
            kind="select",
            help=_l(
                "The customer picks a day and a time in the booking menus; empty: they pick "
                "the service too. The flow ends here."
            ),
        ),
    ),
)
